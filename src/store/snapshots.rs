//! Driver snapshots (`driver_snapshots`, see `crate::driver::snapshot`), the one an operation
//! runs on, and the database's `meta` notes.

use super::db::{OptionalExtension, params};

use super::{Error, Store};

/// A stored snapshot: its driver, the driver's version, its encoded files.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    pub digest: String,
    pub driver: String,
    pub version: String,
    pub files: String,
}

impl Store {
    /// Keeps a snapshot (once per digest) and ties it to operation `operation_id`.
    pub fn use_snapshot(&self, operation_id: i64, row: &SnapshotRow, time: i64) -> Result<(), Error> {
        let row = row.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO driver_snapshots (digest, driver, version, files, created_time)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(params![row.digest, row.driver, row.version, row.files, time])?;
            tx.prepare_cached("UPDATE operations SET driver_digest = ?2 WHERE id = ?1")?
                .execute(params![operation_id, row.digest])?;
            Ok(())
        })
    }

    pub fn snapshot(&self, digest: &str) -> Result<Option<SnapshotRow>, Error> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT digest, driver, version, files FROM driver_snapshots WHERE digest = ?1")?;
            stmt.query_row([digest], |r| {
                Ok(SnapshotRow { digest: r.get(0)?, driver: r.get(1)?, version: r.get(2)?, files: r.get(3)? })
            })
            .optional()
        })
    }

    /// The digest and driver version of the snapshot the provision's latest operation before
    /// `operation_id` ran on, if any did.
    pub fn previous_snapshot(&self, provision_id: i64, operation_id: i64) -> Result<Option<(String, String)>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.digest, s.version FROM operations o JOIN driver_snapshots s ON s.digest = o.driver_digest
                 WHERE o.provision_id = ?1 AND o.id < ?2 ORDER BY o.id DESC LIMIT 1",
            )?;
            stmt.query_row([provision_id, operation_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
            stmt.query_row([key], |r| r.get(0)).optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), Error> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            )?
            .execute(params![key, value])?;
            Ok(())
        })
    }
}
