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

use crate::driver::{Catalog, Driver, Loaded};
use crate::engine::{Ctx, Log, Outcome, Stage, StageError, Stages};
use crate::one::OneApi;
use crate::store::Store;
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
    /// The project's shared Ansible roles (`playbooks/roles`), found after the driver's own.
    pub shared_roles: PathBuf,
}

/// What every stage needs about the provision it works on, gathered once per stage run.
pub struct Job {
    pub driver: Driver,
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
        init::put_away(&work::provision_dir(&self.work_root, provision_id), store, provision_id, time, log)
    }
}

impl<A> Real<A> {
    fn job(&self, ctx: &Ctx<'_>) -> Result<Job, StageError> {
        let row = &ctx.provision;
        let driver = match self.catalog.load(&row.driver).map_err(|e| StageError::failed(e.to_string()))? {
            Loaded::Ready(d) => *d,
            Loaded::Broken(b) => {
                return Err(StageError::failed(format!(
                    "driver '{}' is in ERROR state: {}",
                    b.name,
                    b.error_msg.unwrap_or_default()
                )));
            }
        };
        let provider = ctx.store.provider(row.provider_id).map_err(|e| StageError::failed(e.to_string()))?;
        let (connection, mut secrets) = crate::driver::input::connection(&provider.body);
        secrets.extend(row.body.sensitive_texts());
        let onprem = row.body.is_onprem();
        let dir = work::provision_dir(&self.work_root, row.id);
        Ok(Job { driver, connection, secrets, dir, onprem })
    }
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
