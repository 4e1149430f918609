//! `formwork servers` and `GET /api/v1/servers`: the processes working on the database, what
//! each runs and when each last renewed its lease.

use serde::{Deserialize, Serialize};

use super::access::Caller;
use super::{Error, Service};

/// One server as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Provisions one of its Terraform runs has not recorded the end of: the newest state may be
    /// on its machine only, and their next run waits for it (or for `formwork servers forget`).
    pub unsaved: Vec<i64>,
    /// Whether this is the process answering.
    pub this: bool,
}

/// A gone server's row is shown this long after its lease ended (a command's, only while it
/// owns something).
const SHOW_GONE_MS: i64 = 10 * 60 * 1000;

impl Service {
    /// Every live server, and those gone recently or still owning operations or unsaved runs; an
    /// admin's.
    pub fn servers(&self, caller: &Caller) -> Result<Vec<ServerView>, Error> {
        caller.must_be_admin()?;
        let me = self.me().token;
        let rows = self.store.servers()?;
        let marks = self.store.tool_runs()?;
        let unsaved = |id: &str| marks.iter().filter(|m| m.server == id).map(|m| m.provision_id).collect::<Vec<_>>();
        Ok(rows
            .into_iter()
            .map(|r| ServerView {
                unsaved: unsaved(&r.server.id),
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
            .filter(|s| {
                let recent = s.role != "cli" && -s.lease_left_ms < SHOW_GONE_MS;
                s.alive || !s.operations.is_empty() || !s.unsaved.is_empty() || recent
            })
            .collect())
    }
}

/// What forgetting a server gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Forgotten {
    pub server: String,
    /// Whether its row was removed (it was registered).
    pub registered: bool,
    /// The runs whose end it never recorded.
    pub runs: Vec<ForgottenRun>,
}

/// A Terraform run given up on, and where on its machine the state it left may be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForgottenRun {
    pub provision: i64,
    pub host: String,
    /// The guard's sealed copy (formwork opens it with the installation's key).
    pub left_path: String,
    /// The tool's own state file.
    pub state_path: String,
}

impl Service {
    /// Gives up on a server that will not come back: removes its row and the marks of its
    /// Terraform runs that never recorded their end, so the provisions waiting for those go on
    /// from their stored state. Refused while its lease is live. An admin's.
    pub fn forget_server(&self, caller: &Caller, id: &str) -> Result<Forgotten, Error> {
        caller.must_be_admin()?;
        let row = self.store.servers()?.into_iter().find(|r| r.server.id == id);
        if let Some(row) = &row
            && row.alive()
        {
            return Err(Error::Conflict {
                message: format!(
                    "server {id} is alive (its lease has {:.1}s left); stop it, or wait until its lease ends, then forget it",
                    (row.lease_expires_ms - row.now_ms) as f64 / 1000.0
                ),
            });
        }
        let runs = self.store.forget_tool_runs(id)?;
        if row.is_none() && runs.is_empty() {
            return Err(Error::not_found(format!(
                "no server {id} is registered or has unfinished runs; `formwork servers` lists them"
            )));
        }
        if row.is_some() {
            self.store.deregister_server(id)?;
        }
        for run in &runs {
            tracing::warn!(provision = run.provision_id, server = id, state = %run.state_path, "an admin forgot a server's unfinished Terraform run");
        }
        Ok(Forgotten {
            server: id.to_string(),
            registered: row.is_some(),
            runs: runs
                .into_iter()
                .map(|r| ForgottenRun {
                    provision: r.provision_id,
                    host: r.host,
                    left_path: r.left_path,
                    state_path: r.state_path,
                })
                .collect(),
        })
    }
}
