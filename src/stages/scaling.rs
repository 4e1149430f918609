//! SCALING: set the inputs a scale-up changes (`oneform_hosts`, `oneform_onprem_hosts`) to the
//! values computed when the operation was requested, so running it twice changes nothing.

use serde_json::Value;

use crate::engine::{Ctx, Outcome, Params, StageError};

pub fn run(ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
    let Params::Scale { set, .. } = &ctx.operation.params else {
        return Err(StageError::failed(
            "this scaling operation carries no target values; retry it with the original scale request",
        ));
    };
    let set = set.values();
    let values = &mut ctx.provision.body.user_inputs_values;
    for (key, value) in &set {
        values.insert(key.clone(), value.clone());
    }
    ctx.log.info(&format!("Scaling to {}", Value::Object(set)));
    Ok(Outcome::Scaling)
}
