//! `formwork driver list|show|sync|enable|disable|schema`.

use clap::Subcommand;
use serde_json::{Value, json};

use super::output::{Output, cell, table};
use crate::service::{Driver, Drivers, Input, Loaded};
use crate::settings::Settings;

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

pub fn run(cmd: Command, settings: &Settings, out: &Output) -> anyhow::Result<()> {
    let drivers = Drivers::open(settings)?;
    for s in drivers.shadowed() {
        out.warn(&format!(
            "driver '{}' at {} is shadowed by {} and is not used",
            s.name,
            s.path.display(),
            s.shadowed_by.display()
        ));
    }
    match cmd {
        Command::List { enabled } => list(&drivers, enabled, out),
        Command::Show { driver } => show(&drivers, &driver, out),
        Command::Sync => sync(&drivers, out),
        Command::Enable { driver } => toggle(&drivers, &driver, true, out),
        Command::Disable { driver } => toggle(&drivers, &driver, false, out),
        Command::Schema { driver, deployment, connection } => {
            out.json(&drivers.schema(&driver, deployment.as_deref(), connection)?)
        }
    }
}

fn list(drivers: &Drivers, enabled_only: bool, out: &Output) -> anyhow::Result<()> {
    let drivers = drivers.list(enabled_only)?;
    if out.json {
        return out.json(&drivers);
    }
    let rows: Vec<Vec<String>> = drivers
        .iter()
        .map(|d| match d {
            Loaded::Ready(d) => vec![
                d.id.clone(),
                d.state.as_str().into(),
                cell(&d.version),
                d.registry.clone(),
                d.deployment_confs.iter().map(|c| c.inventory.as_str()).collect::<Vec<_>>().join(","),
            ],
            Loaded::Broken(b) => vec![b.name.clone(), b.state.as_str().into(), "-".into(), "-".into(), "-".into()],
        })
        .collect();
    out.text(&table(&["NAME", "STATE", "VERSION", "REGISTRY", "DEPLOYMENTS"], &rows))
}

fn show(drivers: &Drivers, name: &str, out: &Output) -> anyhow::Result<()> {
    let loaded = drivers.show(name)?;
    if out.json {
        return out.json(&loaded);
    }
    match loaded {
        Loaded::Broken(b) => out.text(&format!(
            "DRIVER {}\nSTATE     ERROR\nPATH      {}\nERROR     {}\n\nFix the driver folder, then run `formwork driver sync`.\n",
            b.name,
            b.system_path.display(),
            b.error_msg.as_deref().unwrap_or("(no reason recorded)")
        )),
        Loaded::Ready(d) => out.text(&describe(&d)),
    }
}

fn describe(d: &Driver) -> String {
    let mut text = format!(
        "DRIVER {}\nNAME         {}\nSTATE        {}\nVERSION      {}\nREGISTRY     {}\nPATH         {}\nDESCRIPTION  {}\n",
        d.id,
        d.name,
        d.state.as_str(),
        cell(&d.version),
        d.registry,
        d.system_path.display(),
        d.description.trim()
    );
    text.push_str("\nCONNECTION INPUTS\n");
    text.push_str(&inputs_table(&d.connection));
    text.push_str("\nUSER INPUTS\n");
    text.push_str(&inputs_table(&d.user_inputs));
    for c in &d.deployment_confs {
        let names = |kind: &str| -> String {
            c.one_objects[kind]
                .as_array()
                .map(|a| a.iter().map(|o| cell(&o["name"])).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        };
        text.push_str(&format!(
            "\nDEPLOYMENT {} ({})\nNETWORKS     {}\nDATASTORES   {}\n",
            c.inventory,
            c.name,
            names("networks"),
            names("datastores")
        ));
        if let Some(tags) = &c.onedeploy_tags {
            text.push_str(&format!("TAGS         {tags}\n"));
        }
        if let Some(inputs) = &c.user_inputs {
            text.push_str(&inputs_table(inputs));
        }
    }
    text
}

fn inputs_table(inputs: &[Input]) -> String {
    if inputs.is_empty() {
        return "(none)\n".into();
    }
    let rows: Vec<Vec<String>> = inputs
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.type_text.clone(),
                i.default.as_ref().map(cell).unwrap_or_else(|| "-".into()),
                yes_no(i.default.is_none()),
                yes_no(i.is_sensitive()),
                i.match_rule.as_ref().map(describe_match).unwrap_or_else(|| "-".into()),
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

fn sync(drivers: &Drivers, out: &Output) -> anyhow::Result<()> {
    let (report, outcome) = drivers.sync()?;
    if out.json {
        out.json(&report)?;
    } else {
        let mut rows: Vec<Vec<String>> = report.success.iter().map(|n| vec![n.clone(), "ok".into()]).collect();
        rows.extend(report.failed.iter().map(|f| vec![f.name.clone(), format!("ERROR: {}", f.error)]));
        out.text(&table(&["DRIVER", "RESULT"], &rows))?;
    }
    Ok(outcome?)
}

fn toggle(drivers: &Drivers, name: &str, enable: bool, out: &Output) -> anyhow::Result<()> {
    let state = drivers.set_enabled(name, enable)?;
    if out.json {
        out.json(&json!({"name": name, "state": state}))
    } else {
        out.text(&format!("driver '{name}' is now {}", state.as_str()))
    }
}
