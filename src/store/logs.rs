//! Provision logs (`provision_logs`, migration 0011): each log a contiguous sequence of chunks of
//! bytes, a chunk starting where the one before it stops, so a byte position means the same on
//! every server. A writer appends at the end it knows; when another writer has appended since
//! (a server that took the operation over, or a note written beside it), the chunk is refused
//! rather than interleaved at a position someone already reported ([`Appended::Gap`]).

use super::db::{Db, OptionalExtension, params};

use super::{Error, Store};

/// The most a writer should put in one chunk; an imported file is cut into chunks of at most
/// this size too.
pub const LOG_CHUNK_BYTES: usize = 1024 * 1024;

/// What became of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored; the log now ends at `end`.
    Written { end: u64 },
    /// Nothing stored: the log ends at `end`, not where the chunk would start.
    Gap { end: u64 },
}

impl Store {
    /// Appends `data` to the log of `provision_id` if the log ends at `start`.
    pub fn append_log(&self, provision_id: i64, start: u64, data: Vec<u8>, time: i64) -> Result<Appended, Error> {
        let start = position(start)?;
        let stop = start + position(data.len() as u64)?;
        self.write(move |tx| {
            // The writer's transaction is serialised with every other writer's (SQLite's
            // `BEGIN IMMEDIATE`, PostgreSQL's advisory lock), so the end read here is the end
            // the insert extends.
            let end = end_of(tx, provision_id)?;
            if end != start {
                return Ok(Appended::Gap { end: end as u64 });
            }
            if data.is_empty() {
                return Ok(Appended::Written { end: end as u64 });
            }
            tx.prepare_cached(
                "INSERT INTO provision_logs (provision_id, start, stop, data, time) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![provision_id, start, stop, data, time])?;
            Ok(Appended::Written { end: stop as u64 })
        })
    }

    /// Where the log of `provision_id` ends (0 when nothing is stored).
    pub fn log_end(&self, provision_id: i64) -> Result<u64, Error> {
        self.read(|conn| end_of(conn, provision_id).map(|end| end as u64))
    }

    /// At most `limit` bytes of the log of `provision_id` from byte `from`, and the position just
    /// after them (`from` plus their length: read again from there for what follows). Past the end
    /// gives nothing and the end.
    pub fn read_log(&self, provision_id: i64, from: u64, limit: usize) -> Result<(Vec<u8>, u64), Error> {
        let from_at = position(from)?;
        let until = from_at.saturating_add(position(limit as u64)?);
        let chunks = self.read(|conn| {
            // Only the chunks that hold bytes of [from, from + limit): a read is bounded by
            // `limit` plus one chunk whatever the log's size.
            let mut stmt = conn.prepare_cached(
                "SELECT start, data FROM provision_logs
                 WHERE provision_id = ?1 AND stop > ?2 AND start < ?3 ORDER BY start",
            )?;
            stmt.query_map(params![provision_id, from_at, until], |r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })?;
        if chunks.is_empty() {
            let end = self.log_end(provision_id)?;
            return Ok((Vec::new(), from.min(end)));
        }
        let mut bytes = Vec::new();
        for (start, data) in chunks {
            let skip = (from_at - start).max(0) as usize;
            bytes.extend_from_slice(data.get(skip..).unwrap_or_default());
        }
        bytes.truncate(limit);
        let next = from + bytes.len() as u64;
        Ok((bytes, next))
    }

    /// How many chunks the log of `provision_id` is stored in.
    pub fn log_chunks(&self, provision_id: i64) -> Result<u64, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT CAST(count(*) AS BIGINT) FROM provision_logs WHERE provision_id = ?1")?;
            stmt.query_row([provision_id], |r| r.get::<i64>(0)).map(|n| n as u64)
        })
    }

    /// Deletes the stored log of `provision_id`.
    pub fn delete_log(&self, provision_id: i64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM provision_logs WHERE provision_id = ?1")?.execute([provision_id])?;
            Ok(())
        })
    }
}

/// Where a log ends: the stop of its last chunk (chunks are contiguous), found through the
/// primary key rather than by reading every chunk's row; 0 with none.
fn end_of(db: &Db<'_>, provision_id: i64) -> Result<i64, Error> {
    db.prepare_cached("SELECT stop FROM provision_logs WHERE provision_id = ?1 ORDER BY start DESC LIMIT 1")?
        .query_row([provision_id], |r| r.get(0))
        .optional()
        .map(Option::unwrap_or_default)
}

/// A byte position as the database holds it.
fn position(pos: u64) -> Result<i64, Error> {
    i64::try_from(pos).map_err(|_| Error::Corrupt { what: "log position", message: format!("{pos} is too large") })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Backend, on_both, with_provision};
    use super::*;

    on_both!(
        appends_extend_the_log_and_read_back_from_any_position,
        an_append_not_at_the_end_is_refused_and_changes_nothing,
        a_bounded_read_continues_exactly_where_it_stopped,
        deleting_a_log_or_its_provision_removes_its_chunks,
    );

    fn appends_extend_the_log_and_read_back_from_any_position(db: &Backend) {
        let store = db.open();
        let (_, id) = with_provision(&store);
        assert_eq!(store.log_end(id).unwrap(), 0);
        assert_eq!(store.read_log(id, 0, 100).unwrap(), (vec![], 0));
        assert_eq!(store.append_log(id, 0, b"one\n".to_vec(), 1).unwrap(), Appended::Written { end: 4 });
        assert_eq!(store.append_log(id, 4, b"two\n".to_vec(), 2).unwrap(), Appended::Written { end: 8 });
        // Another store on the same data (another server) sees the same log.
        let other = db.open();
        assert_eq!(other.log_end(id).unwrap(), 8);
        assert_eq!(other.read_log(id, 0, 100).unwrap(), (b"one\ntwo\n".to_vec(), 8));
        assert_eq!(other.read_log(id, 2, 100).unwrap(), (b"e\ntwo\n".to_vec(), 8));
        assert_eq!(other.read_log(id, 4, 100).unwrap(), (b"two\n".to_vec(), 8));
        // At or past the end: nothing, and the end.
        assert_eq!(other.read_log(id, 8, 100).unwrap(), (vec![], 8));
        assert_eq!(other.read_log(id, 50, 100).unwrap(), (vec![], 8));
        assert_eq!(other.log_chunks(id).unwrap(), 2);
    }

    fn an_append_not_at_the_end_is_refused_and_changes_nothing(db: &Backend) {
        let store = db.open();
        let (_, id) = with_provision(&store);
        store.append_log(id, 0, b"first writer\n".to_vec(), 1).unwrap();
        // A writer that still believes the log is empty, and one that skips ahead.
        assert_eq!(store.append_log(id, 0, b"stale\n".to_vec(), 2).unwrap(), Appended::Gap { end: 13 });
        assert_eq!(store.append_log(id, 20, b"ahead\n".to_vec(), 2).unwrap(), Appended::Gap { end: 13 });
        assert_eq!(store.read_log(id, 0, 1000).unwrap(), (b"first writer\n".to_vec(), 13));
        // The writer that asks where the log ends continues it.
        let end = db.open().log_end(id).unwrap();
        assert_eq!(store.append_log(id, end, b"next\n".to_vec(), 3).unwrap(), Appended::Written { end: 18 });
    }

    fn a_bounded_read_continues_exactly_where_it_stopped(db: &Backend) {
        let store = db.open();
        let (_, id) = with_provision(&store);
        let mut whole = Vec::new();
        for i in 0..40 {
            let chunk = format!("chunk {i} {}\n", "x".repeat(i * 7)).into_bytes();
            store.append_log(id, whole.len() as u64, chunk.clone(), 1).unwrap();
            whole.extend(chunk);
        }
        for limit in [1, 5, 64, 333, 10_000] {
            let (mut read, mut pos) = (Vec::new(), 0);
            loop {
                let (bytes, next) = store.read_log(id, pos, limit).unwrap();
                assert!(bytes.len() <= limit, "a read of at most {limit} bytes gave {}", bytes.len());
                assert_eq!(next, pos + bytes.len() as u64);
                if bytes.is_empty() {
                    break;
                }
                read.extend(bytes);
                pos = next;
            }
            assert_eq!(read, whole, "read {limit} bytes at a time");
        }
    }

    fn deleting_a_log_or_its_provision_removes_its_chunks(db: &Backend) {
        let store = db.open();
        let (provider, id) = with_provision(&store);
        let other = store.insert_provision("q", "sim", provider, &Default::default(), 1).unwrap();
        store.append_log(id, 0, b"a\n".to_vec(), 1).unwrap();
        store.append_log(other, 0, b"b\n".to_vec(), 1).unwrap();
        store.delete_log(id).unwrap();
        assert_eq!((store.log_end(id).unwrap(), store.log_chunks(id).unwrap()), (0, 0));
        assert_eq!(store.log_end(other).unwrap(), 2, "another provision's log stays");
        store.delete_provision(other).unwrap();
        assert_eq!(store.log_chunks(other).unwrap(), 0, "a deleted provision takes its log along");
    }
}
