//! The crash matrix's machinery: formwork run with `FORMWORK_CRASH_AT` until it kills itself,
//! `formwork provision resume` in a new process, and the tool calls the whole operation should
//! have made, given where it was killed.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use serde_json::{Value, json};

use super::Home;

/// Every stage boundary of an operation passing `stages`: entering each, and finishing each
/// (its work done, the checkpoint that records it not written).
pub fn boundaries(stages: &[&str]) -> Vec<String> {
    stages.iter().flat_map(|s| [format!("entered:{s}"), format!("finished:{s}")]).collect()
}

/// How a run with a crash point ended.
pub enum Crash {
    /// formwork killed itself there; the provision waits in that stage.
    Killed,
    /// formwork never reached the point and finished normally (a `saved:` count beyond the
    /// stage's saves).
    Passed,
}

/// Runs formwork with `FORMWORK_CRASH_AT=at` after forgetting earlier tool calls; it must die
/// by SIGKILL or finish successfully.
pub fn run_crashing(home: &mut Home, at: &str, args: &[&str], stdin: Option<&str>) -> Crash {
    home.forget_calls();
    home.env.push(("FORMWORK_CRASH_AT".into(), at.into()));
    let run = home.run_with_stdin(args, stdin);
    home.env.pop();
    match run.0.status.signal() {
        Some(9) => Crash::Killed,
        None if run.code() == 0 => Crash::Passed,
        _ => panic!("{at}: formwork neither killed itself nor succeeded ({:?})\n{}", run.0.status, run.stderr()),
    }
}

/// The stage a crash point names (`saved:CONFIGURING_ONE:3` → `CONFIGURING_ONE`).
pub fn stage_of(at: &str) -> &str {
    at.split(':').nth(1).unwrap()
}

/// Resumes the killed operation of provision `id` (the only one) to `end`, checks there is then
/// nothing left to resume, and returns the provision.
pub fn resume(home: &Home, at: &str, id: i64, end: &str) -> Value {
    let before = home.run(&["--json", "provision", "show", &id.to_string()]).ok().json();
    assert_eq!(before["state"], stage_of(at), "{at}: the interrupted stage is still recorded");
    let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
    assert_eq!(resumed, json!([{"id": id, "state": end}]), "{at}");
    assert_eq!(home.run(&["--json", "provision", "resume"]).ok().json(), json!([]), "{at}: nothing left to resume");
    home.run(&["--json", "provision", "show", &id.to_string()]).ok().json()
}

/// The tool calls an operation makes run once (`base`), plus those of the stage it was killed
/// in, run again on resume, if that stage had called them: after its work (`finished:`), or
/// after one of its OpenNebula saves (`saved:`; a stage that saves does so after its tools).
/// `again` lists each stage's tools.
pub fn expected_calls(at: &str, base: &[(&str, usize)], again: &[(&str, &[(&str, usize)])]) -> BTreeMap<String, usize> {
    let mut calls = super::check::counts(base);
    if at.starts_with("finished:") || at.starts_with("saved:") {
        let stage = stage_of(at);
        for (tool, n) in again.iter().filter(|(s, _)| *s == stage).flat_map(|(_, calls)| calls.iter()) {
            *calls.entry(tool.to_string()).or_insert(0) += n;
        }
    }
    calls
}
