//! DEPROVISIONING: destroy in Terraform what DEPROVISIONING_ONE removed from OpenNebula —
//! everything when the cluster is gone, otherwise only the hosts whose OpenNebula id is now
//! null, by `-target` (then `apply -refresh-only`, so `provisioned_hosts` is current). The
//! state is saved after every command that changes it, failed ones too. The variables file and
//! the state file are written for the stage and removed when it ends. On-prem provisions only
//! drop the removed hosts.

use serde_json::Value;

use super::applying::{record_hosts, save_state};
use super::{Job, Real, fail, init, terraform};
use crate::engine::{Ctx, Outcome, ProvisionBody, StageError};

pub async fn run<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let objects = &ctx.provision.body.one_objects;
    let cluster_exists = !objects["cluster"]["id"].is_null();
    let removed: Vec<(String, String)> = objects["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["id"].is_null())
        .map(|h| (text(&h["name"]), text(&h["resource_id"])))
        .collect();
    if job.onprem {
        let kept = kept_hosts(&ctx.provision.body);
        record_hosts(ctx, &kept, true);
    } else {
        destroy(real, job, ctx, cluster_exists, &removed).await?;
    }
    Ok(Outcome::Deprovisioning { cluster_exists })
}

async fn destroy<A>(
    real: &Real<A>,
    job: &Job,
    ctx: &mut Ctx<'_>,
    cluster_exists: bool,
    removed: &[(String, String)],
) -> Result<(), StageError> {
    let all = !cluster_exists;
    let dir = job.dir.join("terraform");
    // The stage holds the state file, which is the latest saved state.
    let Some(state) = ctx.store.latest_tfstate(ctx.provision.id).map_err(fail)? else {
        ctx.log.info("No Terraform state was ever saved: nothing to destroy");
        return Ok(());
    };
    let targets: Vec<String> = removed.iter().flat_map(|(_, id)| terraform::addresses_of(&state, id)).collect();
    // `provisioned_hosts` as saved, unless it still lists a removed host (a refresh is due).
    let current = terraform::provisioned_hosts(&state)
        .ok()
        .filter(|hosts| !hosts.iter().any(|h| removed.iter().any(|(_, id)| *id == h.instance_id)));
    if !all
        && targets.is_empty()
        && terraform::compaction_moves(&state).is_empty()
        && let Some(hosts) = current
    {
        ctx.log.info("No Terraform resource belongs to the removed hosts");
        record_hosts(ctx, &hosts, false);
        return Ok(());
    }
    init::ready(real, job, ctx).await?;
    let _variables = init::variables(job, ctx)?;
    if all || !targets.is_empty() {
        ctx.log.info("Destroying terraform resources");
        let mut args = vec![
            "destroy".to_string(),
            "-auto-approve".into(),
            "-input=false".into(),
            "-no-color".into(),
            "-json".into(),
        ];
        if !all {
            args.extend(targets.iter().map(|t| format!("-target={t}")));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let destroyed = terraform::run(&real.tools.terraform(&dir, &args, &job.secrets), ctx).await;
        save_state(job, ctx)?;
        destroyed?;
    }
    let compacted = if all { Ok(()) } else { compact(real, job, ctx, removed.len()).await };
    // Saved whatever happened: the state file does not outlive the stage.
    let state = save_state(job, ctx)?.unwrap_or_else(|| "{}".into());
    compacted?;
    let provisioned = terraform::provisioned_hosts(&state)?;
    record_hosts(ctx, &provisioned, false);
    Ok(())
}

/// After a targeted destroy, closes the holes it left in `count` resources (`host[2]` becomes
/// `host[1]` when `host[1]` was destroyed) so the configuration with one host fewer matches
/// the state: otherwise the next apply would destroy the last host and re-create the one just
/// removed (OneForm's behaviour). Then `apply -refresh-only` with the lowered `oneform_hosts`
/// brings `provisioned_hosts` up to date. Safe to repeat: the moves are computed from the
/// state as it is.
async fn compact<A>(real: &Real<A>, job: &Job, ctx: &mut Ctx<'_>, removed: usize) -> Result<(), StageError> {
    let dir = job.dir.join("terraform");
    let state = terraform::read_state(&dir)?.unwrap_or_default();
    for (from, to) in terraform::compaction_moves(&state) {
        let args = ["state", "mv", from.as_str(), to.as_str()];
        let moved = terraform::run(&real.tools.terraform(&dir, &args, &job.secrets), ctx).await;
        save_state(job, ctx)?;
        moved?;
    }
    let mut refresh: Vec<String> =
        ["apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color", "-json"].map(String::from).into();
    if let Some(count) = ctx.provision.body.count("oneform_hosts") {
        refresh.push(format!("-var=oneform_hosts={}", count.saturating_sub(removed as u64)));
    }
    let refresh: Vec<&str> = refresh.iter().map(String::as_str).collect();
    terraform::run(&real.tools.terraform(&dir, &refresh, &job.secrets), ctx).await
}

/// The on-prem hosts that still have an OpenNebula id.
fn kept_hosts(body: &ProvisionBody) -> Vec<terraform::Provisioned> {
    body.hosts()
        .iter()
        .filter(|h| !h["id"].is_null())
        .map(|h| terraform::Provisioned { instance_id: text(&h["resource_id"]), instance_ip: text(&h["name"]) })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
