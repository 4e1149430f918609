//! DEPROVISIONING_ONE: remove the selected OpenNebula objects (all of them by default) in
//! reverse order, hosts disabled first; unmanaged VMs and images block it unless the operation
//! was forced. The selection and `force` come from the operation's parameters.

use super::{Real, fail, one_progress};
use crate::engine::{Ctx, Outcome, Params, Resources, StageError};
use crate::one::{self, OneApi, Selection, Wait};

pub async fn run<A: OneApi>(real: &Real<A>, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let (force, selection) = match &ctx.operation.params {
        Params::Teardown { force, resources } => (*force, selection(resources)),
        // The teardown that follows an empty provision's configuration removes all of it.
        _ => (false, Selection::All),
    };
    ctx.log.info("Deleting OpenNebula objects");
    let mut objects = one_progress::objects(ctx)?;
    let mut progress = |objects: &one::OneObjects, event: &one::Event| one_progress::checkpoint(ctx, objects, event);
    one::deprovision(&real.one, &mut objects, &selection, force, Wait::default(), &mut progress).await.map_err(fail)?;
    ctx.provision.body["one_objects"] = objects.to_value();
    Ok(Outcome::DeprovisioningOne)
}

/// The OpenNebula objects a teardown's resources select; none selected means all of them.
pub fn selection(resources: &Resources) -> Selection {
    if resources.is_empty() {
        return Selection::All;
    }
    Selection::Only {
        hosts: resources.hosts.clone(),
        networks: resources.networks.clone(),
        datastores: resources.datastores.clone(),
    }
}
