//! `formwork serve`: OneForm's REST API on this machine's data (see `crate::api`).

use std::io::Write as _;

use crate::service::{Drivers, Service};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (default 127.0.0.1:13013, OneForm's; port 0 picks a free one);
    /// also `listen` in the config file and FORMWORK_LISTEN
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); also `tls_cert` in the
    /// config file and FORMWORK_TLS_CERT
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert; also `tls_key` and FORMWORK_TLS_KEY
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Among servers sharing a PostgreSQL database: answer requests and run operations (all),
    /// answer requests only (api: its operations are run by the others), or run operations only
    /// (worker: no listener)
    #[arg(long, value_enum, default_value = "all")]
    pub role: crate::settings::Role,
}

/// Serves until SIGTERM or SIGINT; `notify_socket` is `NOTIFY_SOCKET`, where systemd waits for
/// readiness (`crate::notify`).
pub fn run(args: Args, mut settings: Settings, notify_socket: Option<&str>) -> anyhow::Result<()> {
    let notifier = crate::notify::Notifier::new(notify_socket).map_err(anyhow::Error::msg)?;
    if let Some(listen) = args.listen {
        settings.server.listen = listen;
    }
    settings.server.role = args.role;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        settings.server.tls = Some(crate::settings::Tls { cert, key });
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    let service = runtime.block_on(async move {
        // The server's own settings first: a mistake there leaves the data as it was.
        let prepared = crate::api::prepare(&settings).await?;
        let drivers = Drivers::open(&settings)?;
        let service = Service::open(settings)?;
        let ready = |_, url: &str| {
            // The first stdout line says where: scripts and tests started with port 0 read it.
            // A worker (`--role worker`) listens nowhere.
            if url.is_empty() {
                println!("formwork worker running");
            } else {
                println!("formwork listening on {url}");
            }
            let _ = std::io::stdout().flush();
            // Only then is systemd told: the socket is bound and the drivers are synced.
            notifier.ready(url);
        };
        crate::api::serve(prepared, service.clone(), drivers, ready, || notifier.stopping()).await?;
        anyhow::Ok(service)
    })?;
    // Operations still running stop with the runtime (their tools get SIGTERM); the next
    // start resumes them from their last checkpoint. The tools get the time a cancelled stage
    // gives them to stop (a Terraform writes its last state) before this process exits: a
    // service manager kills whatever outlives it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let killed = crate::service::wait_for_stopped_tools();
    if killed > 0 {
        tracing::warn!(killed, "tools that did not stop in time were killed; their stages resume at the next start");
    }
    // Its tools gone, the server leaves: another server sharing the database takes its
    // operations over at once rather than when its lease ends.
    service.leave();
    Ok(())
}
