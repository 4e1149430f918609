//! The provision lifecycle: the 20 OneForm states ([`state`]), the pure transition function
//! ([`machine`]), and the runner that persists each event before performing its effects.

pub mod machine;
pub mod state;

pub use machine::{Effect, Event, IllegalTransition, Outcome, Stage, next};
pub use state::State;
