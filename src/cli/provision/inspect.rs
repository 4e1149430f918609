//! Reading and editing provision records without running a stage: list, show, update, delete,
//! and validating values against a driver.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::cli::backend::Backend;
use crate::cli::output::{Output, cell, table};
use crate::cli::values::read_values;
use crate::service;

pub(super) async fn list(backend: &impl Backend, all: bool, format: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let served = backend.provisions(all).await?;
    if out.json || format.is_some() {
        return match format {
            Some(template) => out.text(crate::cli::format::render(template, &served)?.trim_end_matches('\n')),
            None => out.json(&served),
        };
    }
    let lines: Vec<Vec<String>> = served
        .iter()
        .map(|p| {
            vec![
                p["id"].to_string(),
                cell(&p["name"]),
                cell(&p["driver"]),
                cell(&p["state"]),
                p["one_objects"]["hosts"].as_array().map_or(0, Vec::len).to_string(),
                crate::cli::show::time(&p["registration_time"]),
            ]
        })
        .collect();
    out.text(&table(&["ID", "NAME", "DRIVER", "STATE", "HOSTS", "REGTIME"], &lines))
}

pub(super) async fn show(
    backend: &impl Backend,
    id: i64,
    include_sensitive: bool,
    format: Option<&str>,
    out: &Output,
) -> anyhow::Result<()> {
    let shown = backend.provision(id, include_sensitive).await?;
    if let Some(template) = format {
        return out.text(&crate::cli::format::render(template, std::slice::from_ref(&shown.provision))?);
    }
    if out.json {
        return out.json(&shown.provision);
    }
    out.text(&crate::cli::show::describe(&shown.provision, shown.running.as_ref()))
}

pub(super) async fn update(
    backend: &impl Backend,
    id: i64,
    update: &service::Update,
    out: &Output,
) -> anyhow::Result<()> {
    let served = backend.update_provision(id, update).await?;
    if out.json {
        return out.json(&served);
    }
    out.text(&format!("provision {id} updated"))
}

pub(super) async fn delete(backend: &impl Backend, id: i64, force: bool, out: &Output) -> anyhow::Result<()> {
    backend.delete_provision(id, force).await?;
    if out.json { out.json(&json!({"id": id, "deleted": true})) } else { out.text(&format!("provision {id} deleted")) }
}

pub(super) async fn validate_values(
    backend: &impl Backend,
    driver: &str,
    deployment: Option<&str>,
    values: Option<&Path>,
    out: &Output,
) -> anyhow::Result<()> {
    let values = values.map(read_values).transpose()?.unwrap_or_else(|| json!({}));
    match backend.validate(driver, deployment, &values).await {
        Ok(valid) => {
            if out.json {
                return out.json(&valid);
            }
            let rows: Vec<Vec<String>> = valid["user_inputs_values"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect();
            out.text(&format!(
                "values are valid for {} / {}\n\n{}",
                cell(&valid["driver"]),
                cell(&valid["deployment"]),
                table(&["INPUT", "VALUE"], &rows)
            ))
        }
        Err(service::Error::Invalid { message, fields }) => {
            if out.json {
                let errors: Map<String, Value> = fields.into_iter().map(|f| (f.field, json!(f.messages))).collect();
                out.json(&json!({"valid": false, "driver": driver, "deployment": deployment, "errors": errors}))?;
            }
            Err(service::Error::Invalid { message, fields: Vec::new() }.into())
        }
        Err(e) => Err(e.into()),
    }
}
