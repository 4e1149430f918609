//! INIT: a fresh private copy of the driver's Terraform folder, the variables written as
//! `provision.auto.tfvars.json` (0600, by serde), the last saved Terraform state restored if
//! the directory lost it, then `terraform init`. On-prem provisions only get the directory.

use super::{Job, Real, fail, terraform, work};
use crate::engine::{Ctx, Outcome, StageError};

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    work::make_private_dir(&job.dir)?;
    if job.onprem {
        ctx.log.info("On-prem provision: no Terraform to initialise");
        return Ok(Outcome::Init);
    }
    prepare(job, ctx)?;
    work::make_private_dir(&real.tools.plugin_cache)?;
    let dir = job.dir.join("terraform");
    let cmd = real.tools.terraform(&dir, &["init", "-input=false", "-no-color"], &job.secrets);
    terraform::run(&cmd, ctx).await?;
    Ok(Outcome::Init)
}

/// Everything but `terraform init`: also used by DEPROVISIONING when the directory is gone.
pub fn prepare(job: &Job, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let dir = job.dir.join("terraform");
    let previous_state = terraform::read_state(&dir)?;
    work::fresh_copy(&job.driver.system_path.join("terraform"), &dir)?;
    let row = &ctx.provision;
    let declared: Vec<String> =
        job.driver.user_inputs.iter().chain(&job.driver.connection).map(|i| i.name.clone()).collect();
    let vars =
        work::tfvars(&row.body.user_inputs_values, &declared, &job.connection, (row.id, row.provider_id, &row.driver));
    let text = serde_json::to_vec_pretty(&vars).map_err(fail)?;
    work::write_private(&dir.join("provision.auto.tfvars.json"), &text)?;
    let state = match previous_state {
        Some(state) => Some(state),
        None => ctx.store.latest_tfstate(row.id).map_err(fail)?,
    };
    if let Some(state) = state {
        work::write_private(&dir.join("terraform.tfstate"), state.as_bytes())?;
        ctx.log.info("Terraform state file restored");
    }
    Ok(())
}
