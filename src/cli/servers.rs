//! `formwork servers`: the servers working on this installation's database (several share a
//! PostgreSQL database), what each runs and when each last renewed its lease. Read from the
//! database on this machine's settings; `GET /api/v1/servers` answers the same from a server.

use super::output::{Output, table};
use crate::service::{Caller, ServerView, Service};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub(crate) fn run(_: Args, settings: Settings, out: &Output) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let servers = runtime.block_on(async move {
        let service = Service::open(settings)?;
        let mut servers = service.servers(&Caller::local())?;
        // This command itself is no server.
        servers.retain(|s| !(s.this && s.role == "cli"));
        anyhow::Ok(servers)
    })?;
    if out.json {
        return out.json(&servers);
    }
    out.text(&render(&servers))
}

fn render(servers: &[ServerView]) -> String {
    if servers.is_empty() {
        return "No server works on this database.\n".into();
    }
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|s| {
            let lease = if s.alive {
                format!("alive, {:.1}s left", s.lease_left_ms as f64 / 1000.0)
            } else {
                format!("ENDED {:.0}s ago", -s.lease_left_ms as f64 / 1000.0)
            };
            let runs: Vec<String> = s.operations.iter().map(|(op, p)| format!("{p} (op {op})")).collect();
            vec![
                s.id.clone(),
                s.role.clone(),
                if s.address.is_empty() { "-".into() } else { s.address.clone() },
                format!("{:.1}s ago", s.heartbeat_age_ms as f64 / 1000.0),
                lease,
                if runs.is_empty() { "-".into() } else { runs.join(", ") },
            ]
        })
        .collect();
    let mut text = table(&["SERVER", "ROLE", "ADDRESS", "HEARTBEAT", "LEASE", "PROVISIONS"], &rows);
    if servers.iter().any(|s| !s.alive && !s.operations.is_empty()) {
        text.push_str(
            "\nA server whose lease ENDED still owning provisions is gone, frozen or cut off: another server takes them\nover; a frozen one's tools keep the provision waiting until they end (they are never run twice).\n",
        );
    }
    text
}
