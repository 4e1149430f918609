//! Operations in the foreground (or handed to a background formwork): create, the requests on
//! an existing provision, public IPs, cancel and resume, with the checks that refuse a request
//! before anything is written.

use serde_json::{Value, json};

use super::Interrupted;
use crate::cli::output::{Output, cell, table};
use crate::cli::progress::Progress;
use crate::engine::{Event, Log, OnInterrupted, State, owner};
use crate::provision::{self, NewProvision, Request, Runtime};
use crate::store;

pub(super) async fn create(rt: &Runtime, new: &NewProvision, detach: bool, out: &Output) -> anyhow::Result<()> {
    let now = store::now();
    let (name, driver, provider_id, body) = provision::build(&rt.catalog, &rt.store, new, now)?;
    let id = rt.store.insert_provision(&name, &driver, provider_id, &body, now)?;
    let mut log = rt.log(id)?;
    log.info(&format!("Provision '{name}' allocated"));
    if detach {
        let op = rt.store.begin_operation(id, "create", &json!({}), &owner::current(), now)?;
        let event = serde_json::to_string(&Event::Created)?;
        let pid = background(rt, &["provision", "drive", &op.to_string(), "--event", &event])?;
        let text = format!(
            "ID: {id}\nrunning in the background (process {pid}); follow it with `formwork provision logs {id} --follow`"
        );
        return if out.json { out.json(&json!({"id": id, "operation": op, "pid": pid})) } else { out.text(&text) };
    }
    eprintln!("provision {id} created: '{name}' ({driver})");
    let mut progress = Progress::new(id, log, out.json);
    let result = rt.runner().start(id, "create", &json!({}), Event::Created, &mut progress).await;
    finish(rt, id, result, out)
}

/// Drives an operation another formwork process began and handed over (`--detach`).
pub(super) async fn drive(rt: &Runtime, operation: i64, event: &str) -> anyhow::Result<()> {
    let event: Event = serde_json::from_str(event)?;
    let op = rt.store.operation(operation)?;
    let previous = store::Owner { pid: op.owner_pid, token: op.owner_token.clone() };
    if !rt.store.take_over(op.id, &previous, &owner::current(), store::now())? {
        anyhow::bail!("operation {operation} is no longer running or was taken over by another process");
    }
    let mut progress = Progress::new(op.provision_id, rt.log(op.provision_id)?, true);
    rt.runner().continue_operation(op.id, event, &mut progress).await?;
    Ok(())
}

/// Starts `formwork <args>` in the background with this process's settings.
fn background(rt: &Runtime, args: &[&str]) -> anyhow::Result<u32> {
    let exe = std::env::current_exe()?;
    let cmd = crate::exec::Cmd::new(exe).args(args.iter().copied()).envs(rt.settings.formwork_env());
    let stderr = rt.settings.data_dir.join("logs/background.log");
    Ok(crate::exec::spawn_detached(&cmd, &stderr)?)
}

/// Nothing may stay in a transitional state with nobody working on it: if an operation's
/// process died, a background `resume` takes it over.
pub(super) fn resume_in_background(rt: &Runtime) -> anyhow::Result<()> {
    let orphans: Vec<i64> = rt
        .store
        .running_operations()?
        .into_iter()
        .filter(|op| !owner::is_alive(&store::Owner { pid: op.owner_pid, token: op.owner_token.clone() }))
        .map(|op| op.provision_id)
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    let pid = background(rt, &["provision", "resume"])?;
    eprintln!("note: resuming interrupted operations of provisions {orphans:?} in the background (process {pid})");
    Ok(())
}

/// Runs a request on an existing provision in the foreground.
pub(super) async fn operate(rt: &Runtime, id: i64, request: &Request, out: &Output) -> anyhow::Result<()> {
    let row = rt.store.provision(id)?;
    // A running operation explains a refusal better than the state it has put the provision in.
    if let Some(op) = rt.store.running_operation(id)? {
        return Err(store::Error::Busy { provision_id: id, operation: Box::new(op) }.into());
    }
    let (kind, params, event) = provision::plan(&rt.store, &row, request)?;
    refuse_unmanaged(rt, &row.body, &params).await?;
    let mut progress = Progress::new(id, rt.log(id)?, out.json);
    let result = rt.runner().start(id, kind, &params, event, &mut progress).await;
    finish(rt, id, result, out)
}

pub(super) async fn public_ips(rt: &Runtime, id: i64, change: provision::Change, out: &Output) -> anyhow::Result<()> {
    let mut progress = Progress::new(id, rt.log(id)?, out.json);
    let count = provision::change_public_ips(rt, id, change, &mut progress).await?;
    if out.json {
        return out.json(&provision::serve(&rt.store.provision(id)?, &rt.store.historic(id)?, false));
    }
    out.text(&format!("provision {id} has {count} public IP{}", if count == 1 { "" } else { "s" }))
}

/// A teardown that is not forced is refused up front, changing nothing, while VMs or images
/// that formwork did not make still use the objects it would delete (OneForm's 405).
async fn refuse_unmanaged(rt: &Runtime, body: &Value, params: &Value) -> anyhow::Result<()> {
    let Some(resources) = params.get("resources").and_then(Value::as_object) else { return Ok(()) };
    if params["force"].as_bool().unwrap_or(false) {
        return Ok(());
    }
    let selection = crate::one::Selection::from_resources(resources)?;
    let mut objects = crate::one::OneObjects::from_value(body["one_objects"].clone())?;
    let found = crate::one::unmanaged(&rt.one, &mut objects).await?.only(&selection);
    if found.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "VMs or images formwork did not create still use these objects: {}; remove them, or pass --force to delete them too",
        serde_json::to_string(&found)?
    )
}

/// Prints where the provision ended; the error, if any, goes to the caller.
fn finish(rt: &Runtime, id: i64, result: Result<State, crate::engine::Error>, out: &Output) -> anyhow::Result<()> {
    let row = rt.store.provision(id)?;
    if out.json {
        out.json(&provision::serve(&row, &rt.store.historic(id)?, false))?;
    } else if result.is_ok() {
        out.text(&format!("provision {id} is {}", row.state))?;
    }
    result.map(|_| ()).map_err(Into::into)
}

pub(super) async fn cancel(rt: &Runtime, id: i64, out: &Output) -> anyhow::Result<()> {
    rt.store.provision(id)?;
    let Some(op) = rt.store.request_cancel(id)? else {
        anyhow::bail!("provision {id} has no running operation to cancel");
    };
    let previous = store::Owner { pid: op.owner_pid, token: op.owner_token.clone() };
    if owner::is_alive(&previous) {
        let text = format!(
            "asked operation {} ({}) of provision {id} to stop; its process {} stops the running tool gracefully",
            op.id, op.kind, op.owner_pid
        );
        return if out.json {
            out.json(&json!({"id": id, "operation": op.id, "cancel_requested": true}))
        } else {
            out.text(&text)
        };
    }
    // Nobody is working on it: mark the interrupted stage failed now.
    let runner = rt.runner();
    let done = runner.resume(OnInterrupted::Fail, owner::is_alive, |pid| open_log(rt, pid)).await?;
    let state = done.iter().find(|(p, _)| *p == id).map(|(_, r)| r.as_ref().map(ToString::to_string));
    let text = format!(
        "operation {} of provision {id} had no live process; provision is now {}",
        op.id,
        state.map_or("unchanged".into(), |s| s.unwrap_or_else(|e| e.to_string()))
    );
    if out.json { out.json(&json!({"id": id, "operation": op.id, "cancelled": true})) } else { out.text(&text) }
}

pub(super) async fn resume(rt: &Runtime, policy: Interrupted, out: &Output) -> anyhow::Result<()> {
    let policy = match policy {
        Interrupted::Resume => OnInterrupted::Resume,
        Interrupted::Fail => OnInterrupted::Fail,
    };
    let runner = rt.runner();
    let done = runner.resume(policy, owner::is_alive, |id| open_log(rt, id)).await?;
    let report: Vec<Value> = done
        .iter()
        .map(|(id, r)| match r {
            Ok(state) => json!({"id": id, "state": state.name()}),
            Err(e) => json!({"id": id, "error": e.to_string()}),
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
    match done.iter().find(|(_, r)| r.is_err()) {
        Some((id, _)) => {
            anyhow::bail!("provision {id} did not finish; see `formwork provision show {id}`")
        }
        None => Ok(()),
    }
}

/// A log for `resume`, falling back to a throw-away one if the real one cannot open.
fn open_log(rt: &Runtime, id: i64) -> Box<dyn crate::engine::Log> {
    match rt.log(id) {
        Ok(log) => Box::new(Progress::new(id, log, false)),
        Err(e) => {
            eprintln!("warning: cannot open the log of provision {id}: {e}");
            Box::new(crate::cli::progress::Discard)
        }
    }
}
