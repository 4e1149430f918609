//! The real work of each lifecycle stage, one file per stage: Terraform (init, plan, apply,
//! destroy), OpenNebula registration and teardown through [`OneApi`], and Ansible. Every stage
//! is idempotent: running it twice, or again after a crash half-way, ends in the same place.
//!
//! Provisions with `oneform_onprem_hosts` never run Terraform: INIT and PLANNING only prepare
//! the working directory, APPLYING takes the hosts from that list, and DEPROVISIONING drops
//! the hosts removed from OpenNebula from it.

mod applying;
mod configure_one;
mod configure_provision;
mod deprovision;
mod deprovision_one;
mod done;
mod form;
mod init;
pub(crate) mod one_progress;
mod planning;
mod scaling;
pub mod terraform;
mod terraform_ui;
pub mod tool_env;
pub mod work;

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::driver::snapshot::{self, Snapshot};
use crate::driver::{Catalog, Driver, Loaded};
use crate::engine::{Ctx, Log, Outcome, Stage, StageError, Stages};
use crate::one::OneApi;
use crate::store::{HistoricEntry, SnapshotRow, Store};
pub use configure_provision::FormServer;
pub use deprovision_one::selection;
pub use form::{FormApi, OpenSession, Sessions};
pub use terraform::Tools;
pub use tool_env::ToolEnv;

/// The stages as formwork runs them for real.
pub struct Real<A> {
    pub catalog: Catalog,
    pub tools: Tools,
    /// `<data_dir>/work`: one private directory per provision.
    pub work_root: PathBuf,
    pub one: A,
    /// What templates see as `one.frontend_ip` and playbooks as `one_server`: the host of the
    /// XML-RPC endpoint (OneForm's rule). `one.version` is asked from OpenNebula.
    pub frontend_ip: String,
    /// The project's shared Ansible roles (`playbooks/roles`), found after the driver's own;
    /// an operation runs on its snapshot of them ([`Job::roles`]).
    pub shared_roles: PathBuf,
}

/// What every stage needs about the provision it works on, gathered once per stage run.
pub struct Job {
    /// The driver as the operation's snapshot holds it (`system_path` is the snapshot's copy).
    pub driver: Driver,
    /// The snapshot's digest, and its copy of the shared Ansible roles.
    pub snapshot: String,
    pub roles: PathBuf,
    pub connection: Map<String, Value>,
    /// Values to mask in every line a child prints.
    pub secrets: Vec<String>,
    pub dir: PathBuf,
    /// Hosts come from `oneform_onprem_hosts`; no Terraform runs.
    pub onprem: bool,
}

impl<A: OneApi> Stages for Real<A> {
    async fn run(&self, stage: Stage, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
        let job = self.job(ctx)?;
        // Terraform's state is on disk only while a stage that needs it runs (it holds secrets).
        let _state = if uses_terraform_state(stage) && !job.onprem {
            Some(init::state(&job.dir.join("terraform"), ctx)?)
        } else {
            None
        };
        if !job.onprem && matches!(stage, Stage::Planning | Stage::Applying) {
            // The state a killed stage left is saved (above) before the directory is made again.
            init::ready(self, &job, ctx).await?;
        }
        match stage {
            Stage::Init => init::run(self, &job, ctx).await,
            Stage::Planning => planning::run(self, &job, ctx).await,
            Stage::Applying => applying::run(self, &job, ctx).await,
            Stage::ConfiguringOne => configure_one::run(self, &job, ctx).await,
            Stage::ConfiguringProvision => configure_provision::run(self, &job, ctx).await,
            Stage::Scaling => scaling::run(ctx),
            Stage::DeprovisioningOne => deprovision_one::run(self, ctx).await,
            Stage::Deprovisioning => deprovision::run(self, &job, ctx).await,
            Stage::Done => done::run(&job, ctx),
        }
    }

    fn put_away(&self, provision_id: i64, store: &Store, time: i64, log: &mut dyn Log) -> Result<(), StageError> {
        put_away(&self.work_root, provision_id, store, time, log)
    }
}

impl<A> Real<A> {
    /// Where extracted driver snapshots are kept.
    fn snapshots_root(&self) -> PathBuf {
        self.work_root.join(".drivers")
    }

    fn job(&self, ctx: &mut Ctx<'_>) -> Result<Job, StageError> {
        let (snapshot, dir) = self.snapshot(ctx)?;
        let row = &ctx.provision;
        let driver = self.catalog.load_from(&row.driver, &snapshot::driver_dir(&dir, &row.driver)).map_err(|e| {
            StageError::failed(format!("driver '{}' of snapshot {}: {e}", row.driver, snapshot::short(&snapshot)))
        })?;
        let provider = ctx.store.provider(row.provider_id).map_err(|e| StageError::failed(e.to_string()))?;
        let (connection, mut secrets) = crate::driver::input::connection(&provider.body);
        secrets.extend(row.body.sensitive_texts());
        let onprem = row.body.is_onprem();
        let work = work::provision_dir(&self.work_root, row.id);
        Ok(Job { driver, snapshot, roles: snapshot::roles_dir(&dir), connection, secrets, dir: work, onprem })
    }

    /// The driver snapshot the operation runs on, and its folder (extracted from the store when
    /// missing). The first stage of an operation takes it from the driver's folder and the
    /// shared roles as they are now; the historic says so when that is another version than the
    /// provision's previous operation ran on.
    fn snapshot(&self, ctx: &mut Ctx<'_>) -> Result<(String, PathBuf), StageError> {
        let op_id = ctx.operation.id;
        let recorded = match &ctx.operation.driver_digest {
            Some(digest) => Some(digest.clone()),
            None => ctx.store.operation(op_id).map_err(fail)?.driver_digest,
        };
        let digest = match recorded {
            Some(digest) => digest,
            None => self.take_snapshot(ctx)?,
        };
        let dir = self.snapshots_root().join(&digest);
        if dir.is_dir() {
            return Ok((digest, dir));
        }
        let row = ctx.store.snapshot(&digest).map_err(fail)?.ok_or_else(|| {
            StageError::failed(format!(
                "the driver snapshot {} this operation runs on is not in the store",
                snapshot::short(&digest)
            ))
        })?;
        let files = Snapshot::decode(&row.digest, &row.driver, &row.files).map_err(StageError::failed)?;
        work::make_private_dir(&self.snapshots_root())?;
        let dir = files.extract(&self.snapshots_root()).map_err(StageError::failed)?;
        Ok((digest, dir))
    }

    /// Takes the snapshot of the provision's driver for the running operation.
    fn take_snapshot(&self, ctx: &mut Ctx<'_>) -> Result<String, StageError> {
        let name = ctx.provision.driver.clone();
        let driver = match self.catalog.load(&name).map_err(|e| StageError::failed(e.to_string()))? {
            Loaded::Ready(d) => *d,
            Loaded::Broken(b) => {
                return Err(StageError::failed(format!(
                    "driver '{}' is in ERROR state: {}",
                    b.name,
                    b.error_msg.unwrap_or_default()
                )));
            }
        };
        let taken = Snapshot::take(&name, &driver.system_path, &self.shared_roles).map_err(StageError::failed)?;
        let version = match &driver.version {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let row = SnapshotRow {
            digest: taken.digest.clone(),
            driver: name.clone(),
            version: version.clone(),
            files: taken.encode(),
        };
        let time = (ctx.clock)();
        ctx.store.use_snapshot(ctx.operation.id, &row, time).map_err(fail)?;
        let short = snapshot::short(&taken.digest);
        match ctx.store.previous_snapshot(ctx.provision.id, ctx.operation.id).map_err(fail)? {
            Some((previous, _)) if previous == taken.digest => {}
            Some((previous, was)) => {
                let what = format!(
                    "Driver '{name}' changed since the last operation: version {was} (snapshot {}) is now version {version} (snapshot {short}); this operation runs on the new one",
                    snapshot::short(&previous)
                );
                ctx.log.info(&what);
                ctx.historic.push(HistoricEntry::new("Driver updated", what, time));
            }
            None => ctx.log.info(&format!("Driver '{name}' version {version} (snapshot {short})")),
        }
        Ok(taken.digest)
    }
}

/// Puts away what an interrupted stage, or an older formwork, left in a provision's working
/// directory under `work_root`: a newer Terraform state is saved, the clear files are removed.
pub fn put_away(
    work_root: &std::path::Path,
    provision_id: i64,
    store: &Store,
    time: i64,
    log: &mut dyn Log,
) -> Result<(), StageError> {
    init::put_away(&work::provision_dir(work_root, provision_id), store, provision_id, time, log)
}

/// Whether a stage runs Terraform, or a playbook that may read its state beside itself
/// (`../terraform/terraform.tfstate`, the layout OneForm's drivers rely on).
fn uses_terraform_state(stage: Stage) -> bool {
    match stage {
        Stage::Init | Stage::Planning | Stage::Applying | Stage::ConfiguringProvision | Stage::Deprovisioning => true,
        Stage::ConfiguringOne | Stage::Scaling | Stage::DeprovisioningOne | Stage::Done => false,
    }
}

/// A stage error from any displayable failure.
fn fail(e: impl std::fmt::Display) -> StageError {
    StageError::failed(e.to_string())
}
