//! The provision lifecycle: the 20 OneForm states ([`state`]), the pure transition function
//! ([`machine`]), the runner that persists each event before performing its effects
//! ([`runner`]), and operation ownership ([`owner`]) that lets a later process resume work a
//! dead one left behind.

pub mod body;
pub mod fault;
pub mod machine;
pub mod owner;
pub mod params;
pub mod runner;
pub mod state;

#[cfg(test)]
pub(crate) mod tests;

pub use body::ProvisionBody;
pub use fault::{Fault, FaultPoint, Work};
pub use machine::{Effect, Event, IllegalTransition, Outcome, Stage, System, next};
pub use params::{Params, Resources, ScaleTarget};
pub use runner::{Ctx, Error, Log, OnInterrupted, Runner, StageError, Stages};
pub use state::State;
