//! INIT: a fresh private copy of the driver's Terraform folder, the last saved Terraform state
//! restored if the directory lost it, then `terraform init`. On-prem provisions only get the
//! directory. Also the variables every Terraform stage writes for itself ([`variables`]).

use super::{Job, Real, fail, terraform, work};
use crate::engine::{Ctx, Outcome, StageError};

/// Terraform's variables file, in the provision's Terraform directory.
pub const VARIABLES_FILE: &str = "provision.auto.tfvars.json";

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
