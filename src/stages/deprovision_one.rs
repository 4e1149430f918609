//! DEPROVISIONING_ONE: remove the selected OpenNebula objects (all of them by default) in
//! reverse order, hosts disabled first; unmanaged VMs and images block it unless the operation
//! was forced. The selection and `force` come from the operation's parameters.

use super::{Real, fail, one_progress};
use crate::engine::{Ctx, Outcome, Params, Resources, StageError};
use crate::one::{self, Kind, OneApi, OneObjects, Selection, Wait};

pub async fn run<A: OneApi>(real: &Real<A>, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let (force, selection) = match &ctx.operation.params {
        Params::Teardown { force, resources } => (*force, selection(resources)),
        // The teardown that follows an empty provision's configuration removes all of it.
        _ => (false, Selection::All),
    };
    ctx.log.info("Deleting OpenNebula objects");
    let mut objects = one_progress::objects(ctx)?;
    let selection = still_recorded(selection, &objects);
    let mut progress = |objects: &one::OneObjects, event: &one::Event| one_progress::checkpoint(ctx, objects, event);
    one::deprovision(&real.one, &mut objects, &selection, force, Wait::default(), &mut progress).await.map_err(fail)?;
    ctx.provision.body.one_objects = objects.to_value();
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

/// The selected objects that still have an OpenNebula id. The request's ids were checked
/// against the provision when it was made, so a selected id no longer recorded was removed by
/// an earlier attempt of this operation (killed, or failed half-way): it is done, not unknown.
fn still_recorded(selection: Selection, objects: &OneObjects) -> Selection {
    let Selection::Only { hosts, networks, datastores } = selection else { return Selection::All };
    let keep = |kind: Kind, ids: Vec<i64>| -> Vec<i64> {
        let known: Vec<i64> = objects.of(kind).iter().filter_map(|r| r.id).collect();
        ids.into_iter().filter(|id| known.contains(id)).collect()
    };
    Selection::Only {
        hosts: keep(Kind::Host, hosts),
        networks: keep(Kind::Network, networks),
        datastores: keep(Kind::Datastore, datastores),
    }
}
