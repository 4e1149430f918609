//! `formwork secrets`: the keys that seal provider credentials and sensitive inputs in the
//! database. `rotate` seals every value with a new key and retires the old one; it works on
//! this machine's data, never through a server. `init-key` makes the key file before a
//! service starts (systemd's privileged `ExecStartPre=+`): it opens no database.

use clap::Subcommand;

use super::backend::Backend;
use super::output::Output;
use crate::secrets::{Init, Owner, Source};
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal every sensitive value with a new key, then retire the old key. Both keys work until
    /// it ends; if it is interrupted, running it again (or any formwork start) finishes it.
    /// With FORMWORK_SECRET_KEY, list the new key first (NEW,OLD) and drop OLD afterwards
    Rotate,
    /// Create the key file the settings name if it is missing (0600, a new key), given to
    /// --owner; an existing one is only checked (private, owned by --owner). For a service's
    /// start, run as root before formwork drops to its user
    InitKey(InitKey),
}

#[derive(Debug, clap::Args)]
pub struct InitKey {
    /// The user (and that user's group) the key file belongs to, e.g. `formwork`
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,
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
        Command::InitKey(_) => unreachable!("`secrets init-key` runs on the settings alone, outside any backend"),
    }
}

/// `formwork secrets init-key`: the key file the settings name, created or checked.
pub(crate) fn init_key(args: InitKey, settings: &Settings, out: &Output) -> anyhow::Result<()> {
    let path = match &settings.secret_keys {
        Source::File(path) => path,
        other => {
            return out.text(&format!("Keys come from {}: there is no key file to create", other.describe()));
        }
    };
    let owner = args.owner.as_deref().map(owner).transpose()?;
    let owned = args.owner.as_deref().map(|name| format!(", owned by {name}")).unwrap_or_default();
    let init = crate::secrets::init_file(path, owner)?;
    if out.json {
        let (created, key_ids) = match &init {
            Init::Created { key_id } => (true, vec![key_id.clone()]),
            Init::Present { key_ids } => (false, key_ids.clone()),
        };
        return out.json(&serde_json::json!({"path": path, "created": created, "key_ids": key_ids}));
    }
    match init {
        Init::Created { key_id } => {
            out.text(&format!("Created the key file {} (key {key_id}, mode 600{owned})", path.display()))
        }
        Init::Present { key_ids } => out.text(&format!(
            "The key file {} is in place (key {}, private{owned}); nothing changed",
            path.display(),
            key_ids.join(", ")
        )),
    }
}

/// A user name as the uid and primary gid a key file is given to.
fn owner(name: &str) -> anyhow::Result<Owner> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| anyhow::anyhow!("cannot look up the user '{name}' (--owner): {e}"))?
        .ok_or_else(|| {
            anyhow::anyhow!("there is no user '{name}' (--owner); create it (the Debian package's postinst does: adduser --system --group {name}) or name another")
        })?;
    Ok(Owner { name: name.to_string(), uid: user.uid.as_raw(), gid: user.gid.as_raw() })
}
