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
            if is_busy(&e) { exit::BUSY } else { exit::FAILURE }
        }
    };
    std::process::exit(code);
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn is_busy(e: &anyhow::Error) -> bool {
    use formwork::{engine, provision, store};
    let busy = |s: &store::Error| matches!(s, store::Error::Busy { .. });
    e.chain().any(|c| {
        c.downcast_ref::<store::Error>().is_some_and(busy)
            || matches!(c.downcast_ref::<engine::Error>(), Some(engine::Error::Store(s)) if busy(s))
            || matches!(c.downcast_ref::<provision::Error>(), Some(provision::Error::Store(s)) if busy(s))
    })
}
