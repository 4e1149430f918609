//! Fault injection for the crash tests (`FORMWORK_CRASH_AT`): the process sends itself SIGKILL
//! — exactly what `kill -9` does — when it reaches a chosen point, so tests can stop it at every
//! stage boundary and after every OpenNebula change a stage or a public-IP change has saved.
//! Not for normal use.

use super::machine::Stage;
use super::state::State;

/// Where to strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub point: FaultPoint,
    pub work: Work,
}

/// The work a fault strikes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Stage(Stage),
    /// An `add-ip` or `del-ip`, which runs no stage.
    PublicIps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The stage's state and attempt are recorded; none of its work has been done.
    Entered,
    /// The stage's work is done; the checkpoint that records it is not written.
    Finished,
    /// The work has saved its OpenNebula objects this many times (1-based) since it began:
    /// part of it is done and checkpointed, the rest is not.
    Saved(u32),
}

impl Fault {
    /// Parses `entered:APPLYING`, `finished:CONFIGURING_ONE`, `saved:CONFIGURING_ONE:3` or
    /// `saved:PUBLIC_IPS:1`.
    pub fn parse(text: &str) -> Option<Fault> {
        let (point, rest) = text.split_once(':')?;
        let (point, work) = match point {
            "entered" => (FaultPoint::Entered, rest),
            "finished" => (FaultPoint::Finished, rest),
            "saved" => {
                let (work, count) = rest.rsplit_once(':')?;
                (FaultPoint::Saved(count.parse().ok().filter(|n| *n >= 1)?), work)
            }
            _ => return None,
        };
        let work = match work {
            "PUBLIC_IPS" if matches!(point, FaultPoint::Saved(_)) => Work::PublicIps,
            "PUBLIC_IPS" => return None,
            stage => Work::Stage(Stage::of(State::parse(stage)?)?),
        };
        Some(Fault { point, work })
    }

    /// Called when `work` begins (`Entered`) or has done its part (`Finished`).
    pub fn strike(fault: Option<Fault>, point: FaultPoint, work: Work) {
        if fault == Some(Fault { point, work }) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Called after `work` saved its OpenNebula objects for the `saves`-th time.
    pub fn strike_after_save(fault: Option<Fault>, work: Work, saves: u32) {
        Fault::strike(fault, FaultPoint::Saved(saves), work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_parse_and_nonsense_does_not() {
        let stage = |s| Work::Stage(s);
        assert_eq!(
            Fault::parse("entered:APPLYING"),
            Some(Fault { point: FaultPoint::Entered, work: stage(Stage::Applying) })
        );
        assert_eq!(
            Fault::parse("saved:CONFIGURING_ONE:3"),
            Some(Fault { point: FaultPoint::Saved(3), work: stage(Stage::ConfiguringOne) })
        );
        assert_eq!(
            Fault::parse("saved:PUBLIC_IPS:1"),
            Some(Fault { point: FaultPoint::Saved(1), work: Work::PublicIps })
        );
        for bad in ["saved:PUBLIC_IPS:0", "entered:PUBLIC_IPS", "entered:RUNNING", "later:APPLYING", "saved:APPLYING"] {
            assert_eq!(Fault::parse(bad), None, "{bad}");
        }
    }
}
