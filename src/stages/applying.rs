//! APPLYING: apply the saved plan, save the Terraform state to the store after every attempt
//! (failed ones too, so a deprovision can destroy what a half-finished apply made), then diff
//! `provisioned_hosts` against the known hosts (OneForm's `save_tfoutputs`).
//!
//! A plan is applied at most once: a mark file is written before applying, and if it is
//! already there (a retry, or a resume after a crash mid-apply) the plan may be stale, so the
//! stage plans again first and says so in the log; so it does when the sealed plan is missing or
//! does not open. The clear plan file exists only while the stage runs, and the sealed one is
//! removed once applied ([`planning`]).

use serde_json::{Value, json};

use super::planning::{self, PLAN_FILE, SEALED_PLAN_FILE};
use super::{Job, Real, fail, init, terraform, work};
use crate::engine::{Ctx, Outcome, ProvisionBody, StageError};
use crate::store::HistoricEntry;

/// Written before a plan is applied.
pub const APPLY_MARK: &str = "plan.applied";

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let hosts = if job.onprem { onprem_hosts(&ctx.provision.body) } else { apply(real, job, ctx).await? };
    record_hosts(ctx, &hosts, job.onprem);
    Ok(Outcome::Applying)
}

async fn apply<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Vec<terraform::Provisioned>, StageError> {
    let dir = job.dir.join("terraform");
    let _variables = init::variables(job, ctx)?;
    let saved = if dir.join(APPLY_MARK).exists() {
        Err("The saved plan may be stale after an earlier apply attempt".to_string())
    } else {
        planning::unseal(&dir, ctx)?
    };
    let _plan_file = match saved {
        Ok(file) => file,
        Err(why) => {
            ctx.log.info(&format!("{why}: planning again"));
            planning::plan(real, job, ctx).await?
        }
    };
    work::write_private(&dir.join(APPLY_MARK), b"")?;
    let cmd = real.tools.terraform(&dir, &["apply", "-input=false", "-no-color", "-json", PLAN_FILE], &job.secrets);
    let applied = terraform::run(&cmd, ctx).await;
    // Never applied again (the mark says so): a retry plans anew.
    let _ = std::fs::remove_file(dir.join(SEALED_PLAN_FILE));
    let state = save_state(job, ctx)?;
    applied?;
    terraform::provisioned_hosts(&state.unwrap_or_else(|| "{}".into()))
}

/// Saves `terraform.tfstate` to the store, whatever happened (a state Terraform could not write
/// there first taken from `errored.tfstate`); returns it.
pub fn save_state(job: &Job, ctx: &mut Ctx<'_>) -> Result<Option<String>, StageError> {
    let dir = job.dir.join("terraform");
    terraform::recover_errored_state(&dir, ctx.log)?;
    let state = terraform::read_state(&dir)?;
    if let Some(text) = &state {
        ctx.store.save_tfstate(ctx.provision.id, Some(ctx.attempt_id), text, (ctx.clock)()).map_err(fail)?;
    }
    Ok(state)
}

fn onprem_hosts(body: &ProvisionBody) -> Vec<terraform::Provisioned> {
    body.user_inputs_values
        .get("oneform_onprem_hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|ip| terraform::Provisioned { instance_id: ip.to_string(), instance_ip: ip.to_string() })
        .collect()
}

/// OneForm's host diff: new addresses become hosts to register, vanished ones are dropped
/// (and the host count or on-prem list follows), each with its historic entry.
pub fn record_hosts(ctx: &mut Ctx<'_>, provisioned: &[terraform::Provisioned], onprem: bool) {
    let time = (ctx.clock)();
    let body = &mut ctx.provision.body;
    let mut hosts: Vec<Value> = body.hosts().to_vec();
    let new: Vec<&terraform::Provisioned> =
        provisioned.iter().filter(|p| !hosts.iter().any(|h| h["name"] == p.instance_ip.as_str())).collect();
    for p in new {
        hosts.push(json!({"id": null, "name": p.instance_ip, "resource_id": p.instance_id}));
        ctx.historic.push(HistoricEntry::new("Resource provisioned", format!("{} provisioned", p.instance_ip), time));
    }
    let (kept, gone): (Vec<Value>, Vec<Value>) =
        hosts.into_iter().partition(|h| provisioned.iter().any(|p| h["name"] == p.instance_ip.as_str()));
    for host in &gone {
        let ip = host["name"].as_str().unwrap_or_default().to_string();
        ctx.historic.push(HistoricEntry::new("Resource deprovisioned", format!("{ip} deprovisioned"), time));
        forget_host(body, &ip, onprem);
    }
    body.one_objects["hosts"] = Value::Array(kept);
}

/// A host that is gone leaves the inputs too: one fewer `oneform_hosts`, or its address out of
/// `oneform_onprem_hosts`.
fn forget_host(body: &mut ProvisionBody, ip: &str, onprem: bool) {
    if onprem {
        if let Some(list) = body.user_inputs_values.get_mut("oneform_onprem_hosts").and_then(Value::as_array_mut) {
            list.retain(|v| v.as_str() != Some(ip));
        }
    } else if let Some(n) = body.count("oneform_hosts") {
        body.user_inputs_values.insert("oneform_hosts".into(), json!(n.saturating_sub(1)));
    }
}
