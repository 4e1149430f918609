//! The per-provision log, in OneForm's format so that tools which read OneForm's logs read
//! formwork's: one line per message, `%a %b %d %H:%M:%S %Y [X] message` in UTC, X being the
//! severity's letter. Writing ([`ProvisionLog`], a [`Sink`]) and reading back from a byte
//! offset ([`read`], [`tail`]) as OneForm's log API and `logs` command do.
//!
//! The file is append-only. Each write holds whole lines, so a reader polling the file never
//! sees half a line, and byte offsets taken with [`ProvisionLog::position`] stay valid for
//! ever: a stage attempt records the range it wrote.
//!
//! A log may also hand each write to a [`Keeper`] (the service keeps logs in the database, where
//! every server reads them); positions are then the keeper's, and the file is a copy for those
//! who tail it. [`lines`] and [`start_of_last`] read lines from bytes however they were fetched.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use serde::Serialize;

use super::Error;
use super::mask::Masker;
use super::sink::{Severity, Sink, Stream};

/// The most one [`read`] returns, so a poll of a large log stays bounded; the caller reads
/// again from the returned offset for the rest.
pub const MAX_READ_BYTES: u64 = 8 * 1024 * 1024;

/// Where a log's lines are kept besides its file, and what its positions count.
pub trait Keeper: Send {
    /// Keeps `text`: whole lines, masked and formatted.
    fn keep(&mut self, text: &str);
    /// The log's end, everything kept so far included: where the next line will start. A
    /// keeper that buffers makes what it holds durable before answering, so a position
    /// recorded elsewhere never points past what readers can read.
    fn position(&self) -> u64;
    /// Makes what was kept so far readable now (a state change was just written).
    fn flush(&mut self);
}

/// The per-provision log file, open for appending.
pub struct ProvisionLog {
    path: PathBuf,
    file: File,
    keeper: Option<Box<dyn Keeper>>,
    masker: Masker,
    clock: Box<dyn Fn() -> SystemTime + Send>,
    /// The first write that failed. A sink cannot return errors, so the owner asks with
    /// [`ProvisionLog::take_error`] after a run.
    error: Option<io::Error>,
    /// The length the log had at open plus what was written since: the answer of
    /// [`ProvisionLog::position`] should the file's metadata be unreadable.
    known_end: u64,
}

impl ProvisionLog {
    /// Opens (or creates, mode 0600) the log at `path` for appending; its directory is created
    /// with mode 0700 if missing. The log holds tool output, which can hold secrets the masker
    /// does not know, so only formwork's user may read it.
    pub fn open(path: &Path, masker: Masker) -> Result<ProvisionLog, Error> {
        let fail = |source| Error::Log { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
        }
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path).map_err(fail)?;
        // A file made by someone else, or before this rule, is narrowed too.
        let metadata = file.metadata().map_err(fail)?;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(Permissions::from_mode(0o600)).map_err(fail)?;
        }
        Ok(ProvisionLog {
            path: path.to_path_buf(),
            file,
            keeper: None,
            masker,
            clock: Box::new(SystemTime::now),
            error: None,
            known_end: metadata.len(),
        })
    }

    /// Replaces the clock lines are stamped with (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Hands every write to `keeper` too, whose positions [`ProvisionLog::position`] answers.
    pub fn with_keeper(mut self, keeper: Box<dyn Keeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` at `severity`: masked, then each of its lines trimmed, blank ones
    /// skipped, all stamped with one time and written in a single write.
    pub fn write(&mut self, severity: Severity, text: &str) -> io::Result<()> {
        let masked = self.masker.mask(text);
        let now = (self.clock)();
        let mut lines = String::new();
        for line in masked.lines().map(str::trim).filter(|l| !l.is_empty()) {
            lines.push_str(&format_line(now, severity, line));
            lines.push('\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        // The keeper first: a file that cannot be written does not cost readers the lines.
        if let Some(keeper) = &mut self.keeper {
            keeper.keep(&lines);
        }
        self.file.write_all(lines.as_bytes())?;
        self.known_end += lines.len() as u64;
        Ok(())
    }

    /// The log's length in bytes: where the next line will start. The keeper's when there is
    /// one; else read from the file, so lines another writer appended count too.
    pub fn position(&self) -> u64 {
        if let Some(keeper) = &self.keeper {
            return keeper.position();
        }
        self.file.metadata().map_or(self.known_end, |metadata| metadata.len())
    }

    /// Makes the lines written so far readable by the keeper's readers now, rather than when
    /// the keeper would.
    pub fn flush(&mut self) {
        if let Some(keeper) = &mut self.keeper {
            keeper.flush();
        }
    }

    /// The first write error since the last call, if any.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    fn record(&mut self, severity: Severity, text: &str) {
        if let Err(err) = self.write(severity, text) {
            self.error.get_or_insert(err);
        }
    }
}

/// Output as OneForm logs it: stdout at debug, stderr at error.
impl Sink for ProvisionLog {
    fn line(&mut self, stream: Stream, text: &str) {
        let severity = match stream {
            Stream::Stdout => Severity::Debug,
            Stream::Stderr => Severity::Error,
        };
        self.record(severity, text);
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.record(severity, text);
    }
}

/// One log line without its newline: `Mon Feb 03 06:02:30 2025 [I] text`, in UTC. Sub-seconds
/// are dropped towards the past, before 1970 too, as strftime does.
pub fn format_line(time: SystemTime, severity: Severity, text: &str) -> String {
    // A clock beyond the years -9999..=9999 is not worth an error path: it is clamped.
    let clamped = if time < UNIX_EPOCH { Timestamp::MIN } else { Timestamp::MAX };
    let date = Timestamp::try_from(time).unwrap_or(clamped).strftime(LOG_DATE);
    format!("{date} [{}] {text}", severity.letter())
}

/// OneForm's log date (Ruby's `Time#strftime` with the same pattern, in UTC).
const LOG_DATE: &str = "%a %b %d %H:%M:%S %Y";

/// A line read back, as OneForm's log API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub level: Severity,
    pub text: String,
}

/// The level of a line, from the first `[D]`, `[I]`, `[W]` or `[E]` in it; debug if none.
pub fn classify(line: &str) -> Severity {
    line.match_indices('[')
        .find_map(|(at, _)| {
            let mut rest = line[at + 1..].chars();
            let letter = rest.next()?;
            (rest.next() == Some(']')).then_some(Severity::from_letter(letter)?)
        })
        .unwrap_or(Severity::Debug)
}

/// The complete lines from byte offset `from` (at most [`MAX_READ_BYTES`] of them), and the
/// offset just after the last one. A trailing line without its newline is being written: it
/// is left for the next read. An offset past the end (the file was replaced) gives no lines
/// and the current end.
pub fn read(path: &Path, from: u64) -> io::Result<(Vec<LogLine>, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if from >= len {
        return Ok((Vec::new(), len));
    }
    read_from(&mut file, from, MAX_READ_BYTES)
}

/// The last `n` complete lines and the offset after them, to follow on with [`read`].
pub fn tail(path: &Path, n: usize) -> io::Result<(Vec<LogLine>, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = start_of_last_lines(&mut file, len, n)?;
    let (mut lines, end) = read_from(&mut file, start, u64::MAX)?;
    // Lines appended since the scan push the oldest ones out.
    let extra = lines.len().saturating_sub(n);
    lines.drain(..extra);
    Ok((lines, end))
}

fn read_from(file: &mut File, from: u64, limit: u64) -> io::Result<(Vec<LogLine>, u64)> {
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(lines(&bytes, from, limit))
}

/// The complete lines of `bytes`, read from offset `from` with at most `limit` bytes asked for,
/// and the offset just after the last one. A trailing line without its newline is being
/// written: it is left for the next read.
pub fn lines(bytes: &[u8], from: u64, limit: u64) -> (Vec<LogLine>, u64) {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(last) => &bytes[..=last],
        // One line longer than the limit: no newline will come within reach, so it is
        // returned as it is rather than blocking the reader for ever.
        None if bytes.len() as u64 == limit => bytes,
        None => &[][..],
    };
    let lines = complete
        .split(|b| *b == b'\n')
        .map(|raw| String::from_utf8_lossy(raw).trim_end_matches('\r').to_string())
        .filter(|text| !text.is_empty())
        .map(|text| LogLine { level: classify(&text), text })
        .collect();
    (lines, from + complete.len() as u64)
}

/// Where, in `bytes` (the end of a log), the last `n` complete lines start: just after the
/// (n+1)-th newline from the end; `None` when `bytes` holds fewer (read further back).
pub fn start_of_last(bytes: &[u8], n: usize) -> Option<usize> {
    bytes.iter().enumerate().rev().filter(|(_, b)| **b == b'\n').nth(n).map(|(i, _)| i + 1)
}

/// The offset where the last `n` complete lines start: just after the (n+1)-th newline from
/// the end, read backwards in blocks so a long log is not read whole.
fn start_of_last_lines(file: &mut File, len: u64, n: usize) -> io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut block = vec![0u8; BLOCK as usize];
    let mut pos = len;
    let mut newlines = 0;
    while pos > 0 {
        let size = BLOCK.min(pos);
        pos -= size;
        let chunk = &mut block[..size as usize];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(chunk)?;
        for (i, _) in chunk.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
            newlines += 1;
            if newlines == n + 1 {
                return Ok(pos + i as u64 + 1);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::Duration;

    use super::*;

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn format_line_matches_oneform_at_known_instants() {
        // Expected strings from Python's time.strftime('%a %b %d %H:%M:%S %Y', gmtime(t)).
        let cases = [
            (0, "Thu Jan 01 00:00:00 1970"),
            (1_738_562_550, "Mon Feb 03 06:02:30 2025"),
            (-1, "Wed Dec 31 23:59:59 1969"),
        ];
        for (secs, date) in cases {
            assert_eq!(format_line(at(secs), Severity::Info, "hello"), format!("{date} [I] hello"), "at {secs}");
        }
    }

    #[test]
    fn format_line_rounds_sub_seconds_down() {
        let t = at(1_738_562_550) + Duration::from_millis(999);
        assert!(format_line(t, Severity::Debug, "x").starts_with("Mon Feb 03 06:02:30 2025 [D]"));
        let t = at(0) - Duration::from_millis(1);
        assert!(format_line(t, Severity::Error, "x").starts_with("Wed Dec 31 23:59:59 1969 [E]"));
    }

    #[test]
    fn classify_uses_the_first_marker() {
        assert_eq!(classify("Mon Feb 03 06:02:30 2025 [I] State changed"), Severity::Info);
        assert_eq!(classify("... [W] disk [E] later"), Severity::Warning);
        assert_eq!(classify("... [E] Error: boom"), Severity::Error);
        assert_eq!(classify("[x] [D] y"), Severity::Debug);
        assert_eq!(classify("no marker [ at all ["), Severity::Debug);
        assert_eq!(classify("[é] [E]"), Severity::Error);
    }

    fn log_file(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn read_leaves_a_partial_trailing_line_for_later() {
        let (_dir, path) = log_file(b"a [I] one\nb [E] two\nc [W] thr");
        let (lines, pos) = read(&path, 0).unwrap();
        let got: Vec<(Severity, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
        assert_eq!(got, [(Severity::Info, "a [I] one"), (Severity::Error, "b [E] two")]);
        assert_eq!(pos, 20);
        // The writer finishes the line; the next read starts where the last one ended.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"ee\nd four\n").unwrap();
        let (lines, end) = read(&path, pos).unwrap();
        let got: Vec<(Severity, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
        assert_eq!(got, [(Severity::Warning, "c [W] three"), (Severity::Debug, "d four")]);
        assert_eq!(end, fs::metadata(&path).unwrap().len());
        assert_eq!(read(&path, end).unwrap(), (vec![], end));
    }

    #[test]
    fn read_past_the_end_returns_the_end() {
        let (_dir, path) = log_file(b"x [I] y\n");
        assert_eq!(read(&path, 1000).unwrap(), (vec![], 8));
    }

    #[test]
    fn read_survives_invalid_utf8() {
        let (_dir, path) = log_file(b"caf\xe9 [E] x\r\n");
        let (lines, _) = read(&path, 0).unwrap();
        assert_eq!(lines[0].text, "caf\u{fffd} [E] x");
        assert_eq!(lines[0].level, Severity::Error);
    }

    #[test]
    fn read_of_a_missing_log_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("none.log"), 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn tail_returns_the_last_complete_lines() {
        let (_dir, path) = log_file(b"1 [D] a\n2 [I] b\n3 [W] c\n4 [E] partial");
        let (lines, end) = tail(&path, 2).unwrap();
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["2 [I] b", "3 [W] c"]);
        assert_eq!(end, 24);
        assert_eq!(tail(&path, 10).unwrap().0.len(), 3);
        assert_eq!(tail(&path, 0).unwrap(), (vec![], 24));
    }

    #[test]
    fn tail_crosses_block_boundaries() {
        let mut content = String::new();
        for i in 0..20_000 {
            content.push_str(&format!("line {i} [I] some text to make it long\n"));
        }
        let (_dir, path) = log_file(content.as_bytes());
        let (lines, end) = tail(&path, 5000).unwrap();
        assert_eq!(lines.len(), 5000);
        assert_eq!(lines[0].text, "line 15000 [I] some text to make it long");
        assert_eq!(end, content.len() as u64);
    }

    #[test]
    fn log_writes_masked_trimmed_lines_and_skips_blank_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/7.log");
        let mut log = ProvisionLog::open(&path, Masker::new(["hunter2"]))
            .unwrap()
            .with_clock(|| UNIX_EPOCH + Duration::from_secs(1_738_562_550));
        log.note(Severity::Info, "  State changed from INIT to PLANNING  ");
        log.line(Stream::Stdout, "   ");
        log.line(Stream::Stderr, "password hunter2 rejected\n\nretry");
        assert!(log.take_error().is_none());
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "Mon Feb 03 06:02:30 2025 [I] State changed from INIT to PLANNING\n\
             Mon Feb 03 06:02:30 2025 [E] password ******** rejected\n\
             Mon Feb 03 06:02:30 2025 [E] retry\n"
        );
        assert_eq!(log.position(), text.len() as u64);
    }

    #[test]
    fn log_is_private_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/9.log");
        let mut log = ProvisionLog::open(&path, Masker::default()).unwrap();
        log.note(Severity::Info, "first");
        drop(log);
        let mut log = ProvisionLog::open(&path, Masker::default()).unwrap();
        let before = log.position();
        log.note(Severity::Info, "second");
        assert!(before > 0 && log.position() > before);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(read(&path, 0).unwrap().0.len(), 2);
    }

    #[test]
    fn log_narrows_an_existing_readable_file() {
        let (_dir, path) = log_file(b"");
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        ProvisionLog::open(&path, Masker::default()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
