//! `formwork provider create|list|show|update|delete`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use super::backend::Backend;
use super::output::{Output, cell, table};
use super::values::read_values;
use crate::service::NewProvider;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a provider of a driver from connection values (JSON or YAML)
    Create {
        driver: String,
        /// Connection values file, or `-` for stdin
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List providers
    List,
    /// Show a provider (sensitive values redacted unless --include-sensitive)
    Show {
        id: i64,
        #[arg(long)]
        include_sensitive: bool,
    },
    /// Rename a provider or change connection values (`__redacted__` values are kept as they are)
    Update {
        id: i64,
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a provider no provision uses
    Delete { id: i64 },
}

pub(crate) async fn run(cmd: Command, backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Command::Create { driver, values, name, description } => {
            let connection = values.as_deref().map(read_values).transpose()?.unwrap_or_else(|| json!({}));
            let new = NewProvider { driver, name, description, connection };
            let served = backend.create_provider(&new).await?;
            print_one(out, &served, &format!("ID: {}", served["id"]))
        }
        Command::List => {
            let served = backend.providers().await?;
            if out.json {
                return out.json(&served);
            }
            let lines: Vec<Vec<String>> = served
                .iter()
                .map(|p| vec![p["id"].to_string(), cell(&p["name"]), cell(&p["driver"]), ids(&p["provision_ids"])])
                .collect();
            out.text(&table(&["ID", "NAME", "DRIVER", "PROVISIONS"], &lines))
        }
        Command::Show { id, include_sensitive } => {
            let served = backend.provider(id, include_sensitive).await?;
            print_one(out, &served, &describe(&served))
        }
        Command::Update { id, values, name, description } => {
            let patch = values.as_deref().map(read_values).transpose()?.unwrap_or_else(|| json!({}));
            let served = backend.update_provider(id, name.as_deref(), description.as_deref(), &patch).await?;
            print_one(out, &served, &format!("provider {id} updated"))
        }
        Command::Delete { id } => {
            backend.delete_provider(id).await?;
            print_one(out, &json!({"id": id, "deleted": true}), &format!("provider {id} deleted"))
        }
    }
}

fn print_one(out: &Output, served: &Value, text: &str) -> anyhow::Result<()> {
    if out.json { out.json(served) } else { out.text(text) }
}

fn describe(p: &Value) -> String {
    let mut text = format!(
        "PROVIDER {}\nNAME         {}\nDRIVER       {}\nDESCRIPTION  {}\nPROVISIONS   {}\n\nCONNECTION\n",
        p["id"],
        cell(&p["name"]),
        cell(&p["driver"]),
        cell(&p["description"]),
        p["provision_ids"].as_array().map(|a| a.iter().map(cell).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    );
    let rows: Vec<Vec<String>> =
        p["connection"].as_object().into_iter().flatten().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
    text.push_str(&table(&["NAME", "VALUE"], &rows));
    text
}

fn ids(ids: &Value) -> String {
    let ids: Vec<String> = ids.as_array().into_iter().flatten().map(Value::to_string).collect();
    if ids.is_empty() { "-".into() } else { ids.join(",") }
}
