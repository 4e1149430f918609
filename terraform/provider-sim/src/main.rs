//! `terraform-provider-sim`: serves the `sim` provider over Terraform's plugin protocol 6.
//! Terraform starts it and talks to it over gRPC; it is not meant to be run by hand.

use nix::sys::signal::{SigHandler, Signal, signal};

fn main() -> anyhow::Result<()> {
    // Terraform forwards Ctrl-C to its whole process group and then asks its providers to stop
    // over gRPC; a provider killed by the signal instead makes Terraform fail without saving
    // what it applied. So SIGINT is ignored, as HashiCorp's go-plugin servers do.
    // SAFETY: SIG_IGN installs no handler code, and it happens before any thread is started.
    unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) }?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tf_provider::serve("sim", terraform_provider_sim::SimProvider::default()))
}
