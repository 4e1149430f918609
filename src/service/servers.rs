//! `formwork servers` and `GET /api/v1/servers`: the processes working on the database, what
//! each runs and when each last renewed its lease.

use serde::Serialize;

use super::access::Caller;
use super::{Error, Service};

/// One server as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServerView {
    /// Its identity (the owner token of its operations).
    pub id: String,
    pub host: String,
    pub pid: i64,
    /// `all`, `api`, `worker`, or `cli` (a command running operations itself).
    pub role: String,
    pub version: String,
    /// Where it answers (empty for a command).
    pub address: String,
    /// Unix seconds.
    pub started_time: i64,
    /// Milliseconds since it last renewed its lease, in the database's clock.
    pub heartbeat_age_ms: i64,
    /// Milliseconds until its lease ends (negative: ended that long ago).
    pub lease_left_ms: i64,
    /// Whether its lease is live: a server whose lease ended has its operations taken over.
    pub alive: bool,
    /// The operations it runs: (operation, provision).
    pub operations: Vec<(i64, i64)>,
    /// Whether this is the process answering.
    pub this: bool,
}

/// A gone command's row is shown this long after its lease ended.
const SHOW_GONE_MS: i64 = 10 * 60 * 1000;

impl Service {
    /// Every live server, and those gone recently or still owning operations; an admin's.
    pub fn servers(&self, caller: &Caller) -> Result<Vec<ServerView>, Error> {
        caller.must_be_admin()?;
        let me = self.me().token;
        let rows = self.store.servers()?;
        Ok(rows
            .into_iter()
            .filter(|r| r.alive() || !r.operations.is_empty() || r.now_ms - r.lease_expires_ms < SHOW_GONE_MS)
            .map(|r| ServerView {
                this: r.server.id == me,
                heartbeat_age_ms: r.now_ms - r.heartbeat_ms,
                lease_left_ms: r.lease_expires_ms - r.now_ms,
                alive: r.alive(),
                operations: r.operations,
                id: r.server.id,
                host: r.server.host,
                pid: r.server.pid,
                role: r.server.role,
                version: r.server.version,
                address: r.server.address,
                started_time: r.server.started_time,
            })
            .collect())
    }
}
