//! The `formwork` binary: parse arguments, run, map the outcome to an exit code.

use clap::Parser;
use formwork::cli::{self, exit};

fn main() {
    let args = cli::Cli::parse();
    let env = std::env::vars().collect();
    let code = match cli::run(args, &env) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILURE
        }
    };
    std::process::exit(code);
}
