//! The `sim` Terraform provider: a simulated cloud whose state is a directory of JSON records,
//! for formwork's demo and tests (the built-in `sim` driver uses it).
//!
//! - [`provider`]: the provider block (`token`, `root`) and the values shared by the resources
//! - [`host`], [`public_ip`]: the `sim_host` and `sim_public_ip` resources (Terraform's side)
//! - [`records`]: hosts and public IPs as records, and the locked operations on them
//! - [`cloud`]: the directory layout, the lock, atomic writes, counters
//! - [`net`]: IPv4 blocks and lowest-free allocation
//! - [`faults`]: `faults.json`, failures and delays injected for tests

pub mod cloud;
pub mod faults;
pub mod host;
pub mod net;
pub mod provider;
pub mod public_ip;
pub mod records;

pub use provider::SimProvider;
