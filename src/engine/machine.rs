//! The lifecycle as a pure function: `next(state, event) -> (state, effects)`. No I/O, no
//! clock, no database: the runner persists the event and the new state in one transaction and
//! only then performs the effects. Every match on `State` is exhaustive, so a new state cannot
//! be forgotten here.

use serde::{Deserialize, Serialize};

use super::state::State;

/// A unit of work that moves a provision forward; one per working state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    Init,
    Planning,
    Applying,
    ConfiguringOne,
    ConfiguringProvision,
    Scaling,
    DeprovisioningOne,
    Deprovisioning,
    Done,
}

impl Stage {
    /// The state a provision is in while this stage runs.
    pub fn state(self) -> State {
        match self {
            Stage::Init => State::Init,
            Stage::Planning => State::Planning,
            Stage::Applying => State::Applying,
            Stage::ConfiguringOne => State::ConfiguringOne,
            Stage::ConfiguringProvision => State::ConfiguringProvision,
            Stage::Scaling => State::Scaling,
            Stage::DeprovisioningOne => State::DeprovisioningOne,
            Stage::Deprovisioning => State::Deprovisioning,
            Stage::Done => State::Done,
        }
    }

    /// The stage that runs in a working state.
    pub fn of(state: State) -> Option<Stage> {
        Some(match state {
            State::Init => Stage::Init,
            State::Planning => Stage::Planning,
            State::Applying => Stage::Applying,
            State::ConfiguringOne => Stage::ConfiguringOne,
            State::ConfiguringProvision => Stage::ConfiguringProvision,
            State::Scaling => Stage::Scaling,
            State::DeprovisioningOne => Stage::DeprovisioningOne,
            State::Deprovisioning => Stage::Deprovisioning,
            State::Done => Stage::Done,
            State::Pending | State::Running => return None,
            State::InitFailure
            | State::PlanningFailure
            | State::ApplyingFailure
            | State::ConfiguringProvisionFailure
            | State::ConfiguringOneFailure
            | State::ScalingFailure
            | State::DeprovisioningOneFailure
            | State::DeprovisioningFailure
            | State::DoneFailure => return None,
        })
    }

    pub fn name(self) -> &'static str {
        self.state().name()
    }

    /// The outside system whose work this stage drives, so a failure can say whose it was.
    pub fn system(self) -> System {
        match self {
            Stage::Init | Stage::Planning | Stage::Applying | Stage::Deprovisioning => System::Terraform,
            Stage::ConfiguringOne | Stage::DeprovisioningOne => System::OpenNebula,
            Stage::ConfiguringProvision => System::Ansible,
            Stage::Scaling | Stage::Done => System::Formwork,
        }
    }
}

/// Who did the work that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    OpenNebula,
    Terraform,
    Ansible,
    /// formwork's own part of a stage (its files, its records).
    Formwork,
}

/// What happened. Requests come from operations, the rest from the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new provision starts (PENDING → INIT).
    Created,
    /// The stage of the current state finished its work.
    StageSucceeded(Outcome),
    /// The stage of the current state failed, timed out or was cancelled.
    StageFailed,
    /// `retry`, or `recover` to the same state: run the failed stage again.
    RetryRequested,
    ScaleUpRequested,
    ScaleDownRequested,
    /// `deprovision`; with `force` from any state but DONE, as OneForm's bypass.
    DeprovisionRequested {
        force: bool,
    },
    /// An engine start found the current stage's operation abandoned: run it again.
    Resumed,
    /// An engine start found it abandoned and was told to fail it instead.
    Interrupted,
}

/// What a successful stage reports when the next state depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Init,
    Planning,
    Applying,
    ConfiguringOne,
    /// Hosts left after configuration; none means the provision tears itself down (OneForm's
    /// "Provision is empty, deprovisioning...").
    ConfiguringProvision {
        hosts: usize,
    },
    Scaling,
    DeprovisioningOne,
    /// Whether the cluster still exists: a partial teardown returns to RUNNING.
    Deprovisioning {
        cluster_exists: bool,
    },
    Done,
}

impl Outcome {
    pub fn stage(self) -> Stage {
        match self {
            Outcome::Init => Stage::Init,
            Outcome::Planning => Stage::Planning,
            Outcome::Applying => Stage::Applying,
            Outcome::ConfiguringOne => Stage::ConfiguringOne,
            Outcome::ConfiguringProvision { .. } => Stage::ConfiguringProvision,
            Outcome::Scaling => Stage::Scaling,
            Outcome::DeprovisioningOne => Stage::DeprovisioningOne,
            Outcome::Deprovisioning { .. } => Stage::Deprovisioning,
            Outcome::Done => Stage::Done,
        }
    }
}

/// What the runner must do after persisting the transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Run this stage's work.
    Run(Stage),
    /// Feed this event straight back into the machine (the empty-provision teardown).
    Follow(Event),
}

/// An event that makes no sense in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} while the provision is {from}{}", describe(*event), hint(*from, *event))]
pub struct IllegalTransition {
    pub from: State,
    pub event: Event,
}

/// The lifecycle, as a table from (state, event) to (state, effects).
pub fn next(from: State, event: Event) -> Result<(State, Vec<Effect>), IllegalTransition> {
    let illegal = || IllegalTransition { from, event };
    let run = |stage: Stage| Ok((stage.state(), vec![Effect::Run(stage)]));
    match event {
        Event::Created | Event::Resumed if from == State::Pending => run(Stage::Init),
        Event::Created => Err(illegal()),
        // Every state with a stage may have been interrupted in it, DONE included (its stage
        // removes the working directory after the state is set).
        Event::Resumed => Stage::of(from).map_or(Err(illegal()), run),
        Event::Interrupted => from.failure().map_or(Err(illegal()), |failure| Ok((failure, vec![]))),
        Event::StageSucceeded(outcome) if Stage::of(from) == Some(outcome.stage()) => Ok(after(outcome)),
        Event::StageSucceeded(_) => Err(illegal()),
        Event::StageFailed => match (Stage::of(from), from.failure()) {
            (Some(_), Some(failure)) => Ok((failure, vec![])),
            _ => Err(illegal()),
        },
        Event::RetryRequested => from.retry_state().and_then(Stage::of).map_or(Err(illegal()), run),
        Event::ScaleUpRequested if from.can_scale() => run(Stage::Scaling),
        Event::ScaleDownRequested if from.can_scale() => run(Stage::DeprovisioningOne),
        Event::ScaleUpRequested | Event::ScaleDownRequested => Err(illegal()),
        Event::DeprovisionRequested { force } => {
            let allowed = from.can_deprovision() || (force && !matches!(from, State::Done));
            if allowed { run(Stage::DeprovisioningOne) } else { Err(illegal()) }
        }
    }
}

/// Where a successful stage leads.
fn after(outcome: Outcome) -> (State, Vec<Effect>) {
    let run = |stage: Stage| (stage.state(), vec![Effect::Run(stage)]);
    match outcome {
        Outcome::Init => run(Stage::Planning),
        Outcome::Planning => run(Stage::Applying),
        Outcome::Applying => run(Stage::ConfiguringOne),
        Outcome::ConfiguringOne => run(Stage::ConfiguringProvision),
        Outcome::ConfiguringProvision { hosts: 0 } => {
            (State::Running, vec![Effect::Follow(Event::DeprovisionRequested { force: true })])
        }
        Outcome::ConfiguringProvision { .. } => (State::Running, vec![]),
        Outcome::Scaling => run(Stage::Init),
        Outcome::DeprovisioningOne => run(Stage::Deprovisioning),
        Outcome::Deprovisioning { cluster_exists: true } => (State::Running, vec![]),
        Outcome::Deprovisioning { cluster_exists: false } => run(Stage::Done),
        Outcome::Done => (State::Done, vec![]),
    }
}

fn describe(event: Event) -> &'static str {
    match event {
        Event::Created => "start a new provision",
        Event::StageSucceeded(_) => "finish a stage that is not running",
        Event::StageFailed => "fail a stage that is not running",
        Event::RetryRequested => "retry",
        Event::ScaleUpRequested => "add hosts",
        Event::ScaleDownRequested => "remove hosts",
        Event::DeprovisionRequested { .. } => "deprovision",
        Event::Resumed => "resume",
        Event::Interrupted => "mark as interrupted",
    }
}

fn hint(from: State, event: Event) -> String {
    match event {
        Event::RetryRequested => "; only a *_FAILURE state can be retried".into(),
        Event::ScaleUpRequested | Event::ScaleDownRequested => "; scaling needs RUNNING or SCALING_FAILURE".into(),
        Event::DeprovisionRequested { force: false } if from != State::Done => {
            "; deprovision needs RUNNING, SCALING or DEPROVISIONING_ONE_FAILURE, or force".into()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
