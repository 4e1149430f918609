//! onesim: a local OpenNebula XML-RPC endpoint, the stand-in for oned in the demo and the tests
//! (DESIGN.md). It answers the calls formwork (and OneForm) make, `POST /RPC2`, with oned's
//! arrays, error codes and XML shapes, following OpenNebula's rules through
//! [`crate::one::FakeOne`]; `tests/conformance/pyone_check.py` checks it against OpenNebula's
//! own Python client and `tests/conformance/xsd_check.py` validates every info and pool answer
//! against OpenNebula's XSDs (`tests/conformance/xsd/`). It can inject faults (failed calls,
//! dropped connections, latency), repeatably from a seed.
//!
//! Map: [`server`] (HTTP, accept loop, shutdown) → [`sim`] (authentication, faults, the call
//! path; `auth` checks sessions, `cipher` holds oned's password digests and server tokens) →
//! `methods` / `children` / `users` / `documents` / `zones` (the XML-RPC methods) → `render` /
//! `xml` (oned's XML). `answer` holds oned's reply and error wording, `params` the reading of
//! parameters, `faults` the seeded dice.

mod answer;
mod auth;
mod children;
pub mod cipher;
mod documents;
pub mod faults;
mod methods;
mod params;
mod render;
pub mod server;
pub mod sim;
mod users;
mod xml;
mod zones;

pub use answer::Reply;
pub use documents::VERSION;
pub use faults::{Effect, FailRule, Faults};
pub use server::serve;
pub use sim::{Error, NewUser, Options, Sim, User};
