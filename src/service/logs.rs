//! Provision logs kept in the store, so every server reads (and streams) the log of an operation
//! another server ran. The store's copy is the log: its byte positions are the ones stage
//! attempts record (`log_start`/`log_end`) and readers follow. The file `<data dir>/logs/<id>.log`
//! each writing server keeps too is a convenience copy, for those who tail it.
//!
//! Writing ([`StoredLog`], the `exec::log::Keeper` of a provision log) buffers the masked lines
//! and appends them to the store in chunks: when [`FLUSH_BYTES`] are pending, [`FLUSH_EVERY`]
//! after the oldest pending line (a background thread), whenever a position is asked for
//! (a stage attempt's start or end, so a recorded position never points past the stored text),
//! after a state change is written (a client that sees the new state finds its line), and when
//! the log is closed. Terraform printing thousands of lines costs a few writes, and a reader
//! on another server sees a line at most [`FLUSH_EVERY`] after it was printed.
//!
//! A log opened for writing continues from the store's end, not from its local file's length
//! (another server may have written since). A chunk the store refuses because the log grew under
//! it (another writer took over) is not stored; that writer keeps only its file from then on,
//! rather than interleave its lines with the new writer's.
//!
//! A log written before the store kept logs (a file only, migration 0011) is imported whole, as
//! the first chunks, the first time it is opened or read with nothing stored, so its positions
//! match the ones its attempts recorded.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::exec::LogLine;
use crate::exec::log::{self, Keeper, MAX_READ_BYTES};
use crate::store::{self, Appended, LOG_CHUNK_BYTES, Store};

use super::Error;

/// Pending text that is written at once, without waiting for [`FLUSH_EVERY`].
pub const FLUSH_BYTES: usize = 64 * 1024;

/// The longest a line waits in the buffer before it is stored.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The store's side of a provision log being written: buffered lines, appended in chunks.
pub struct StoredLog {
    shared: Arc<Shared>,
    /// The background flusher, started with the first buffered line; dropping its sender stops it.
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

struct Shared {
    store: Arc<Store>,
    provision_id: i64,
    pending: Mutex<Pending>,
}

struct Pending {
    /// Where the log ends in the store, as far as this writer knows: where `text` goes.
    end: u64,
    text: Vec<u8>,
    /// When the oldest pending line was kept.
    since: Option<Instant>,
    /// The store refused a chunk: another writer continues the stored log.
    superseded: bool,
    /// A store failure was already reported (once per run of failures).
    failing: bool,
}

impl StoredLog {
    /// Opens the stored log of `provision_id` for appending at its end, importing the file at
    /// `file` first if nothing is stored yet.
    pub fn open(store: &Arc<Store>, provision_id: i64, file: &Path) -> Result<StoredLog, Error> {
        let end = import(store, provision_id, file)?;
        let pending = Pending { end, text: Vec::new(), since: None, superseded: false, failing: false };
        Ok(StoredLog {
            shared: Arc::new(Shared { store: Arc::clone(store), provision_id, pending: Mutex::new(pending) }),
            flusher: None,
        })
    }

    fn start_flusher(&mut self) {
        if self.flusher.is_some() {
            return;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new().name("formwork-log".into()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_EVERY / 2) {
                let mut pending = shared.lock();
                if pending.since.is_some_and(|since| since.elapsed() >= FLUSH_EVERY) {
                    shared.flush(&mut pending);
                }
            }
        });
        match thread {
            Ok(thread) => self.flusher = Some((stop, thread)),
            // Without the thread, lines are stored at the next position asked and at the close.
            Err(e) => tracing::warn!(provision_id = self.shared.provision_id, error = %e, "cannot start a log flusher"),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends what is pending to the store. A failed write keeps the text for the next flush.
    fn flush(&self, pending: &mut Pending) {
        if pending.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut pending.text);
        let len = text.len() as u64;
        match self.store.append_log(self.provision_id, pending.end, text.clone(), store::now()) {
            Ok(Appended::Written { end }) => {
                (pending.end, pending.since, pending.failing) = (end, None, false);
            }
            Ok(Appended::Gap { end }) => {
                tracing::warn!(
                    provision_id = self.provision_id,
                    expected = pending.end,
                    found = end,
                    "the stored log grew under this writer (another took over): its lines stay in the local file only"
                );
                (pending.end, pending.since, pending.superseded) = (pending.end + len, None, true);
            }
            Err(e) => {
                if !pending.failing {
                    tracing::warn!(provision_id = self.provision_id, error = %e, "cannot store log lines; will retry");
                }
                (pending.text, pending.failing) = (text, true);
            }
        }
    }
}

impl Keeper for StoredLog {
    fn keep(&mut self, text: &str) {
        {
            let mut pending = self.shared.lock();
            if pending.superseded {
                pending.end += text.len() as u64;
                return;
            }
            pending.text.extend_from_slice(text.as_bytes());
            pending.since.get_or_insert_with(Instant::now);
            if pending.text.len() >= FLUSH_BYTES {
                self.shared.flush(&mut pending);
            }
        }
        self.start_flusher();
    }

    fn position(&self) -> u64 {
        let mut pending = self.shared.lock();
        self.shared.flush(&mut pending);
        pending.end + pending.text.len() as u64
    }

    fn flush(&mut self) {
        let mut pending = self.shared.lock();
        self.shared.flush(&mut pending);
    }
}

impl Drop for StoredLog {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.flusher.take() {
            drop(stop);
            let _ = thread.join();
        }
        let mut pending = self.shared.lock();
        self.shared.flush(&mut pending);
    }
}

/// Where the stored log of `provision_id` ends, after importing the file at `file` when nothing
/// is stored yet (a log written before the store kept logs). A writer importing at the same
/// time wins: the import stops at the first chunk refused and answers the stored end.
pub fn import(store: &Store, provision_id: i64, file: &Path) -> Result<u64, Error> {
    let end = store.log_end(provision_id)?;
    if end > 0 {
        return Ok(end);
    }
    let mut file = match File::open(file) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let (mut pos, mut carry) = (0, Vec::new());
    loop {
        let mut chunk = carry;
        let room = (LOG_CHUNK_BYTES - chunk.len()) as u64;
        let read = (&mut file).take(room).read_to_end(&mut chunk)?;
        if chunk.is_empty() {
            return Ok(pos);
        }
        // Whole lines per chunk, as a writer stores them; the file's last bytes, or a line
        // longer than a chunk, as they are.
        let cut = match chunk.iter().rposition(|b| *b == b'\n') {
            Some(last) if read > 0 => last + 1,
            _ => chunk.len(),
        };
        carry = chunk.split_off(cut);
        match store.append_log(provision_id, pos, chunk, store::now())? {
            Appended::Written { end } => pos = end,
            Appended::Gap { end } => return Ok(end),
        }
    }
}

/// The complete lines after byte `from` (at most [`MAX_READ_BYTES`] of them) and the position
/// after the last one; past the end, none and the end.
pub fn read(store: &Store, provision_id: i64, file: &Path, from: u64) -> Result<(Vec<LogLine>, u64), Error> {
    let end = import(store, provision_id, file)?;
    if from >= end {
        return Ok((Vec::new(), end));
    }
    let (bytes, _) = store.read_log(provision_id, from, MAX_READ_BYTES as usize)?;
    Ok(log::lines(&bytes, from, MAX_READ_BYTES))
}

/// The last `n` complete lines and the position after them, read backwards from the end in
/// growing windows, so a long log is not read whole.
pub fn tail(store: &Store, provision_id: i64, file: &Path, n: usize) -> Result<(Vec<LogLine>, u64), Error> {
    let end = import(store, provision_id, file)?;
    let mut window: u64 = 64 * 1024;
    loop {
        let from = end.saturating_sub(window);
        let (bytes, _) = store.read_log(provision_id, from, (end - from) as usize)?;
        let start = match log::start_of_last(&bytes, n) {
            Some(at) => at,
            None if from == 0 => 0,
            None => {
                window = window.saturating_mul(4);
                continue;
            }
        };
        return Ok(log::lines(&bytes[start..], from + start as u64, u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::exec::{Masker, ProvisionLog, Severity, Sink, Stream};

    fn with_provision() -> (Arc<Store>, i64, tempfile::TempDir) {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let provider = store.insert_provider("sim", "sim", &serde_json::json!({"connection": {}}), 1).unwrap();
        let id = store.insert_provision("p", "sim", provider, &Default::default(), 1).unwrap();
        (store, id, tempfile::tempdir().unwrap())
    }

    fn open(store: &Arc<Store>, id: i64, path: &Path) -> ProvisionLog {
        let keeper = StoredLog::open(store, id, path).unwrap();
        ProvisionLog::open(path, Masker::new(["s3cret"])).unwrap().with_keeper(Box::new(keeper))
    }

    fn stored(store: &Store, id: i64) -> Vec<u8> {
        store.read_log(id, 0, usize::MAX >> 1).unwrap().0
    }

    #[test]
    fn many_lines_cost_few_writes_and_the_store_holds_the_files_bytes() {
        let (store, id, dir) = with_provision();
        let path = dir.path().join("logs/1.log");
        let mut log = open(&store, id, &path);
        let lines = 20_000;
        for i in 0..lines {
            log.line(Stream::Stdout, &format!("aws_instance.host[{i}]: Still creating... token s3cret [10s elapsed]"));
        }
        let position = log.position();
        log.note(Severity::Info, "done");
        drop(log);
        let file = fs::read(&path).unwrap();
        assert_eq!(stored(&store, id), file, "the stored log is the file, byte for byte");
        // The position asked before the last line is where that line starts in the stored log.
        let (rest, end) = read(&store, id, &path, position).unwrap();
        assert_eq!((rest.len(), end), (1, file.len() as u64));
        assert!(rest[0].text.ends_with("[I] done"), "{rest:?}");
        let chunks = store.log_chunks(id).unwrap();
        assert!(chunks * 100 <= lines, "{lines} lines in {chunks} chunks");
        assert!(!String::from_utf8_lossy(&file).contains("s3cret"));
    }

    #[test]
    fn a_position_asked_is_stored_and_a_quiet_line_is_stored_soon() {
        let (store, id, dir) = with_provision();
        let path = dir.path().join("1.log");
        let mut log = open(&store, id, &path);
        log.note(Severity::Info, "State changed from INIT to PLANNING");
        let at = log.position();
        assert_eq!(store.log_end(id).unwrap(), at, "a position recorded points at stored text");
        log.line(Stream::Stderr, "one line, then nothing for a while");
        // The background flusher stores it without another line or position.
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.log_end(id).unwrap() == at {
            assert!(Instant::now() < deadline, "a quiet line was not stored");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(stored(&store, id), fs::read(&path).unwrap());
    }

    #[test]
    fn a_log_opened_on_another_server_continues_from_the_stored_end() {
        let (store, id, dir) = with_provision();
        // Another server wrote the start of the log; this server's file does not have it.
        store.append_log(id, 0, b"Mon Feb 03 06:02:30 2025 [I] from the other server\n".to_vec(), 1).unwrap();
        let path = dir.path().join("1.log");
        let mut log = open(&store, id, &path);
        assert_eq!(log.position(), 51);
        log.note(Severity::Info, "here");
        assert_eq!(log.position(), store.log_end(id).unwrap());
        drop(log);
        let text = String::from_utf8(stored(&store, id)).unwrap();
        assert!(text.starts_with("Mon Feb 03 06:02:30 2025 [I] from the other server\n") && text.ends_with("here\n"));
        assert!(!fs::read_to_string(&path).unwrap().contains("other server"), "the file is this server's copy");
    }

    #[test]
    fn a_writer_the_log_grew_under_stops_storing_rather_than_interleave() {
        let (store, id, dir) = with_provision();
        let old = dir.path().join("old.log");
        let mut stale = open(&store, id, &old);
        let mut new = open(&store, id, &dir.path().join("new.log"));
        new.note(Severity::Info, "the new writer");
        let end = new.position();
        stale.note(Severity::Info, "the old writer");
        stale.position();
        stale.note(Severity::Info, "and more");
        drop(stale);
        new.note(Severity::Info, "goes on");
        drop(new);
        let text = String::from_utf8(stored(&store, id)).unwrap();
        assert!(!text.contains("old writer") && !text.contains("more"), "{text}");
        assert!(text.contains("goes on") && end > 0, "{text}");
        assert!(fs::read_to_string(&old).unwrap().contains("and more"), "the old writer's file has its lines");
    }

    #[test]
    fn a_log_file_from_before_the_store_kept_logs_is_imported_once() {
        let (store, id, dir) = with_provision();
        let path = dir.path().join("1.log");
        let mut content = Vec::new();
        for i in 0..40_000 {
            content.extend(format!("Mon Feb 03 06:02:30 2025 [D] old line {i}\n").into_bytes());
        }
        content.extend(b"caf\xe9 [E] not utf-8\n");
        fs::write(&path, &content).unwrap();
        assert_eq!(store.log_end(id).unwrap(), 0);
        let (last, end) = tail(&store, id, &path, 2).unwrap();
        assert_eq!(end, content.len() as u64, "positions are the file's");
        assert_eq!(last[0].text, "Mon Feb 03 06:02:30 2025 [D] old line 39999");
        assert_eq!(last[1].text, "caf\u{fffd} [E] not utf-8");
        assert_eq!(stored(&store, id), content);
        assert!(store.log_chunks(id).unwrap() >= 2, "imported in bounded chunks");
        // A writer continues after it; the file and the store stay alike.
        let mut log = open(&store, id, &path);
        assert_eq!(log.position(), content.len() as u64);
        log.note(Severity::Info, "after the upgrade");
        drop(log);
        assert_eq!(stored(&store, id), fs::read(&path).unwrap());
        let (lines, next) = read(&store, id, &path, content.len() as u64).unwrap();
        assert_eq!((lines.len(), next), (1, fs::metadata(&path).unwrap().len()));
    }

    #[test]
    fn reads_follow_on_and_tail_counts_complete_lines() {
        let (store, id, dir) = with_provision();
        let path = dir.path().join("none.log");
        assert_eq!(read(&store, id, &path, 0).unwrap(), (vec![], 0));
        store.append_log(id, 0, b"1 [D] a\n2 [I] b\n".to_vec(), 1).unwrap();
        store.append_log(id, 16, b"3 [W] c\n".to_vec(), 1).unwrap();
        let (lines, pos) = read(&store, id, &path, 8).unwrap();
        assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["2 [I] b", "3 [W] c"]);
        assert_eq!(pos, 24);
        assert_eq!(read(&store, id, &path, 99).unwrap(), (vec![], 24));
        let texts = |n| tail(&store, id, &path, n).unwrap().0.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(texts(2), ["2 [I] b", "3 [W] c"]);
        assert_eq!(texts(10).len(), 3);
        assert!(texts(0).is_empty());
    }
}
