//! Reading and editing provision records without running a stage: list, show, update, delete,
//! and validating values against a driver.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::output::{Output, cell, table};
use crate::cli::values::read_values;
use crate::driver::deployment::one_objects;
use crate::driver::validate;
use crate::provision::{self, Runtime};
use crate::settings::Settings;
use crate::store;

pub(super) fn list(rt: &Runtime, all: bool, format: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let rows = rt.store.provisions(all)?;
    if out.json || format.is_some() {
        let served: Vec<Value> = rows.iter().map(|r| provision::serve(r, &[], false)).collect();
        return match format {
            Some(template) => out.text(crate::cli::format::render(template, &served)?.trim_end_matches('\n')),
            None => out.json(&served),
        };
    }
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.name.clone(),
                r.driver.clone(),
                r.state.to_string(),
                provision::host_count(&r.body).to_string(),
                crate::exec::log::utc(r.registration_time),
            ]
        })
        .collect();
    out.text(&table(&["ID", "NAME", "DRIVER", "STATE", "HOSTS", "REGTIME"], &lines))
}

pub(super) fn show(
    rt: &Runtime,
    id: i64,
    include_sensitive: bool,
    format: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let row = rt.store.provision(id)?;
    let served = provision::serve(&row, &rt.store.historic(id)?, include_sensitive);
    if let Some(template) = format {
        return out.text(&crate::cli::format::render(template, std::slice::from_ref(&served))?);
    }
    if out.json {
        return out.json(&served);
    }
    out.text(&crate::cli::show::describe(&served, rt.store.running_operation(id)?.as_ref()))
}

pub(super) fn update(rt: &Runtime, id: i64, update: &provision::Update, out: &Output) -> anyhow::Result<()> {
    let row = provision::update(&rt.store, id, update, store::now())?;
    if out.json {
        return out.json(&provision::serve(&row, &rt.store.historic(id)?, false));
    }
    out.text(&format!("provision {id} updated"))
}

pub(super) fn delete(rt: &Runtime, id: i64, force: bool, out: &Output) -> anyhow::Result<()> {
    let row = rt.store.provision(id)?;
    provision::check_delete(&row, force)?;
    if let Some(op) = rt.store.running_operation(id)? {
        return Err(store::Error::Busy { provision_id: id, operation: Box::new(op) }.into());
    }
    rt.store.delete_provision(id)?;
    let dir = crate::stages::work::provision_dir(&rt.settings.work_root(), id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    if out.json { out.json(&json!({"id": id, "deleted": true})) } else { out.text(&format!("provision {id} deleted")) }
}

pub(super) fn validate_values(
    settings: &Settings,
    driver: &str,
    deployment: Option<&str>,
    values: Option<&Path>,
    out: &Output,
) -> anyhow::Result<()> {
    let values = values.map(read_values).transpose()?.unwrap_or_else(|| json!({}));
    let catalog = settings.catalog()?;
    let driver = catalog.usable(driver)?;
    let deployment = driver.deployment(deployment)?;
    let inputs = driver.provision_inputs(deployment);
    match validate::validate(&inputs, &values) {
        Ok(filled) => {
            let shown = crate::driver::input::redacted(&inputs, &filled);
            let objects = one_objects(&deployment.source, Some(&shown)).map_err(anyhow::Error::msg)?;
            if out.json {
                return out.json(&json!({
                    "valid": true,
                    "driver": driver.id,
                    "deployment": deployment.inventory,
                    "user_inputs_values": shown,
                    "one_objects": objects,
                }));
            }
            let rows: Vec<Vec<String>> = shown.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
            out.text(&format!(
                "values are valid for {} / {}\n\n{}",
                driver.id,
                deployment.inventory,
                table(&["INPUT", "VALUE"], &rows)
            ))
        }
        Err(errors) => {
            if out.json {
                out.json(
                    &json!({"valid": false, "driver": driver.id, "deployment": deployment.inventory, "errors": errors}),
                )?;
            }
            let count = errors.iter().count();
            anyhow::bail!(
                "{count} input{} of {} / {} {} wrong:\n{}",
                if count == 1 { "" } else { "s" },
                driver.id,
                deployment.inventory,
                if count == 1 { "is" } else { "are" },
                errors.to_string().trim_end()
            )
        }
    }
}
