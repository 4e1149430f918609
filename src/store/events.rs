//! Progress events: what an operation reported as it ran (state changes, steps, warnings,
//! failures), each a JSON object the service shapes, kept per provision in write order so a
//! client polls them with the last id it saw as its cursor.

use super::db::params;
use serde_json::Value;

use super::{Error, Store, json_column};

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub provision_id: i64,
    /// The operation that was running when it was written.
    pub operation_id: Option<i64>,
    pub time: i64,
    pub data: Value,
}

impl Store {
    /// Records an event of provision `provision_id`, tied to its running operation if one runs;
    /// returns its id.
    pub fn record_event(&self, provision_id: i64, data: &Value, time: i64) -> Result<i64, Error> {
        let data = data.to_string();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO progress_events (provision_id, operation_id, time, data)
                 VALUES (?1, (SELECT id FROM operations WHERE provision_id = ?1 AND status = 'running'), ?2, ?3) RETURNING id",
            )?
            .query_row(params![provision_id, time, data], |r| r.get(0))
        })
    }

    /// At most `limit` events of a provision after id `after`, oldest first; only those of
    /// `operation` when given.
    pub fn events(
        &self,
        provision_id: i64,
        operation: Option<i64>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<EventRow>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, provision_id, operation_id, time, data FROM progress_events
                 WHERE provision_id = ?1 AND id > ?2 AND (?3 IS NULL OR operation_id = ?3)
                 ORDER BY id LIMIT ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![provision_id, after, operation, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<String>(4)?))
            })?;
            rows.map(|row| {
                let (id, provision_id, operation_id, time, data) = row?;
                Ok(EventRow { id, provision_id, operation_id, time, data: json_column("progress event", &data)? })
            })
            .collect()
        })
    }

    /// The id of a provision's newest event (0 when it has none): where a client that wants
    /// only what comes next starts.
    pub fn last_event(&self, provision_id: i64) -> Result<i64, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT coalesce(max(id), 0) FROM progress_events WHERE provision_id = ?1")?;
            stmt.query_row([provision_id], |r| r.get(0))
        })
    }
}
