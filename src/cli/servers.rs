//! `formwork servers`: the servers working on this installation's database (several share a
//! PostgreSQL database), what each runs and when each last renewed its lease, here or through
//! a server (`GET /api/v1/servers`). `formwork servers forget ID` gives up on a server that will
//! not come back (`DELETE /api/v1/servers/:id`).

use super::backend::Backend;
use super::output::{Output, table};
use crate::service::{Forgotten, ServerView};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Gives up on a server that will not come back (its machine is lost): removes it, and lets
    /// the provisions waiting for the Terraform state its runs left on that machine go on from
    /// their stored state. Refused while its lease is live.
    Forget {
        /// The server's id, as `formwork servers` lists it
        #[arg(value_name = "SERVER")]
        id: String,
    },
}

pub(crate) async fn run(args: Args, backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    if let Some(Action::Forget { id }) = args.action {
        let forgotten = backend.forget_server(&id).await?;
        if out.json {
            return out.json(&forgotten);
        }
        return out.text(&render_forgotten(&forgotten));
    }
    let servers = backend.servers().await?;
    if out.json {
        return out.json(&servers);
    }
    out.text(&render(&servers))
}

fn render_forgotten(f: &Forgotten) -> String {
    let mut text = format!("Forgot server {}.\n", f.server);
    for run in &f.runs {
        text.push_str(&format!(
            "Provision {} no longer waits for its unfinished Terraform run: it goes on from its stored state. \
             What that run created after its last saved state is not in formwork's state; on {}, its state may be in {} \
             (sealed) or {}.\n",
            run.provision, run.host, run.left_path, run.state_path
        ));
    }
    text
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
            let mut runs: Vec<String> = s.operations.iter().map(|(op, p)| format!("{p} (op {op})")).collect();
            runs.extend(s.unsaved.iter().map(|p| format!("{p} (state not saved)")));
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
    if servers.iter().any(|s| !s.unsaved.is_empty()) {
        text.push_str(
            "\n\"state not saved\": a Terraform run of that server has not recorded its end, so the newest state may be on\nits machine only; the provision's next run waits for it. If that server will never come back:\n`formwork servers forget SERVER`.\n",
        );
    }
    text
}
