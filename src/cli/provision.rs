//! `formwork provision ...`. Today only `validate`: check a value set against a driver's
//! deployment exactly as `create` will, without creating anything.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::output::{self, Output, cell, table};
use crate::driver::deployment::{one_objects, yaml_to_json};
use crate::driver::validate;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check input values for a driver's deployment; prints the values with defaults filled
    Validate {
        /// The driver (its folder name)
        driver: String,
        /// The deployment (inventory name); needed when the driver has several
        #[arg(short, long)]
        deployment: Option<String>,
        /// JSON or YAML file of input values, or `-` for stdin; no file means no values
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
    },
}

pub fn run(cmd: Command, settings: &Settings, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Command::Validate {
            driver,
            deployment,
            values,
        } => validate_values(
            settings,
            &driver,
            deployment.as_deref(),
            values.as_deref(),
            out,
        ),
    }
}

fn validate_values(
    settings: &Settings,
    driver: &str,
    deployment: Option<&str>,
    values: Option<&Path>,
    out: &Output,
) -> anyhow::Result<()> {
    let values = match values {
        Some(path) => read_values(path)?,
        None => Value::Object(Default::default()),
    };
    let catalog = settings.catalog()?;
    let driver = catalog.usable(driver)?;
    let deployment = driver.deployment(deployment)?;
    let inputs = driver.provision_inputs(deployment);
    match validate::validate(&inputs, &values) {
        Ok(filled) => {
            let shown = output::redact_values(&inputs, &filled);
            let objects =
                one_objects(&deployment.source, Some(&shown)).map_err(anyhow::Error::msg)?;
            if out.json {
                return out.json(&json!({
                    "valid": true,
                    "driver": driver.id,
                    "deployment": deployment.inventory,
                    "user_inputs_values": shown,
                    "one_objects": objects,
                }));
            }
            let rows: Vec<Vec<String>> = shown
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect();
            out.text(&format!(
                "values are valid for {} / {}\n\n{}",
                driver.id,
                deployment.inventory,
                table(&["INPUT", "VALUE"], &rows)
            ))
        }
        Err(errors) => {
            if out.json {
                out.json(&json!({"valid": false, "driver": driver.id, "deployment": deployment.inventory, "errors": errors}))?;
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

/// Reads a values file: JSON first, then YAML (which also reports line and column).
fn read_values(path: &Path) -> anyhow::Result<Value> {
    let (text, shown) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read values from stdin")?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read values file '{}'", path.display()))?;
        (text, format!("'{}'", path.display()))
    };
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return Ok(value);
    }
    yaml_to_json(&text)
        .map_err(|e| anyhow::anyhow!("values in {shown} are neither JSON nor YAML: {e}"))
}
