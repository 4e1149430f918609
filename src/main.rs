//! The `formwork` binary: parse arguments, set up tracing, run, print the error once and map
//! it to an exit code.

use std::collections::HashMap;

use clap::Parser;
use formwork::cli::{self, LogFormat, exit};
use formwork::service;

fn main() {
    let args = cli::Cli::parse();
    #[allow(clippy::disallowed_methods)] // the one snapshot of the environment
    let env: HashMap<String, String> = std::env::vars().collect();
    init_tracing(args.log_format, env.get("RUST_LOG").map(String::as_str));
    let code = match cli::run(args, &env) {
        Ok(()) => exit::OK,
        // A reader that stopped early (`| head`) is not a failure of the command.
        Err(e) if is_broken_pipe(&e) => exit::OK,
        Err(e) => {
            let outcome = e.chain().find_map(|c| c.downcast_ref::<service::Error>());
            tracing::debug!(error = ?e, "command failed");
            eprintln!("error: {}", message(&e));
            if let Some(hint) = outcome.and_then(cli::hint) {
                eprintln!("hint: {hint}");
            }
            outcome.map_or(exit::FAILURE, service::Error::exit_code)
        }
    };
    std::process::exit(code);
}

/// Diagnostics on stderr, filtered by `RUST_LOG` (default: warnings and errors), as text or
/// JSON lines. They never go to stdout, which holds the command's answer.
fn init_tracing(format: LogFormat, filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter.unwrap_or("warn")).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The error as one message: the contexts added on the way up, then the service's own message
/// (whose causes it already names).
fn message(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<service::Error>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
