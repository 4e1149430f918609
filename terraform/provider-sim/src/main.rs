//! `terraform-provider-sim`: serves the `sim` provider over Terraform's plugin protocol 6.
//! Terraform starts it and talks to it over gRPC; it is not meant to be run by hand.
//!
//! It exits when the Terraform that started it goes away (see [`exit_with_parent`]): a provider
//! whose Terraform was killed would otherwise serve nobody for ever, reparented to init.

use std::os::unix::process::parent_id;
use std::time::Duration;

use nix::sys::signal::{SigHandler, Signal, signal};

/// How often the provider checks that Terraform is still its parent.
const PARENT_POLL: Duration = Duration::from_millis(500);

fn main() -> anyhow::Result<()> {
    // Terraform forwards Ctrl-C to its whole process group and then asks its providers to stop
    // over gRPC; a provider killed by the signal instead makes Terraform fail without saving
    // what it applied. So SIGINT is ignored, as HashiCorp's go-plugin servers do.
    // SAFETY: SIG_IGN installs no handler code, and it happens before any thread is started.
    unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) }?;
    exit_with_parent()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tf_provider::serve("sim", terraform_provider_sim::SimProvider::default()))
}

/// Exits the process once its parent (Terraform) is gone: a thread compares the parent pid
/// with the one at start, as a process whose parent dies is given a new one (init or a
/// subreaper). A parent already gone at start shows as pid 1.
///
/// Not `PR_SET_PDEATHSIG`: that signal fires when the *thread* that forked the provider exits,
/// and Terraform is a Go program, whose runtime may end that thread while Terraform runs on
/// (golang/go#27505); the provider would then stop half way through an apply. Records are
/// written to a temporary file and renamed, so exiting at any moment leaves none torn.
fn exit_with_parent() -> std::io::Result<()> {
    let parent = parent_id();
    let gone = move || parent == 1 || parent_id() != parent;
    if gone() {
        std::process::exit(1);
    }
    std::thread::Builder::new().name("parent-watch".into()).spawn(move || {
        loop {
            std::thread::sleep(PARENT_POLL);
            if gone() {
                std::process::exit(1);
            }
        }
    })?;
    Ok(())
}
