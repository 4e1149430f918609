//! `formwork secrets`: the keys that seal provider credentials and sensitive inputs in the
//! database. `rotate` seals every value with a new key and retires the old one; it works on
//! this machine's data, never through a server.

use clap::Subcommand;

use super::backend::Backend;
use super::output::Output;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal every sensitive value with a new key, then retire the old key. Both keys work until
    /// it ends; if it is interrupted, running it again (or any formwork start) finishes it.
    /// With FORMWORK_SECRET_KEY, list the new key first (NEW,OLD) and drop OLD afterwards
    Rotate,
}

pub(crate) async fn run(cmd: Command, backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Command::Rotate => {
            let service = backend.local_only("secrets rotate", "it re-seals this machine's database with a new key")?;
            let done = service.rotate_secrets()?;
            if out.json {
                return out.json(&serde_json::json!({
                    "key_id": done.key_id,
                    "rows": done.rows,
                    "retired": done.retired,
                    "retire_by_hand": done.by_hand,
                }));
            }
            out.text(&format!(
                "Every secret value is sealed with key {} ({} records re-sealed)",
                done.key_id, done.rows
            ))?;
            match (done.retired.as_slice(), done.by_hand) {
                ([], _) => Ok(()),
                (old, false) => out.text(&format!("Retired key {}", old.join(", "))),
                (old, true) => out.text(&format!(
                    "No value uses key {} any more: remove it from FORMWORK_SECRET_KEY",
                    old.join(", ")
                )),
            }
        }
    }
}
