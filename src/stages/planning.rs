//! PLANNING: `terraform plan -out=plan.tfplan`, with the variables file written for the stage
//! and removed when it ends. The plan that is logged here is the plan APPLYING runs (and then
//! removes: a plan file holds the variables' values); OneForm plans a second time at apply.

use super::{Job, Real, init, terraform};
use crate::engine::{Ctx, Outcome, StageError};

/// The saved plan, inside the provision's Terraform directory.
pub const PLAN_FILE: &str = "plan.tfplan";

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    if job.onprem {
        ctx.log.info("On-prem provision: nothing to plan");
        return Ok(Outcome::Planning);
    }
    let _variables = init::variables(job, ctx)?;
    plan(real, job, ctx).await?;
    Ok(Outcome::Planning)
}

/// Writes a fresh plan file and forgets any earlier apply of an older one. The caller holds the
/// variables file.
pub async fn plan<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<(), StageError> {
    let dir = job.dir.join("terraform");
    let _ = std::fs::remove_file(dir.join(super::applying::APPLY_MARK));
    let out = format!("-out={PLAN_FILE}");
    let cmd = real.tools.terraform(&dir, &["plan", "-input=false", "-no-color", "-json", &out], &job.secrets);
    terraform::run(&cmd, ctx).await
}
