//! CONFIGURING_ONE: register the cluster, datastores, networks and hosts in OpenNebula in
//! OneForm's order, names and tags, adopting by name whatever a previous attempt made, and
//! bring the elastic network to `oneform_public_ips` public IPs. Every change is saved as it
//! happens (see `one_progress`).

use super::{Job, Real, fail, one_progress};
use crate::engine::{Ctx, Outcome, StageError};
use crate::one::{self, OneApi, Wait};

pub async fn run<A: OneApi>(real: &Real<A>, _job: &Job, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    ctx.log.info("Creating OpenNebula objects");
    let mut objects = one_progress::objects(ctx)?;
    let one_ctx = one_progress::context(&ctx.provision);
    let public_ips = ctx.provision.body.count("oneform_public_ips").unwrap_or(0) as u32;
    let mut progress = |objects: &one::OneObjects, event: &one::Event| one_progress::checkpoint(ctx, objects, event);
    one::configure(&real.one, &one_ctx, &mut objects, public_ips, Wait::default(), &mut progress)
        .await
        .map_err(fail)?;
    ctx.provision.body.one_objects = objects.to_value();
    Ok(Outcome::ConfiguringOne)
}
