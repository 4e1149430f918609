//! The bridge between the `one` module's progress events and the provision: after every
//! OpenNebula change the new `one_objects` are saved with the event's historic entry, and the
//! event's line goes to the provision log, so a crash between two calls loses nothing.

use crate::engine::{Ctx, Fault, Log, ProvisionBody, Work};
use crate::one::{self, Level, OneObjects};
use crate::store::{HistoricEntry, ProvisionRow, Store};

/// Saves `objects` and logs `event` for a stage; the returned error stops the `one` operation.
/// A crash test's `saved:<STATE>:<N>` fault strikes here, right after the stage's N-th save.
pub fn checkpoint(ctx: &mut Ctx<'_>, objects: &OneObjects, event: &one::Event) -> Result<(), crate::store::Error> {
    let time = (ctx.clock)();
    save(ctx.store, ctx.log, ctx.provision.id, &mut ctx.provision.body, objects, event, time)?;
    ctx.saves += 1;
    Fault::strike_after_save(ctx.fault, Work::Stage(ctx.stage), ctx.saves);
    Ok(())
}

/// Logs `event`, puts `objects` into provision `id`'s `body` and saves it with the event's
/// historic entry at `time`: the one checkpoint every OpenNebula change goes through (stages,
/// add-ip, del-ip).
pub fn save(
    store: &Store,
    log: &mut dyn Log,
    id: i64,
    body: &mut ProvisionBody,
    objects: &OneObjects,
    event: &one::Event,
    time: i64,
) -> Result<(), crate::store::Error> {
    if let Some(line) = event.log() {
        match line.level {
            Level::Info => log.info(&line.message),
            Level::Warn => log.note(crate::exec::Severity::Warning, &line.message),
        }
    }
    body.one_objects = objects.to_value();
    let historic: Vec<HistoricEntry> =
        event.historic().map(|h| HistoricEntry::new(h.action, h.description, time)).into_iter().collect();
    store.save_body(id, body, &historic, time)
}

/// The provision's objects, as the `one` module works on them.
pub fn objects(ctx: &Ctx<'_>) -> Result<OneObjects, crate::engine::StageError> {
    OneObjects::from_value(ctx.provision.body.one_objects.clone())
        .map_err(|e| crate::engine::StageError::failed(format!("the provision's one_objects are not valid: {e}")))
}

/// The `one` module's view of a provision.
pub fn context(row: &ProvisionRow) -> one::Context {
    let values = &row.body.user_inputs_values;
    one::Context {
        provision_id: row.id,
        provision_name: row.name.clone(),
        provider_id: row.provider_id,
        driver: row.driver.clone(),
        tags: values.get("oneform_tags").and_then(|t| t.as_object()).cloned().unwrap_or_default(),
    }
}
