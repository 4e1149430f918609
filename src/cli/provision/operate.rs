//! Rendering the operations that run stages: create, the requests on an existing provision,
//! public IPs, cancel and resume. The service decides and runs; this prints where each ended.

use serde_json::{Value, json};

use super::Interrupted;
use crate::cli::backend::Backend;
use crate::cli::output::{Output, cell, table};
use crate::cli::progress::Stderr;
use crate::service::{Cancelled, Change, NewProvision, OnInterrupted, Ran, Request, Started};

pub(super) async fn create(
    backend: &impl Backend,
    new: &NewProvision,
    detach: bool,
    out: &Output,
) -> anyhow::Result<()> {
    match backend.create(new, detach, Stderr::boxed(out.json)).await? {
        Started::Detached { id, operation, pid } => {
            let text = format!(
                "ID: {id}\nrunning in the background (process {pid}); follow it with `formwork provision logs {id} --follow`"
            );
            if out.json { out.json(&json!({"id": id, "operation": operation, "pid": pid})) } else { out.text(&text) }
        }
        Started::Ran(ran) => finish(ran, out),
    }
}

/// Runs a request on an existing provision in the foreground.
pub(super) async fn operate(backend: &impl Backend, id: i64, request: &Request, out: &Output) -> anyhow::Result<()> {
    finish(backend.request(id, request, Stderr::boxed(out.json)).await?, out)
}

/// Prints where the provision ended; the error, if any, goes to the caller.
fn finish(ran: Ran, out: &Output) -> anyhow::Result<()> {
    if out.json {
        out.json(&ran.provision)?;
    } else if ran.result.is_ok() {
        out.text(&format!("provision {} is {}", ran.id, cell(&ran.provision["state"])))?;
    }
    ran.result.map(|_| ()).map_err(Into::into)
}

pub(super) async fn public_ips(backend: &impl Backend, id: i64, change: Change, out: &Output) -> anyhow::Result<()> {
    let count = backend.change_public_ips(id, change, Stderr::boxed(out.json)).await?;
    if out.json {
        return out.json(&backend.provision(id, false).await?.provision);
    }
    out.text(&format!("provision {id} has {count} public IP{}", if count == 1 { "" } else { "s" }))
}

pub(super) async fn cancel(backend: &impl Backend, id: i64, out: &Output) -> anyhow::Result<()> {
    let (operation, text, flag) = match backend.cancel(id).await? {
        Cancelled::Withdrawn { operation, kind } => (
            operation,
            format!(
                "operation {operation} ({kind}) of provision {id} was waiting in the queue: cancelled, nothing ran"
            ),
            "cancelled",
        ),
        Cancelled::Requested { operation, kind, owner_pid } => (
            operation,
            format!(
                "asked operation {operation} ({kind}) of provision {id} to stop; its process {owner_pid} stops the running tool gracefully"
            ),
            "cancel_requested",
        ),
        Cancelled::Failed { operation, state } => {
            let state = match state {
                None => "unchanged".to_string(),
                Some(Ok(state)) => state.to_string(),
                Some(Err(e)) => e,
            };
            let text = format!("operation {operation} of provision {id} had no live process; provision is now {state}");
            (operation, text, "cancelled")
        }
    };
    if !out.json {
        return out.text(&text);
    }
    let mut answer = json!({"id": id, "operation": operation});
    answer[flag] = json!(true);
    out.json(&answer)
}

pub(super) async fn resume(backend: &impl Backend, policy: Interrupted, out: &Output) -> anyhow::Result<()> {
    let service = backend.local_only(
        "provision resume",
        "it finishes operations whose process died on this machine; a server finishes its own",
    )?;
    let policy = match policy {
        Interrupted::Resume => OnInterrupted::Resume,
        Interrupted::Fail => OnInterrupted::Fail,
    };
    let done = service.resume(&crate::service::Caller::local(), policy, &|| Stderr::boxed(false)).await?;
    let report: Vec<Value> = done
        .iter()
        .map(|r| match &r.result {
            Ok(state) => json!({"id": r.id, "state": state.name()}),
            Err(e) => json!({"id": r.id, "error": e.to_string()}),
        })
        .collect();
    if out.json {
        return out.json(&report);
    }
    if done.is_empty() {
        return out.text("no interrupted operation to resume");
    }
    let rows: Vec<Vec<String>> =
        report.iter().map(|r| vec![cell(&r["id"]), cell(r.get("state").unwrap_or(&r["error"]))]).collect();
    out.text(&table(&["PROVISION", "RESULT"], &rows))?;
    match done.iter().find(|r| r.result.is_err()) {
        Some(r) => anyhow::bail!("provision {} did not finish; see `formwork provision show {}`", r.id, r.id),
        None => Ok(()),
    }
}
