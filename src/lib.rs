//! formwork: a durable provisioning orchestrator that runs OpenNebula OneForm driver folders.
//!
//! Map of the crate. Calls go down only: `cli` → `service` → `engine` → `stages` →
//! `exec` / `one` / `render`; `store` sits beside the engine and is reached by `service`,
//! `engine` and `stages`; `driver`, `settings`, `units` and `suggest` are leaves anyone may use.
//! - [`cli`]: one file per command group: parses arguments, calls the service, renders tables
//!   or `--json` on stdout and progress and errors on stderr. No rule lives there.
//! - [`client`]: the REST API of `formwork serve` as typed calls that answer what the service
//!   answers, so every command runs against a server with `--server URL`.
//! - [`service`]: every operation on drivers, providers and provisions, with typed requests and
//!   one typed error that maps to exit codes (and HTTP statuses); runs operations as tasks.
//! - [`doctor`]: what a working installation needs, checked without changing it (`formwork
//!   doctor`, `GET /health?deep=true`).
//! - [`engine`]: the lifecycle: the 20 states, the pure transition function, the runner that
//!   checkpoints each transition before its effects, typed operation parameters and body.
//! - [`stages`]: the work of each stage (Terraform, OpenNebula registration, Ansible).
//! - [`store`]: the only SQL: SQLite, one writer thread with group commit, durable on power loss.
//! - [`secrets`]: sensitive values sealed at rest (XChaCha20-Poly1305) and their keys; the store
//!   seals on write and opens on read.
//! - [`exec`]: the only place that spawns processes; the provision log.
//! - [`one`]: OpenNebula over XML-RPC (and the model `onesim` serves).
//! - [`render`]: the deployment template rendered into an Ansible inventory.
//! - [`onesim`]: the OpenNebula stand-in served by the `onesim` binary.
//! - [`driver`]: driver folders: discovery, verification, inputs, validation, JSON Schema.
//!   Pure: no processes, no database.
//! - [`settings`]: flags > environment > config file > defaults, resolved once; nothing else
//!   reads the environment.
//! - [`units`]: durations and dates as people read them. [`suggest`]: "did you mean".
//! - [`notify`]: systemd's readiness protocol for `formwork serve` (`READY=1`, `STOPPING=1`).

pub mod api;
pub mod cli;
pub mod client;
pub mod doctor;
pub mod driver;
pub mod engine;
pub mod exec;
pub mod notify;
pub mod one;
pub mod onesim;
pub mod render;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod stages;
pub mod store;
pub mod suggest;
pub mod units;
