//! `formwork driver list|show|sync|enable|disable|schema`. Drivers are rendered from their
//! served JSON (what `--json` prints), which is the same here and through a server.

use clap::Subcommand;
use serde_json::{Value, json};

use super::backend::Backend;
use super::output::{Output, cell, table};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the drivers found, with their state
    List {
        /// Only ENABLED drivers
        #[arg(short, long)]
        enabled: bool,
    },
    /// Show a driver: connection inputs, user inputs, deployments
    Show { driver: String },
    /// Verify every driver again and record ENABLED or ERROR (DISABLED stays DISABLED)
    Sync,
    /// Allow new providers and provisions to use a driver
    Enable { driver: String },
    /// Stop new providers and provisions from using a driver (existing ones keep working)
    Disable { driver: String },
    /// Print the JSON Schema (draft 2020-12) of a driver's inputs
    Schema {
        driver: String,
        /// Include this deployment's inputs (its inventory name)
        #[arg(short, long)]
        deployment: Option<String>,
        /// The provider connection inputs instead of the provision inputs
        #[arg(long, conflicts_with = "deployment")]
        connection: bool,
    },
}

pub(crate) async fn run(cmd: Command, backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    for warning in backend.driver_warnings()? {
        out.warn(&warning);
    }
    match cmd {
        Command::List { enabled } => list(backend, enabled, out).await,
        Command::Show { driver } => show(backend, &driver, out).await,
        Command::Sync => sync(backend, out).await,
        Command::Enable { driver } => toggle(backend, &driver, true, out).await,
        Command::Disable { driver } => toggle(backend, &driver, false, out).await,
        Command::Schema { driver, deployment, connection } => {
            out.json(&backend.driver_schema(&driver, deployment.as_deref(), connection).await?)
        }
    }
}

/// A served driver's id, as OneForm clients compute it: the basename of `system_path` (a
/// broken driver is served under its folder name).
fn id(d: &Value) -> String {
    if is_broken(d) {
        return cell(&d["name"]);
    }
    let path = d["system_path"].as_str().unwrap_or_default();
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// A driver that failed verification is served without its inputs and deployments.
fn is_broken(d: &Value) -> bool {
    d.get("deployment_confs").is_none()
}

async fn list(backend: &impl Backend, enabled_only: bool, out: &Output) -> anyhow::Result<()> {
    let drivers = backend.drivers(enabled_only).await?;
    if out.json {
        return out.json(&drivers);
    }
    let rows: Vec<Vec<String>> = drivers
        .iter()
        .map(|d| {
            if is_broken(d) {
                return vec![id(d), cell(&d["state"]), "-".into(), "-".into(), "-".into()];
            }
            let deployments = d["deployment_confs"].as_array().into_iter().flatten().map(|c| cell(&c["inventory"]));
            vec![
                id(d),
                cell(&d["state"]),
                cell(&d["version"]),
                cell(&d["registry"]),
                deployments.collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    out.text(&table(&["NAME", "STATE", "VERSION", "REGISTRY", "DEPLOYMENTS"], &rows))
}

async fn show(backend: &impl Backend, name: &str, out: &Output) -> anyhow::Result<()> {
    let d = backend.driver(name).await?;
    if out.json {
        return out.json(&d);
    }
    if is_broken(&d) {
        return out.text(&format!(
            "DRIVER {}\nSTATE     ERROR\nPATH      {}\nERROR     {}\n\nFix the driver folder, then run `formwork driver sync`.\n",
            id(&d),
            cell(&d["system_path"]),
            d["error_msg"].as_str().unwrap_or("(no reason recorded)")
        ));
    }
    out.text(&describe(&d))
}

fn describe(d: &Value) -> String {
    let mut text = format!(
        "DRIVER {}\nNAME         {}\nSTATE        {}\nVERSION      {}\nREGISTRY     {}\nPATH         {}\nDESCRIPTION  {}\n",
        id(d),
        cell(&d["name"]),
        cell(&d["state"]),
        cell(&d["version"]),
        cell(&d["registry"]),
        cell(&d["system_path"]),
        d["description"].as_str().unwrap_or_default().trim()
    );
    text.push_str(&capabilities(&d["capabilities"]));
    text.push_str("\nCONNECTION INPUTS\n");
    text.push_str(&inputs_table(&d["connection"]));
    text.push_str("\nUSER INPUTS\n");
    text.push_str(&inputs_table(&d["user_inputs"]));
    for c in d["deployment_confs"].as_array().into_iter().flatten() {
        let names = |kind: &str| -> String {
            c["one_objects"][kind]
                .as_array()
                .map(|a| a.iter().map(|o| cell(&o["name"])).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        };
        text.push_str(&format!(
            "\nDEPLOYMENT {} ({})\nNETWORKS     {}\nDATASTORES   {}\n",
            cell(&c["inventory"]),
            cell(&c["name"]),
            names("networks"),
            names("datastores")
        ));
        if let Some(tags) = c.get("onedeploy_tags").and_then(Value::as_str) {
            text.push_str(&format!("TAGS         {tags}\n"));
        }
        if let Some(inputs) = c.get("user_inputs") {
            text.push_str(&inputs_table(inputs));
        }
    }
    text
}

/// The served `capabilities`: each operation with the ways it is taken in, and how a
/// scale-up is configured (nothing when the driver is served without them).
fn capabilities(c: &Value) -> String {
    let Some(caps) = c.as_object() else {
        return String::new();
    };
    let ops: Vec<String> = ["add-host", "del-host", "add-ip", "del-ip"]
        .iter()
        .filter_map(|op| {
            let ways: Vec<String> = caps.get(*op)?.as_array()?.iter().map(cell).collect();
            (!ways.is_empty()).then(|| format!("{op} ({})", ways.join(", ")))
        })
        .collect();
    format!("OPERATIONS   {}\nSCALE-UP     configures {}\n", ops.join(", "), cell(&c["scale-up-configures"]))
}

/// Served inputs (`name`, `type`, `default`, `sensitive`, `match`; absent keys omitted) as a
/// table; an input with no `default` key is required.
fn inputs_table(inputs: &Value) -> String {
    let inputs = inputs.as_array().map(Vec::as_slice).unwrap_or_default();
    if inputs.is_empty() {
        return "(none)\n".into();
    }
    let rows: Vec<Vec<String>> = inputs
        .iter()
        .map(|i| {
            vec![
                cell(&i["name"]),
                i["type"].as_str().unwrap_or_default().to_string(),
                i.get("default").map(cell).unwrap_or_else(|| "-".into()),
                yes_no(i.get("default").is_none()),
                yes_no(i["sensitive"].as_bool().unwrap_or(false)),
                i.get("match").map(describe_match).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "DEFAULT", "REQUIRED", "SENSITIVE", "MATCH"], &rows)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn describe_match(m: &Value) -> String {
    let values = &m["values"];
    match m["type"].as_str().unwrap_or("") {
        "list" => format!(
            "one of {}",
            values.as_array().map(|a| a.iter().map(cell).collect::<Vec<_>>().join(", ")).unwrap_or_default()
        ),
        "number" => format!(
            "{} to {}",
            values.get("min").map(cell).unwrap_or_else(|| "-∞".into()),
            values.get("max").map(cell).unwrap_or_else(|| "∞".into())
        ),
        "string" => format!("matches {}", cell(&values["regex"])),
        "map" => format!("depends on {}", cell(&m["grouped_by"])),
        other => other.to_string(),
    }
}

async fn sync(backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    let (report, outcome) = backend.sync_drivers().await?;
    if out.json {
        out.json(&report)?;
    } else {
        let mut rows: Vec<Vec<String>> =
            report["success"].as_array().into_iter().flatten().map(|n| vec![cell(n), "ok".into()]).collect();
        rows.extend(
            report["failed"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| vec![cell(&f["name"]), format!("ERROR: {}", cell(&f["error"]))]),
        );
        out.text(&table(&["DRIVER", "RESULT"], &rows))?;
    }
    Ok(outcome?)
}

async fn toggle(backend: &impl Backend, name: &str, enable: bool, out: &Output) -> anyhow::Result<()> {
    let state = backend.set_driver_enabled(name, enable).await?;
    if out.json {
        out.json(&json!({"name": name, "state": state}))
    } else {
        out.text(&format!("driver '{name}' is now {}", state.as_str()))
    }
}
