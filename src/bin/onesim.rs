//! The `onesim` binary: a local OpenNebula XML-RPC endpoint (see `formwork::onesim`). It parses
//! its flags, binds, prints `onesim listening on http://HOST:PORT/RPC2` as its first stdout line
//! (so scripts and tests started with `--port 0` learn the port), and serves until SIGINT or
//! SIGTERM.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use formwork::onesim::{self, FailRule, Faults, NewUser, Options, Sim};

/// A local OpenNebula XML-RPC endpoint with oned's answers, rules and error codes.
#[derive(Debug, Parser)]
#[command(name = "onesim", version)]
struct Args {
    /// Port to listen on; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 2633)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// oneadmin's password: sessions are `oneadmin:<password>`.
    #[arg(long, default_value = "opennebula")]
    password: String,
    /// The secret of serveradmin (id 1, driver server_cipher): services that hold
    /// `serveradmin:SECRET` in their auth file (OneForm, FireEdge) act for users with
    /// `serveradmin:USER:TOKEN` sessions. Random, as oned makes it, when not given.
    #[arg(long, value_name = "SECRET")]
    serveradmin_password: Option<String>,
    /// Add a user (repeatable): sessions are `NAME:PASSWORD`; GROUP is `users` (the default,
    /// group 1) or `oneadmin` (group 0). Ids follow serveradmin's (1) in the order given.
    #[arg(long = "user", value_name = "NAME:PASSWORD[:GROUP]", value_parser = NewUser::parse)]
    users: Vec<NewUser>,
    /// Keep the objects in this file (private JSON), across runs; in memory otherwise.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Seed of the injected faults: the same seed fails the same calls.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fail RATE (0–1) of the calls of METHOD with INTERNAL, or with a dropped connection after
    /// the call ran when `:drop` follows. METHOD: `one.vn.allocate`; `*` for one dotted segment
    /// (`one.*.info`); a final `*` for the rest (`one.*`, or `*` for every method).
    #[arg(long = "fail-rate", value_name = "METHOD=RATE[:drop]", value_parser = FailRule::parse)]
    fail_rates: Vec<FailRule>,
    /// Delay every answer by this many milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,
    /// Drop this share (0–1) of all connections after their call ran, unanswered.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = onesim::faults::parse_rate)]
    drop_rate: f64,
    /// Log every call refused or faulted (debug level) on stderr.
    #[arg(long, short)]
    verbose: bool,
}

fn main() {
    let args = Args::parse();
    let level = if args.verbose { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_max_level(level).init();
    if let Err(e) = run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    let faults = Faults {
        seed: args.seed,
        rules: args.fail_rates,
        drop_rate: args.drop_rate,
        latency: Duration::from_millis(args.latency_ms),
    };
    let options = Options {
        password: args.password,
        state: args.state,
        faults,
        serveradmin_password: args.serveradmin_password,
        users: args.users,
    };
    let sim = Sim::open(&options)?;
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}; pick another --port (0 picks a free one)"))?;
    let bound = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "onesim listening on http://{bound}/RPC2")?;
    stdout.flush()?;
    drop(stdout);
    onesim::serve(listener, sim, stop_signal()).await?;
    tracing::info!("onesim stopped");
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot watch SIGINT/SIGTERM; stop onesim with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
