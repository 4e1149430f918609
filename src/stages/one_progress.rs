//! The bridge between the `one` module's progress events and the provision: after every
//! OpenNebula change the new `one_objects` are saved with the event's historic entry, and the
//! event's line goes to the provision log, so a crash between two calls loses nothing.

use crate::engine::Ctx;
use crate::one::{self, Level, OneObjects};
use crate::store::{HistoricEntry, now};

/// Saves `objects` and logs `event`; the returned error stops the `one` operation.
pub fn checkpoint(ctx: &mut Ctx<'_>, objects: &OneObjects, event: &one::Event) -> Result<(), crate::store::Error> {
    if let Some(line) = event.log() {
        match line.level {
            Level::Info => ctx.log.info(&line.message),
            Level::Warn => ctx.log.note(crate::exec::Severity::Warning, &line.message),
        }
    }
    ctx.provision.body["one_objects"] = objects.to_value();
    let historic: Vec<HistoricEntry> =
        event.historic().map(|h| HistoricEntry::new(h.action, h.description, now())).into_iter().collect();
    ctx.store.save_body(ctx.provision.id, &ctx.provision.body, &historic, now())
}

/// The provision's objects, as the `one` module works on them.
pub fn objects(ctx: &Ctx<'_>) -> Result<OneObjects, crate::engine::StageError> {
    OneObjects::from_value(ctx.provision.body["one_objects"].clone())
        .map_err(|e| crate::engine::StageError::failed(format!("the provision's one_objects are not valid: {e}")))
}

/// The `one` module's view of the provision.
pub fn context(ctx: &Ctx<'_>) -> one::Context {
    let row = &ctx.provision;
    let values = super::values(&row.body);
    one::Context {
        provision_id: row.id,
        provision_name: row.name.clone(),
        provider_id: row.provider_id,
        driver: row.driver.clone(),
        tags: values.get("oneform_tags").and_then(|t| t.as_object()).cloned().unwrap_or_default(),
    }
}
