//! `formwork provision …`: create, list, show, logs, validate, scale, deprovision, retry,
//! recover, cancel, delete and resume. Operations run in the foreground with one progress line
//! per stage on stderr; every command answers `--json`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::output::{self, Output, cell, table};
use super::progress::Progress;
use super::values::read_values;
use crate::driver::deployment::one_objects;
use crate::driver::validate;
use crate::engine::{Event, Log, OnInterrupted, State, owner};
use crate::provision::{self, NewProvision, Request, Runtime};
use crate::settings::Settings;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a provision and run it to RUNNING
    Create {
        /// The driver (its folder name)
        driver: String,
        /// The provider to use (default: the only provider of the driver)
        #[arg(short, long)]
        provider: Option<i64>,
        /// The deployment (inventory name); needed when the driver has several
        #[arg(short, long)]
        deployment: Option<String>,
        /// JSON or YAML file of input values, or `-` for stdin
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Hand the work to a background process, print the id and return at once
        #[arg(long)]
        detach: bool,
    },
    /// List provisions (DONE ones with --all)
    List {
        #[arg(short, long)]
        all: bool,
        /// Handlebars template rendered per provision, e.g. '{{id}} {{state}}'
        #[arg(long, value_name = "TEMPLATE")]
        format: Option<String>,
    },
    /// Show a provision: values, tags, OpenNebula resources, historic
    Show {
        id: i64,
        #[arg(long)]
        include_sensitive: bool,
        /// Handlebars template rendered with the provision, e.g. '{{state}}'
        #[arg(long, value_name = "TEMPLATE")]
        format: Option<String>,
    },
    /// Print a provision's log (the last 100 lines, or --all); --follow keeps printing
    Logs {
        id: i64,
        #[arg(short, long)]
        follow: bool,
        #[arg(short, long)]
        all: bool,
    },
    /// Check input values for a driver's deployment; prints the values with defaults filled
    Validate {
        driver: String,
        #[arg(short, long)]
        deployment: Option<String>,
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
    },
    /// Add hosts (--amount for cloud provisions, --ips for on-prem ones)
    #[command(name = "add-host", alias = "scale-up")]
    AddHost {
        /// The provision
        id: i64,
        /// How many hosts to add (cloud provisions; default 1)
        #[arg(short, long, conflicts_with = "ips")]
        amount: Option<u64>,
        /// Addresses of the hosts to add, comma-separated (on-prem provisions)
        #[arg(short, long, value_delimiter = ',')]
        ips: Vec<String>,
    },
    /// Remove hosts by OpenNebula id (--ids) or the newest --amount of them
    #[command(name = "del-host", alias = "scale-down")]
    DelHost {
        /// The provision
        id: i64,
        /// OpenNebula ids of the hosts to remove, comma-separated (`provision show` lists them)
        #[arg(short, long, value_delimiter = ',', conflicts_with = "amount")]
        ids: Vec<i64>,
        /// How many of the newest hosts to remove
        #[arg(short, long)]
        amount: Option<u64>,
        /// Delete unmanaged VMs on those hosts too
        #[arg(short, long)]
        force: bool,
    },
    /// Add public IPs (address ranges on the elastic network)
    #[command(name = "add-ip")]
    AddIp {
        /// The provision
        id: i64,
        /// How many public IPs to add
        #[arg(short, long, default_value_t = 1)]
        amount: u64,
    },
    /// Remove the public IP of one address range of the elastic network
    #[command(name = "del-ip", alias = "remove-ip")]
    DelIp {
        /// The provision
        id: i64,
        /// The address range (AR id on the elastic network) whose public IP goes
        ar_id: i64,
    },
    /// Remove everything the provision made (or only the given OpenNebula objects)
    Deprovision {
        id: i64,
        /// From any state, and deleting unmanaged VMs and images
        #[arg(short, long)]
        force: bool,
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        networks: Vec<i64>,
        #[arg(long, value_delimiter = ',')]
        datastores: Vec<i64>,
    },
    /// Change a provision's name, description, values or onedeploy tags (the record only)
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Values to merge into the provision's values (JSON or YAML), or `-` for stdin
        #[arg(long, value_name = "FILE|-")]
        values: Option<PathBuf>,
        #[arg(long)]
        onedeploy_tags: Option<String>,
    },
    /// Rename a provision
    Rename { id: i64, name: String },
    /// Run the failed stage again
    Retry { id: i64 },
    /// OneForm's recover: run the failed stage again, naming the state it goes back to
    Recover {
        id: i64,
        #[arg(long = "state")]
        target: String,
    },
    /// Stop the running operation gracefully; the provision ends in its stage's failure state
    Cancel { id: i64 },
    /// Delete a DONE provision's record (--force: any state, leaving its resources behind)
    Delete {
        id: i64,
        #[arg(short, long)]
        force: bool,
    },
    /// (internal) drive an operation handed over by --detach
    #[command(hide = true)]
    Drive {
        operation: i64,
        #[arg(long)]
        event: String,
    },
    /// Finish operations whose process died, from their last checkpoint
    Resume {
        /// `resume` runs the interrupted stage again; `fail` marks it <STAGE>_FAILURE
        #[arg(long, value_enum, default_value = "resume")]
        on_interrupted: Interrupted,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Interrupted {
    Resume,
    Fail,
}

pub fn run(cmd: Command, settings: &Settings, out: &Output) -> anyhow::Result<()> {
    if let Command::Validate { driver, deployment, values } = &cmd {
        return validate_values(settings, driver, deployment.as_deref(), values.as_deref(), out);
    }
    let rt = Runtime::open(settings.clone())?;
    if settings.auto_resume && !matches!(cmd, Command::Resume { .. } | Command::Drive { .. }) {
        resume_in_background(&rt)?;
    }
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(dispatch(cmd, &rt, out))
}

async fn dispatch(cmd: Command, rt: &Runtime, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Command::Create { driver, provider, deployment, values, name, description, detach } => {
            let values = values.as_deref().map(read_values).transpose()?.unwrap_or_else(|| json!({}));
            let new = NewProvision { driver, deployment, provider_id: provider, values, name, description };
            create(rt, &new, detach, out).await
        }
        Command::Drive { operation, event } => drive(rt, operation, &event).await,
        Command::List { all, format } => list(rt, all, format.as_deref(), out),
        Command::Show { id, include_sensitive, format } => show(rt, id, include_sensitive, format.as_deref(), out),
        Command::Logs { id, follow, all } => super::logs::run(rt, id, follow, all, out).await,
        Command::AddHost { id, amount, ips } => {
            let request = if ips.is_empty() {
                Request::ScaleUp { amount: amount.unwrap_or(1) }
            } else {
                Request::AddHosts { ips }
            };
            operate(rt, id, &request, out).await
        }
        Command::DelHost { id, ids, amount, force } => {
            operate(rt, id, &Request::ScaleDown { ids, amount, force }, out).await
        }
        Command::Deprovision { id, force, hosts, networks, datastores } => {
            operate(rt, id, &Request::Deprovision { force, hosts, networks, datastores }, out).await
        }
        Command::AddIp { id, amount } => public_ips(rt, id, provision::Change::Add { amount }, out).await,
        Command::DelIp { id, ar_id } => public_ips(rt, id, provision::Change::Remove { ar_id }, out).await,
        Command::Update { id, name, description, values, onedeploy_tags } => {
            let values = values.as_deref().map(read_values).transpose()?;
            update(rt, id, &provision::Update { name, description, values, onedeploy_tags }, out)
        }
        Command::Rename { id, name } => {
            update(rt, id, &provision::Update { name: Some(name), ..Default::default() }, out)
        }
        Command::Retry { id } => operate(rt, id, &Request::Retry, out).await,
        Command::Recover { id, target } => {
            let target = State::parse(&target).ok_or_else(|| {
                anyhow::anyhow!(
                    "'{target}' is not a provision state; states are named as OneForm names them, e.g. APPLYING"
                )
            })?;
            operate(rt, id, &Request::Recover { target }, out).await
        }
        Command::Cancel { id } => cancel(rt, id, out).await,
        Command::Delete { id, force } => delete(rt, id, force, out),
        Command::Resume { on_interrupted } => resume(rt, on_interrupted, out).await,
        Command::Validate { .. } => unreachable_validate(),
    }
}

fn unreachable_validate() -> anyhow::Result<()> {
    anyhow::bail!("validate is handled before the runtime opens")
}

async fn create(rt: &Runtime, new: &NewProvision, detach: bool, out: &Output) -> anyhow::Result<()> {
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
async fn drive(rt: &Runtime, operation: i64, event: &str) -> anyhow::Result<()> {
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
fn resume_in_background(rt: &Runtime) -> anyhow::Result<()> {
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
async fn operate(rt: &Runtime, id: i64, request: &Request, out: &Output) -> anyhow::Result<()> {
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

async fn public_ips(rt: &Runtime, id: i64, change: provision::Change, out: &Output) -> anyhow::Result<()> {
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

fn list(rt: &Runtime, all: bool, format: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let rows = rt.store.provisions(all)?;
    if out.json || format.is_some() {
        let served: Vec<Value> = rows.iter().map(|r| provision::serve(r, &[], false)).collect();
        return match format {
            Some(template) => out.text(super::format::render(template, &served)?.trim_end_matches('\n')),
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
                r.registration_time.to_string(),
            ]
        })
        .collect();
    out.text(&table(&["ID", "NAME", "DRIVER", "STATE", "HOSTS", "REGTIME"], &lines))
}

fn show(rt: &Runtime, id: i64, include_sensitive: bool, format: Option<&str>, out: &Output) -> anyhow::Result<()> {
    let row = rt.store.provision(id)?;
    let served = provision::serve(&row, &rt.store.historic(id)?, include_sensitive);
    if let Some(template) = format {
        return out.text(&super::format::render(template, std::slice::from_ref(&served))?);
    }
    if out.json {
        return out.json(&served);
    }
    out.text(&super::show::describe(&served, rt.store.running_operation(id)?.as_ref()))
}

async fn cancel(rt: &Runtime, id: i64, out: &Output) -> anyhow::Result<()> {
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

fn update(rt: &Runtime, id: i64, update: &provision::Update, out: &Output) -> anyhow::Result<()> {
    let row = provision::update(&rt.store, id, update, store::now())?;
    if out.json {
        return out.json(&provision::serve(&row, &rt.store.historic(id)?, false));
    }
    out.text(&format!("provision {id} updated"))
}

fn delete(rt: &Runtime, id: i64, force: bool, out: &Output) -> anyhow::Result<()> {
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

async fn resume(rt: &Runtime, policy: Interrupted, out: &Output) -> anyhow::Result<()> {
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
            Box::new(super::progress::Discard)
        }
    }
}

fn validate_values(
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
            let shown = output::redact_values(&inputs, &filled);
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
