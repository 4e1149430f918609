//! PLANNING: `terraform plan -out=plan.tfplan`, with the variables file written for the stage
//! and removed when it ends. The plan that is logged here is the plan APPLYING runs; OneForm
//! plans a second time at apply.
//!
//! A plan file holds the variables' values in clear, secrets included, so it waits for APPLYING
//! sealed (`plan.tfplan.sealed`, by the store's key): the clear file exists only while a stage
//! that writes or applies it runs.

use std::fs;
use std::path::Path;

use super::{Job, Real, fail, init, terraform, work};
use crate::engine::{Ctx, Outcome, StageError};

/// The saved plan, inside the provision's Terraform directory, while a stage uses it.
pub const PLAN_FILE: &str = "plan.tfplan";
/// The saved plan between PLANNING and APPLYING.
pub const SEALED_PLAN_FILE: &str = "plan.tfplan.sealed";

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    if job.onprem {
        ctx.log.info("On-prem provision: nothing to plan");
        return Ok(Outcome::Planning);
    }
    let _variables = init::variables(job, ctx)?;
    let plan_file = plan(real, job, ctx).await?;
    seal(&job.dir.join("terraform"), &plan_file, ctx)?;
    Ok(Outcome::Planning)
}

/// Writes a fresh plan file, held (removed) as the returned value is dropped, and forgets any
/// earlier plan and apply. The caller holds the variables file.
pub async fn plan<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<work::SecretFile, StageError> {
    let dir = job.dir.join("terraform");
    let _ = fs::remove_file(dir.join(super::applying::APPLY_MARK));
    let _ = fs::remove_file(dir.join(SEALED_PLAN_FILE));
    let plan_file = work::SecretFile::hold(&dir.join(PLAN_FILE));
    let out = format!("-out={PLAN_FILE}");
    let cmd = real.tools.terraform(&dir, &["plan", "-input=false", "-no-color", "-json", &out], &job.secrets);
    terraform::run(&cmd, ctx).await?;
    work::make_private(plan_file.path())?;
    Ok(plan_file)
}

/// Seals the clear plan into [`SEALED_PLAN_FILE`].
fn seal(dir: &Path, plan_file: &work::SecretFile, ctx: &Ctx<'_>) -> Result<(), StageError> {
    let path = plan_file.path();
    let clear = fs::read(path).map_err(|e| work::io_error("read", path, e))?;
    let sealed = ctx.store.seal_plan(ctx.provision.id, &clear).map_err(fail)?;
    work::write_private(&dir.join(SEALED_PLAN_FILE), sealed.as_bytes())
}

/// The plan PLANNING sealed, opened into [`PLAN_FILE`] for the stage holding the returned
/// file; `Err` with the reason when there is none to apply: none was sealed, or it does not
/// open (sealed for another provision, damaged, or with a key a rotation retired since).
pub fn unseal(dir: &Path, ctx: &Ctx<'_>) -> Result<Result<work::SecretFile, String>, StageError> {
    let path = dir.join(SEALED_PLAN_FILE);
    let sealed = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err("No saved plan".into())),
        Err(e) => return Err(work::io_error("read", &path, e)),
    };
    match ctx.store.open_plan(ctx.provision.id, &sealed) {
        Ok(clear) => work::SecretFile::write(&dir.join(PLAN_FILE), &clear).map(Ok),
        Err(e) => Ok(Err(format!("The saved plan does not open ({e})"))),
    }
}
