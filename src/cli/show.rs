//! The human form of `provision show`: OneForm's sections (information, values, tags,
//! OpenNebula resources, historic) plus the running operation, if any.

use serde_json::Value;

use super::output::{cell, table};
use crate::service::Operation as OperationRow;

/// A stored Unix time as a UTC date, or the value as it is if it is not one.
pub fn time(value: &Value) -> String {
    value.as_i64().map_or_else(|| cell(value), crate::units::date)
}

pub fn describe(p: &Value, running: Option<&OperationRow>) -> String {
    let mut text = format!(
        "PROVISION {}\nNAME         {}\nDRIVER       {}\nDEPLOYMENT   {}\nPROVIDER     {}\nSTATE        {}\nREGTIME      {}\n",
        p["id"],
        cell(&p["name"]),
        cell(&p["driver"]),
        cell(&p["deployment_file"]),
        p["provider_id"],
        cell(&p["state"]),
        time(&p["registration_time"])
    );
    if let Some(op) = running {
        text.push_str(&format!("OPERATION    {} ({}) running in process {}\n", op.id, op.kind, op.owner_pid));
    }
    let pairs = |v: &Value| -> Vec<Vec<String>> {
        v.as_object().into_iter().flatten().map(|(k, v)| vec![k.clone(), cell(v)]).collect()
    };
    text.push_str("\nPROVISION VALUES\n");
    text.push_str(&table(&["NAME", "VALUE"], &pairs(&p["user_inputs_values"])));
    text.push_str("\nTAGS\n");
    text.push_str(&table(&["NAME", "VALUE"], &pairs(&p["tags"])));
    let objects = &p["one_objects"];
    text.push_str(&format!(
        "\nOPENNEBULA RESOURCES\nCLUSTER      {} {}\n",
        cell(&objects["cluster"]["id"]),
        cell(&objects["cluster"]["name"])
    ));
    let list = |kind: &str, extra: &str| -> Vec<Vec<String>> {
        objects[kind]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| vec![cell(&o["id"]), cell(&o["name"]), cell(&o[extra])])
            .collect()
    };
    text.push_str("HOSTS\n");
    text.push_str(&table(&["ID", "NAME", "RESOURCE_ID"], &list("hosts", "resource_id")));
    text.push_str("NETWORKS\n");
    text.push_str(&table(&["ID", "NAME", "TEMPLATE"], &list("networks", "template")));
    text.push_str("DATASTORES\n");
    text.push_str(&table(&["ID", "NAME", "TEMPLATE"], &list("datastores", "template")));
    text.push_str("\nPROVISION HISTORIC\n");
    let historic: Vec<Vec<String>> = p["historic"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| vec![time(&h["time"]), cell(&h["action"]), cell(&h["description"])])
        .collect();
    text.push_str(&table(&["TIME", "ACTION", "DESCRIPTION"], &historic));
    text
}
