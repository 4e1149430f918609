//! DEPROVISIONING_ONE: remove the selected OpenNebula objects (all of them by default) in
//! reverse order, hosts disabled first; unmanaged VMs and images block it unless the operation
//! was forced. The selection and `force` come from the operation's parameters.

use serde_json::Value;

use super::{Real, fail, one_progress};
use crate::engine::{Ctx, Outcome, StageError};
use crate::one::{self, OneApi, Selection, Wait};

pub async fn run<A: OneApi>(real: &Real<A>, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let params = &ctx.operation.params;
    let force = params["force"].as_bool().unwrap_or(false);
    let selection = match params.get("resources").and_then(Value::as_object) {
        Some(resources) => Selection::from_resources(resources).map_err(fail)?,
        None => Selection::default(),
    };
    ctx.log.info("Deleting OpenNebula objects");
    let mut objects = one_progress::objects(ctx)?;
    let mut progress = |objects: &one::OneObjects, event: &one::Event| one_progress::checkpoint(ctx, objects, event);
    one::deprovision(&real.one, &mut objects, &selection, force, Wait::default(), &mut progress).await.map_err(fail)?;
    ctx.provision.body["one_objects"] = objects.to_value();
    Ok(Outcome::DeprovisioningOne)
}
