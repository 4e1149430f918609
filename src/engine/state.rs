//! The 20 OneForm provision states with their numbers, OneForm's legal transitions
//! (`STATE_TRANSITIONS` in provision.rb, spec §2.5), and the predicates that gate operations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A provision state. The discriminant is the number OneForm stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Pending = 0,
    Init = 1,
    Planning = 2,
    Applying = 3,
    ConfiguringProvision = 4,
    ConfiguringOne = 5,
    Running = 6,
    Scaling = 7,
    DeprovisioningOne = 8,
    Deprovisioning = 9,
    Done = 10,
    InitFailure = 11,
    PlanningFailure = 12,
    ApplyingFailure = 13,
    ConfiguringProvisionFailure = 14,
    ConfiguringOneFailure = 15,
    ScalingFailure = 16,
    DeprovisioningOneFailure = 17,
    DeprovisioningFailure = 18,
    DoneFailure = 19,
}

/// Every state, by number.
pub const ALL: [State; 20] = [
    State::Pending,
    State::Init,
    State::Planning,
    State::Applying,
    State::ConfiguringProvision,
    State::ConfiguringOne,
    State::Running,
    State::Scaling,
    State::DeprovisioningOne,
    State::Deprovisioning,
    State::Done,
    State::InitFailure,
    State::PlanningFailure,
    State::ApplyingFailure,
    State::ConfiguringProvisionFailure,
    State::ConfiguringOneFailure,
    State::ScalingFailure,
    State::DeprovisioningOneFailure,
    State::DeprovisioningFailure,
    State::DoneFailure,
];

impl State {
    pub fn number(self) -> i64 {
        self as i64
    }

    pub fn from_number(n: i64) -> Option<State> {
        usize::try_from(n).ok().and_then(|i| ALL.get(i)).copied()
    }

    /// OneForm's name, e.g. `CONFIGURING_ONE`.
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Init => "INIT",
            State::Planning => "PLANNING",
            State::Applying => "APPLYING",
            State::ConfiguringProvision => "CONFIGURING_PROVISION",
            State::ConfiguringOne => "CONFIGURING_ONE",
            State::Running => "RUNNING",
            State::Scaling => "SCALING",
            State::DeprovisioningOne => "DEPROVISIONING_ONE",
            State::Deprovisioning => "DEPROVISIONING",
            State::Done => "DONE",
            State::InitFailure => "INIT_FAILURE",
            State::PlanningFailure => "PLANNING_FAILURE",
            State::ApplyingFailure => "APPLYING_FAILURE",
            State::ConfiguringProvisionFailure => "CONFIGURING_PROVISION_FAILURE",
            State::ConfiguringOneFailure => "CONFIGURING_ONE_FAILURE",
            State::ScalingFailure => "SCALING_FAILURE",
            State::DeprovisioningOneFailure => "DEPROVISIONING_ONE_FAILURE",
            State::DeprovisioningFailure => "DEPROVISIONING_FAILURE",
            State::DoneFailure => "DONE_FAILURE",
        }
    }

    pub fn parse(name: &str) -> Option<State> {
        ALL.iter().copied().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The failure twin of a working state (`APPLYING` → `APPLYING_FAILURE`).
    pub fn failure(self) -> Option<State> {
        Some(match self {
            State::Init => State::InitFailure,
            State::Planning => State::PlanningFailure,
            State::Applying => State::ApplyingFailure,
            State::ConfiguringProvision => State::ConfiguringProvisionFailure,
            State::ConfiguringOne => State::ConfiguringOneFailure,
            State::Scaling => State::ScalingFailure,
            State::DeprovisioningOne => State::DeprovisioningOneFailure,
            State::Deprovisioning => State::DeprovisioningFailure,
            State::Done => State::DoneFailure,
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

    /// OneForm's `retry_state`: a failure state's working state.
    pub fn retry_state(self) -> Option<State> {
        ALL.iter().copied().find(|s| s.failure() == Some(self))
    }

    /// A state an operation ends in: RUNNING, DONE (whose stage only cleans up) and the failure
    /// states. Nothing follows by itself.
    pub fn is_at_rest(self) -> bool {
        self == State::Done || (self != State::Pending && crate::engine::Stage::of(self).is_none())
    }

    pub fn is_failure(self) -> bool {
        self.retry_state().is_some()
    }

    /// OneForm's `can_scale?`.
    pub fn can_scale(self) -> bool {
        matches!(self, State::Running | State::ScalingFailure)
    }

    /// OneForm's `can_deprovision?` (without `force`).
    pub fn can_deprovision(self) -> bool {
        matches!(self, State::Running | State::DeprovisioningOneFailure | State::Scaling)
    }

    /// OneForm's `STATE_TRANSITIONS`: whether `self → to` is legal. Setting the same state is
    /// a no-op OneForm allows.
    pub fn can_become(self, to: State) -> bool {
        if self == to || self.retry_state() == Some(to) {
            return true;
        }
        let next: &[State] = match self {
            State::Pending => &[State::Init],
            State::Init => &[State::Planning, State::InitFailure],
            State::Planning => &[State::Applying, State::PlanningFailure],
            State::Applying => &[State::ConfiguringOne, State::ApplyingFailure],
            State::ConfiguringOne => &[State::ConfiguringProvision, State::ConfiguringOneFailure],
            State::ConfiguringProvision => &[State::Running, State::ConfiguringProvisionFailure],
            State::Running => &[State::Scaling, State::DeprovisioningOne],
            State::Scaling => &[State::Running, State::ScalingFailure, State::Init, State::DeprovisioningOne],
            State::DeprovisioningOne => &[State::Deprovisioning, State::DeprovisioningOneFailure],
            State::Deprovisioning => &[State::Done, State::DeprovisioningFailure, State::Running],
            State::Done => &[State::DoneFailure],
            State::InitFailure
            | State::PlanningFailure
            | State::ApplyingFailure
            | State::ConfiguringProvisionFailure
            | State::ConfiguringOneFailure
            | State::ScalingFailure
            | State::DeprovisioningOneFailure
            | State::DeprovisioningFailure
            | State::DoneFailure => &[],
        };
        next.contains(&to)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(s.number(), i as i64);
            assert_eq!(State::from_number(i as i64), Some(*s));
            assert_eq!(State::parse(s.name()), Some(*s));
        }
        assert_eq!(State::from_number(20), None);
        assert_eq!(State::from_number(-1), None);
        assert_eq!(State::ConfiguringProvision.number(), 4);
        assert_eq!(State::ConfiguringOne.number(), 5);
    }

    #[test]
    fn at_rest_are_running_done_and_the_failures() {
        let rest: Vec<State> = ALL.iter().copied().filter(|s| s.is_at_rest()).collect();
        let mut expected = vec![State::Running, State::Done];
        expected.extend(ALL.iter().copied().filter(|s| s.is_failure()));
        assert_eq!(rest, expected);
    }

    #[test]
    fn failure_states_pair_with_their_stage() {
        let failures: Vec<State> = ALL.iter().copied().filter(|s| s.is_failure()).collect();
        assert_eq!(failures.len(), 9);
        for f in failures {
            let base = f.retry_state().unwrap();
            assert_eq!(base.failure(), Some(f));
            assert_eq!(format!("{}_FAILURE", base.name()), f.name());
        }
    }

    /// The whole table, spelled out as spec §2.5 lists it: every (from, to) pair is checked.
    #[test]
    fn transition_table_is_exactly_oneforms() {
        use State::*;
        let legal: &[(State, &[State])] = &[
            (Pending, &[Init]),
            (Init, &[Planning, InitFailure]),
            (Planning, &[Applying, PlanningFailure]),
            (Applying, &[ConfiguringOne, ApplyingFailure]),
            (ConfiguringOne, &[ConfiguringProvision, ConfiguringOneFailure]),
            (ConfiguringProvision, &[Running, ConfiguringProvisionFailure]),
            (Running, &[Scaling, DeprovisioningOne]),
            (Scaling, &[Running, ScalingFailure, Init, DeprovisioningOne]),
            (DeprovisioningOne, &[Deprovisioning, DeprovisioningOneFailure]),
            (Deprovisioning, &[Done, DeprovisioningFailure, Running]),
            (Done, &[DoneFailure]),
            (InitFailure, &[Init]),
            (PlanningFailure, &[Planning]),
            (ApplyingFailure, &[Applying]),
            (ConfiguringProvisionFailure, &[ConfiguringProvision]),
            (ConfiguringOneFailure, &[ConfiguringOne]),
            (ScalingFailure, &[Scaling]),
            (DeprovisioningOneFailure, &[DeprovisioningOne]),
            (DeprovisioningFailure, &[Deprovisioning]),
            (DoneFailure, &[Done]),
        ];
        for from in ALL {
            let allowed = legal.iter().find(|(f, _)| *f == from).unwrap().1;
            for to in ALL {
                let expected = from == to || allowed.contains(&to);
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
            }
        }
    }
}
