//! The `formwork` binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;
use formwork::cli::{self, exit};

fn main() {
    let args = cli::Cli::parse();
    #[allow(clippy::disallowed_methods)] // the one snapshot of the environment
    let env = std::env::vars().collect();
    let code = match cli::run(args, &env) {
        Ok(()) => exit::OK,
        // A reader that stopped early (`| head`) is not a failure of the command.
        Err(e) if is_broken_pipe(&e) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            if is_busy(&e) {
                exit::BUSY
            } else {
                exit::FAILURE
            }
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<formwork::store::Error>(),
            Some(formwork::store::Error::Busy { .. })
        )
    })
}
