//! formwork: a durable provisioning orchestrator that runs OpenNebula OneForm driver folders.
//!
//! Map of the crate (data flows one way, top to bottom):
//! - [`cli`]: one file per subcommand; parses nothing itself beyond arguments, prints data on
//!   stdout (tables or `--json`) and errors on stderr.
//! - [`settings`]: flags > environment > config file > defaults, resolved once into
//!   [`settings::Settings`]; nothing else reads the environment.
//! - [`driver`]: driver folders: discovery, verification, inputs, validation, JSON Schema.
//!   Pure: no processes, no database.
//! - [`suggest`]: "did you mean" for names people type.
//!
//! The lifecycle (store, engine, stages, exec, one, render, api) arrives in later issues; see
//! ARCHITECTURE.md for the whole picture.

pub mod cli;
pub mod driver;
pub mod engine;
pub mod exec;
pub mod one;
pub mod onesim;
pub mod render;
pub mod service;
pub mod settings;
pub mod stages;
pub mod store;
pub mod suggest;
pub mod units;
