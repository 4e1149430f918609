//! The exhaustive (state, event) table: every legal pair is spelled out with its result, and
//! every other pair must be refused.

use super::*;
use State::*;

fn events() -> Vec<Event> {
    let outcomes = [
        Outcome::Init,
        Outcome::Planning,
        Outcome::Applying,
        Outcome::ConfiguringOne,
        Outcome::ConfiguringProvision { hosts: 0 },
        Outcome::ConfiguringProvision { hosts: 2 },
        Outcome::Scaling,
        Outcome::DeprovisioningOne,
        Outcome::Deprovisioning { cluster_exists: true },
        Outcome::Deprovisioning { cluster_exists: false },
        Outcome::Done,
    ];
    let mut all = vec![
        Event::Created,
        Event::StageFailed,
        Event::RetryRequested,
        Event::ScaleUpRequested,
        Event::ScaleDownRequested,
        Event::DeprovisionRequested { force: false },
        Event::DeprovisionRequested { force: true },
        Event::Resumed,
        Event::Interrupted,
    ];
    all.extend(outcomes.into_iter().map(Event::StageSucceeded));
    all
}

fn run(stage: Stage) -> Vec<Effect> {
    vec![Effect::Run(stage)]
}

/// Every legal (from, event) and what it leads to; the rest is illegal.
fn legal() -> Vec<(State, Event, State, Vec<Effect>)> {
    let ok = |o| Event::StageSucceeded(o);
    let force = Event::DeprovisionRequested { force: true };
    let plain = Event::DeprovisionRequested { force: false };
    let mut t = vec![
        (Pending, Event::Created, Init, run(Stage::Init)),
        (Pending, Event::Resumed, Init, run(Stage::Init)),
        (Init, ok(Outcome::Init), Planning, run(Stage::Planning)),
        (Planning, ok(Outcome::Planning), Applying, run(Stage::Applying)),
        (Applying, ok(Outcome::Applying), ConfiguringOne, run(Stage::ConfiguringOne)),
        (ConfiguringOne, ok(Outcome::ConfiguringOne), ConfiguringProvision, run(Stage::ConfiguringProvision)),
        (ConfiguringProvision, ok(Outcome::ConfiguringProvision { hosts: 2 }), Running, vec![]),
        (ConfiguringProvision, ok(Outcome::ConfiguringProvision { hosts: 0 }), Running, vec![Effect::Follow(force)]),
        (Scaling, ok(Outcome::Scaling), Init, run(Stage::Init)),
        (DeprovisioningOne, ok(Outcome::DeprovisioningOne), Deprovisioning, run(Stage::Deprovisioning)),
        (Deprovisioning, ok(Outcome::Deprovisioning { cluster_exists: true }), Running, vec![]),
        (Deprovisioning, ok(Outcome::Deprovisioning { cluster_exists: false }), Done, run(Stage::Done)),
        (Done, ok(Outcome::Done), Done, vec![]),
        (Running, Event::ScaleUpRequested, Scaling, run(Stage::Scaling)),
        (ScalingFailure, Event::ScaleUpRequested, Scaling, run(Stage::Scaling)),
        (Running, Event::ScaleDownRequested, DeprovisioningOne, run(Stage::DeprovisioningOne)),
        (ScalingFailure, Event::ScaleDownRequested, DeprovisioningOne, run(Stage::DeprovisioningOne)),
        (Running, plain, DeprovisioningOne, run(Stage::DeprovisioningOne)),
        (Scaling, plain, DeprovisioningOne, run(Stage::DeprovisioningOne)),
        (DeprovisioningOneFailure, plain, DeprovisioningOne, run(Stage::DeprovisioningOne)),
    ];
    for state in crate::engine::state::ALL {
        if state != Done {
            t.push((state, force, DeprovisioningOne, run(Stage::DeprovisioningOne)));
        }
        if let Some(failure) = state.failure() {
            t.push((state, Event::StageFailed, failure, vec![]));
            t.push((state, Event::Resumed, state, run(Stage::of(state).unwrap())));
            t.push((state, Event::Interrupted, failure, vec![]));
            t.push((failure, Event::RetryRequested, state, run(Stage::of(state).unwrap())));
        }
    }
    t
}

#[test]
fn every_state_event_pair_is_as_the_table_says() {
    let table = legal();
    let mut checked = 0;
    for from in crate::engine::state::ALL {
        for event in events() {
            let expected = table.iter().find(|(f, e, _, _)| *f == from && *e == event);
            let got = next(from, event);
            match expected {
                Some((_, _, to, effects)) => {
                    assert_eq!(got, Ok((*to, effects.clone())), "{from} + {event:?}");
                }
                None => assert_eq!(got, Err(IllegalTransition { from, event }), "{from} + {event:?} must be refused"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 20 * 20);
}

#[test]
fn every_move_is_legal_in_oneforms_table_or_is_its_deprovision_bypass() {
    for from in crate::engine::state::ALL {
        for event in events() {
            if let Ok((to, _)) = next(from, event) {
                assert!(
                    from.can_become(to) || to == DeprovisioningOne,
                    "{from} -> {to} on {event:?} is not in STATE_TRANSITIONS"
                );
            }
        }
    }
}

#[test]
fn refusals_say_what_is_possible() {
    let err = next(Running, Event::RetryRequested).unwrap_err();
    assert_eq!(err.to_string(), "cannot retry while the provision is RUNNING; only a *_FAILURE state can be retried");
    let err = next(ApplyingFailure, Event::DeprovisionRequested { force: false }).unwrap_err();
    assert!(err.to_string().contains("or force"), "{err}");
}
