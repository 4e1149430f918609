//! INIT: a fresh private copy of the driver's Terraform folder, the last saved Terraform state
//! written into it, then `terraform init`. On-prem provisions only get the directory. Also what
//! every Terraform stage writes for itself and removes when it ends: the variables
//! ([`variables`]) and the state file ([`state`]).

use std::path::Path;

use super::{Job, Real, fail, terraform, work};
use crate::engine::{Ctx, Log, Outcome, StageError};
use crate::store::Store;

/// Terraform's variables file, in the provision's Terraform directory.
pub const VARIABLES_FILE: &str = "provision.auto.tfvars.json";
/// The dependency lock file `terraform init` writes.
const LOCK_FILE: &str = ".terraform.lock.hcl";
/// Written once `terraform init` succeeded in a Terraform directory: the digest of the driver
/// snapshot the directory was made from.
pub const SNAPSHOT_MARK: &str = ".formwork-snapshot";

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    work::make_private_dir(&job.dir)?;
    if job.onprem {
        ctx.log.info("On-prem provision: no Terraform to initialise");
        return Ok(Outcome::Init);
    }
    prepare(job, ctx)?;
    terraform_init(real, job, ctx).await?;
    Ok(Outcome::Init)
}

/// `terraform init` in the provision's Terraform directory. Terraform writes its dependency lock
/// file readable by all whatever the umask; it is made private like every other file formwork
/// keeps.
pub async fn terraform_init<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    work::make_private_dir(&real.tools.plugin_cache)?;
    let dir = job.dir.join("terraform");
    let cmd = real.tools.terraform(&dir, &["init", "-input=false", "-no-color"], &job.secrets);
    terraform::run(&cmd, ctx).await?;
    work::make_private(&dir.join(LOCK_FILE))?;
    work::write_private(&dir.join(SNAPSHOT_MARK), job.snapshot.as_bytes())
}

/// Makes sure the provision's Terraform directory was made from the operation's driver snapshot
/// and initialised; otherwise (it is missing, half made, or an earlier formwork or driver version
/// made it, as when an upgrade interrupted the operation) it is made again ([`prepare`], then
/// `terraform init`), which also drops a plan made from other files.
pub async fn ready<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let dir = job.dir.join("terraform");
    if std::fs::read(dir.join(SNAPSHOT_MARK)).is_ok_and(|mark| mark == job.snapshot.as_bytes()) {
        return Ok(());
    }
    if work::is_locked(&dir.join(work::STATE_FILE)) {
        // A Terraform a killed stage started still runs there: its files stay until it is gone.
        return Ok(());
    }
    ctx.log.info(&format!(
        "The Terraform directory was not made from this operation's driver snapshot {}: making it again",
        crate::driver::snapshot::short(&job.snapshot)
    ));
    prepare(job, ctx)?;
    terraform_init(real, job, ctx).await
}

/// Everything but `terraform init`: also used by DEPROVISIONING when the directory is gone. The
/// stage holds the state file ([`state`]), so a state an interrupted stage left is saved before
/// the copy wipes it.
pub fn prepare(job: &Job, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let dir = job.dir.join("terraform");
    work::fresh_copy(&job.driver.system_path.join("terraform"), &dir)?;
    if let Some(state) = ctx.store.latest_tfstate(ctx.provision.id).map_err(fail)? {
        work::write_private(&dir.join(work::STATE_FILE), state.as_bytes())?;
        ctx.log.info("Terraform state file restored");
    }
    Ok(())
}

/// Terraform's state file for the stage that holds the returned value (every stage that runs
/// Terraform, and CONFIGURING_PROVISION, whose playbook may read it): the latest state the
/// store keeps, removed with Terraform's backup when the stage ends. A state file already there
/// was left by a stage that was killed; it is at least as new as the store's (every stage saves
/// the state after each command that changes it), so it is saved first unless it is not a state
/// ([`terraform::read_state`]: empty, or cut short while Terraform wrote it); so is a state
/// Terraform could not write there and left in `errored.tfstate`. A file another Terraform still holds locked is left as
/// it is: that Terraform writes the newest state into it, and the stage's own Terraform waits
/// for the lock and reads it.
pub fn state(dir: &Path, ctx: &mut Ctx<'_>) -> Result<work::StateFile, StageError> {
    let at = Saving { provision_id: ctx.provision.id, attempt_id: Some(ctx.attempt_id), time: (ctx.clock)() };
    match newest_state(dir, ctx.store, at, ctx.log)? {
        Newest::Locked => {
            ctx.log
                .info("A Terraform an interrupted stage started still holds the state file: waiting for it to finish");
            work::StateFile::hold(dir, None)
        }
        Newest::State(state) => work::StateFile::hold(dir, state.as_deref()),
    }
}

/// Whose state is saved, for which attempt (none when no stage runs), when.
#[derive(Clone, Copy)]
struct Saving {
    provision_id: i64,
    attempt_id: Option<i64>,
    time: i64,
}

enum Newest {
    /// Another Terraform holds the state file locked: one a killed stage started is still
    /// writing it. It is neither read half done nor written over.
    Locked,
    /// The newest state, saved to the store if it was only on disk.
    State(Option<String>),
}

/// The newest state of the provision whose Terraform directory is `dir`: a state left on disk
/// (by a killed stage, or by Terraform in `errored.tfstate`) saved to the store first, else the
/// store's.
fn newest_state(dir: &Path, store: &Store, at: Saving, log: &mut dyn Log) -> Result<Newest, StageError> {
    if work::is_locked(&dir.join(work::STATE_FILE)) {
        return Ok(Newest::Locked);
    }
    terraform::recover_errored_state(dir, log)?;
    let stored = store.latest_tfstate(at.provision_id).map_err(fail)?;
    Ok(Newest::State(match terraform::read_state(dir)? {
        Some(left) if stored.as_ref() == Some(&left) => Some(left),
        // Left by a killed stage of this machine, but older than the store's: another server ran
        // the provision since (the highest serial is the newest state).
        Some(left) if serial(&left) <= stored.as_deref().map_or(i64::MIN, serial) => {
            log.info("A Terraform state left on this machine is older than the stored one: the stored one is used");
            stored
        }
        Some(left) => {
            store.save_tfstate(at.provision_id, at.attempt_id, &left, at.time).map_err(fail)?;
            log.info("The Terraform state an interrupted stage left behind was saved");
            Some(left)
        }
        None => stored,
    }))
}

/// A state's serial; -1 when it has none.
fn serial(state: &str) -> i64 {
    crate::store::tfstate_serial(state).unwrap_or(-1)
}

/// Puts away what an interrupted stage that will not run again left in the provision's working
/// directory `work_dir`: a newer state on disk is saved to the store, then every clear file a
/// stage holds only while it runs (the state and its backups, the variables, the clear plan, the
/// playbook's extra variables) is removed. Nothing is touched while another Terraform holds the
/// state file locked: the provision's next stage takes over from it.
pub fn put_away(
    work_dir: &Path,
    store: &Store,
    provision_id: i64,
    time: i64,
    log: &mut dyn Log,
) -> Result<(), StageError> {
    let dir = work_dir.join("terraform");
    let at = Saving { provision_id, attempt_id: None, time };
    if let Newest::Locked = newest_state(&dir, store, at, log)? {
        log.info("A Terraform the interrupted stage started still holds the state file: its files are left to the next stage");
        return Ok(());
    }
    drop(work::StateFile::hold(&dir, None)?);
    let clear = [
        dir.join(VARIABLES_FILE),
        dir.join(super::planning::PLAN_FILE),
        work_dir.join("ansible").join(super::configure_provision::EXTRA_VARS_FILE),
    ];
    let removed = clear.iter().filter(|path| std::fs::remove_file(path).is_ok()).count();
    if removed > 0 {
        log.info("The files of clear secrets the interrupted stage left were removed");
    }
    Ok(())
}

/// Writes the variables Terraform gets (0600, by serde: the declared user inputs' values, the
/// provision's identity in `oneform_tags`, the provider's connection values, sensitive ones
/// clear, since Terraform needs them) for the stage holding the returned file; it is removed
/// when that stage ends.
pub fn variables(job: &Job, ctx: &Ctx<'_>) -> Result<work::SecretFile, StageError> {
    let row = &ctx.provision;
    let declared: Vec<String> =
        job.driver.user_inputs.iter().chain(&job.driver.connection).map(|i| i.name.clone()).collect();
    let vars =
        work::tfvars(&row.body.user_inputs_values, &declared, &job.connection, (row.id, row.provider_id, &row.driver));
    let text = serde_json::to_vec_pretty(&vars).map_err(fail)?;
    work::SecretFile::write(&job.dir.join("terraform").join(VARIABLES_FILE), &text)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;
    use crate::engine::params::Params;
    use crate::engine::tests::MemLog;
    use crate::exec::Cancel;
    use crate::store::{Owner, Store};

    /// Runs `check` with the context of a stage of a fresh provision whose store holds `stored`
    /// as its latest Terraform state; returns the log and the store.
    fn at_stage_start(stored: &str, check: impl FnOnce(&mut Ctx<'_>)) -> (Vec<String>, Store) {
        let store = Store::open_in_memory().unwrap();
        let provider = store.insert_provider("sim", "sim", &json!({}), 1).unwrap();
        let body = serde_json::from_value(json!({"name": "p"})).unwrap();
        let id = store.insert_provision("p", "sim", provider, &body, 1).unwrap();
        store.save_tfstate(id, None, stored, 1).unwrap();
        let owner = Owner { pid: 1, token: "1:t".into() };
        let op = store.begin_operation(id, "create", &Params::default(), None, &owner, 1).unwrap();
        let operation = store.operation(op).unwrap();
        let attempt_id = store.start_attempt(store.operation(op).unwrap().fence(), id, "APPLYING", 0, 1).unwrap();
        let (mut log, cancel) = (MemLog::default(), Cancel::new());
        let mut ctx = Ctx {
            provision: store.provision(id).unwrap(),
            operation: &operation,
            attempt_id,
            store: &store,
            log: &mut log,
            cancel: &cancel,
            historic: vec![],
            clock: || 2,
            stage: crate::engine::Stage::Applying,
            fault: None,
            saves: 0,
        };
        check(&mut ctx);
        (log.lines, store)
    }

    const STORED: &str = r#"{"serial": 1}"#;

    #[test]
    fn the_stored_state_is_on_disk_for_the_stage_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(work::STATE_FILE);
        let (_, store) = at_stage_start(STORED, |ctx| {
            let held = state(dir.path(), ctx).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), STORED);
            drop(held);
            assert!(!path.exists());
        });
        assert_eq!(store.latest_tfstate(1).unwrap().as_deref(), Some(STORED));
    }

    #[test]
    fn a_state_a_killed_stage_left_is_saved_before_the_stage_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(work::STATE_FILE);
        fs::write(&path, r#"{"serial": 2}"#).unwrap();
        let (log, store) = at_stage_start(STORED, |ctx| {
            let _held = state(dir.path(), ctx).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), r#"{"serial": 2}"#);
        });
        assert_eq!(store.latest_tfstate(1).unwrap().as_deref(), Some(r#"{"serial": 2}"#));
        assert!(log.iter().any(|l| l.contains("an interrupted stage left behind was saved")), "{log:?}");
    }

    #[test]
    fn a_state_left_on_this_machine_older_than_the_stored_one_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(work::STATE_FILE);
        // This machine's stage was killed at serial 0; another server went on to serial 1.
        fs::write(&path, r#"{"serial": 0}"#).unwrap();
        let (log, store) = at_stage_start(STORED, |ctx| {
            let _held = state(dir.path(), ctx).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), STORED);
        });
        assert_eq!(store.latest_tfstate(1).unwrap().as_deref(), Some(STORED));
        assert!(log.iter().any(|l| l.contains("older than the stored one")), "{log:?}");
    }

    #[test]
    fn a_state_terraform_could_not_persist_is_saved_before_the_stage_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(work::STATE_FILE), STORED).unwrap();
        fs::write(dir.path().join(terraform::ERRORED_STATE_FILE), r#"{"serial": 3}"#).unwrap();
        let (log, store) = at_stage_start(STORED, |ctx| drop(state(dir.path(), ctx).unwrap()));
        assert_eq!(store.latest_tfstate(1).unwrap().as_deref(), Some(r#"{"serial": 3}"#));
        assert!(log.iter().any(|l| l.contains("errored.tfstate")), "{log:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no clear state is left");
    }

    #[test]
    fn a_state_another_terraform_holds_locked_is_neither_read_nor_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(work::STATE_FILE);
        // Half written by the Terraform a killed stage started, which still holds its lock.
        fs::write(&path, r#"{"serial": 2, "resou"#).unwrap();
        let holder = work::lock_as_terraform_does(&path);
        let (log, store) = at_stage_start(STORED, |ctx| {
            let held = state(dir.path(), ctx).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), r#"{"serial": 2, "resou"#);
            drop(held);
            assert!(path.exists(), "left to its holder");
        });
        drop(holder);
        assert_eq!(store.latest_tfstate(1).unwrap().as_deref(), Some(STORED), "nothing half written is saved");
        assert!(log.iter().any(|l| l.contains("still holds the state file")), "{log:?}");
    }
}
