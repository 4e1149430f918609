//! `formwork provision …`: create, list, show, logs, validate, scale, deprovision, retry,
//! recover, cancel, delete and resume. Operations run in the foreground with one progress line
//! per stage on stderr; every command answers `--json`.

mod inspect;
mod operate;

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::backend::Backend;
use super::output::Output;
use super::values::read_values;
use crate::service::{self, Change, NewProvision, Request, State};
use inspect::{delete, list, show, update, validate_values};
use operate::{cancel, create, operate, public_ips, resume};

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

pub(crate) async fn run(cmd: Command, backend: &impl Backend, out: &Output) -> anyhow::Result<()> {
    if !matches!(cmd, Command::Resume { .. } | Command::Drive { .. } | Command::Validate { .. })
        && let Some(orphans) = backend.adopt_orphans()?
    {
        eprintln!(
            "note: resuming interrupted operations of provisions {:?} in the background (process {})",
            orphans.provisions, orphans.pid
        );
    }
    match cmd {
        Command::Create { driver, provider, deployment, values, name, description, detach } => {
            let values = values.as_deref().map(read_values).transpose()?.unwrap_or_else(|| json!({}));
            let new = NewProvision { driver, deployment, provider_id: provider, values, name, description };
            create(backend, &new, detach, out).await
        }
        Command::Drive { operation, event } => {
            let service = backend.local_only("provision drive", "it drives an operation of this machine's database")?;
            service.drive(&crate::service::Caller::local(), operation, &event).await?;
            Ok(())
        }
        Command::List { all, format } => list(backend, all, format.as_deref(), out).await,
        Command::Show { id, include_sensitive, format } => {
            show(backend, id, include_sensitive, format.as_deref(), out).await
        }
        Command::Logs { id, follow, all } => crate::cli::logs::run(backend, id, follow, all, out).await,
        Command::AddHost { id, amount, ips } => {
            let request = if ips.is_empty() {
                Request::ScaleUp { amount: amount.unwrap_or(1) }
            } else {
                Request::AddHosts { ips }
            };
            operate(backend, id, &request, out).await
        }
        Command::DelHost { id, ids, amount, force } => {
            operate(backend, id, &Request::ScaleDown { ids, amount, force }, out).await
        }
        Command::Deprovision { id, force, hosts, networks, datastores } => {
            operate(backend, id, &Request::Deprovision { force, hosts, networks, datastores }, out).await
        }
        Command::AddIp { id, amount } => public_ips(backend, id, Change::Add { amount }, out).await,
        Command::DelIp { id, ar_id } => public_ips(backend, id, Change::Remove { ar_id }, out).await,
        Command::Update { id, name, description, values, onedeploy_tags } => {
            let values = values.as_deref().map(read_values).transpose()?;
            update(backend, id, &service::Update { name, description, values, onedeploy_tags }, out).await
        }
        Command::Rename { id, name } => {
            update(backend, id, &service::Update { name: Some(name), ..Default::default() }, out).await
        }
        Command::Retry { id } => operate(backend, id, &Request::Retry, out).await,
        Command::Recover { id, target } => {
            let target = State::parse(&target).ok_or_else(|| {
                service::Error::invalid(format!(
                    "'{target}' is not a provision state; states are named as OneForm names them, e.g. APPLYING"
                ))
            })?;
            operate(backend, id, &Request::Recover { target }, out).await
        }
        Command::Cancel { id } => cancel(backend, id, out).await,
        Command::Delete { id, force } => delete(backend, id, force, out).await,
        Command::Resume { on_interrupted } => resume(backend, on_interrupted, out).await,
        Command::Validate { driver, deployment, values } => {
            validate_values(backend, &driver, deployment.as_deref(), values.as_deref(), out).await
        }
    }
}
