//! Durability through the real binary: formwork killed with SIGKILL in the middle of a stage
//! and resumed by a new process, cancellation from another process, and two processes racing
//! for the same provision (exactly one may proceed).

// Tests send signals and spawn formwork itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Home;
use serde_json::{Value, json};

/// A home where no command resumes anything by itself: these tests resume explicitly.
fn manual_home() -> Home {
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
    home
}

fn sim_provider(home: &Home) {
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t0ken"}"#)).ok();
}

fn create_in_background(home: &Home, hosts: u64) -> Child {
    let mut child = home.spawn(&["--json", "provision", "create", "sim", "--values", "-"]);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(json!({"oneform_hosts": hosts}).to_string().as_bytes()).unwrap();
    child
}

/// Waits (bounded) until the fakes recorded a call of `tool` whose first argument is `first`.
fn wait_for_call(home: &Home, tool: &str, first: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if home.calls().iter().any(|c| c["tool"] == tool && c["argv"][0] == first) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{tool} {first} was never called: {:?}", home.calls());
}

fn kill9(child: &mut Child) {
    Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

fn show(home: &Home) -> Value {
    home.run(&["--json", "provision", "show", "1"]).ok().json()
}

/// The names of every object in the simulated OpenNebula, by type.
fn one_names(home: &Home) -> Vec<String> {
    let saved: Value = serde_json::from_slice(&std::fs::read(home.data_dir().join("one-sim.json")).unwrap()).unwrap();
    let mut names = Vec::new();
    for kind in ["clusters", "hosts", "datastores", "vnets"] {
        for record in saved["world"][kind].as_object().unwrap().values() {
            names.push(format!("{kind}:{}", record["name"].as_str().unwrap()));
        }
    }
    names
}

/// Asserts no OpenNebula object exists twice.
fn no_duplicates(home: &Home) {
    let names = one_names(home);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "an object was created twice: {names:?}");
}

fn count(home: &Home, tool: &str, first: &str) -> usize {
    home.calls().iter().filter(|c| c["tool"] == tool && c["argv"][0] == first).count()
}

#[test]
fn killed_during_applying_resumes_from_applying() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_apply": true}));
    let mut child = create_in_background(&home, 2);
    wait_for_call(&home, "terraform", "apply");
    kill9(&mut child);
    assert_eq!(show(&home)["state"], "APPLYING", "the interrupted stage is still recorded");

    home.scenario(json!({}));
    let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
    assert_eq!(resumed, json!([{"id": 1, "state": "RUNNING"}]));
    let p = show(&home);
    assert_eq!(p["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(count(&home, "terraform", "init"), 1, "INIT finished before the crash and did not run again");
    assert_eq!(count(&home, "terraform", "apply"), 2);
    assert_eq!(count(&home, "terraform", "plan"), 2, "a resumed apply plans again: the old plan may be stale");
    assert_eq!(home.run(&["--json", "provision", "resume"]).ok().json(), json!([]), "nothing left to resume");
    no_duplicates(&home);
    assert_eq!(one_names(&home).iter().filter(|n| n.starts_with("hosts:")).count(), 2);
}

#[test]
fn killed_during_configuring_provision_resumes_there() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_ansible": true}));
    let mut child = create_in_background(&home, 1);
    wait_for_call(&home, "ansible-playbook", "-i");
    kill9(&mut child);
    assert_eq!(show(&home)["state"], "CONFIGURING_PROVISION");
    home.scenario(json!({}));
    home.run(&["provision", "resume"]).ok();
    assert_eq!(show(&home)["state"], "RUNNING");
    assert_eq!(count(&home, "terraform", "apply"), 1, "APPLYING finished before the crash and did not run again");
    assert_eq!(count(&home, "ansible-playbook", "-i"), 2);
    no_duplicates(&home);
}

#[test]
fn resume_can_fail_the_interrupted_stage_instead() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_plan": true}));
    let mut child = create_in_background(&home, 1);
    wait_for_call(&home, "terraform", "plan");
    kill9(&mut child);
    let out = home.run(&["--json", "provision", "resume", "--on-interrupted", "fail"]).ok().json();
    assert_eq!(out, json!([{"id": 1, "state": "PLANNING_FAILURE"}]));
    home.scenario(json!({}));
    assert_eq!(home.run(&["--json", "provision", "retry", "1"]).ok().json()["state"], "RUNNING");
}

#[test]
fn cancel_from_another_process_stops_the_tool_gracefully() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_plan": true}));
    let child = create_in_background(&home, 1);
    wait_for_call(&home, "terraform", "plan");
    home.run(&["provision", "cancel", "1"]).ok();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("was cancelled"), "{stderr}");
    assert_eq!(show(&home)["state"], "PLANNING_FAILURE");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("Interrupt received"), "terraform got SIGINT first:\n{log}");
}

#[test]
fn of_two_racing_operations_exactly_one_proceeds() {
    let home = manual_home();
    sim_provider(&home);
    home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#)).ok();
    for trial in 0..5 {
        home.scenario(json!({"hang_plan": true}));
        let a = home.spawn(&["provision", "add-host", "1"]);
        let b = home.spawn(&["provision", "add-host", "1"]);
        // Whoever won reaches PLANNING and hangs there; the loser must already be refused.
        wait_for_call(&home, "terraform", "plan");
        std::thread::sleep(Duration::from_millis(300));
        let (mut a, mut b) = (a, b);
        let (ea, eb) = (a.try_wait().unwrap(), b.try_wait().unwrap());
        // The loser is refused as busy (exit 3), or, if it looked after the winner had moved
        // the provision on, by its state (exit 1); the winner is still running.
        let refused: Vec<i32> = [ea, eb].iter().filter_map(|s| s.and_then(|s| s.code())).collect();
        assert_eq!(refused.len(), 1, "trial {trial}: exactly one must proceed ({ea:?}, {eb:?})");
        assert!(refused[0] == 3 || refused[0] == 1, "trial {trial}: {refused:?}");
        home.run(&["provision", "cancel", "1"]).ok();
        let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let stderr = format!("{}{}", String::from_utf8_lossy(&oa.stderr), String::from_utf8_lossy(&ob.stderr));
        assert!(
            stderr.contains("is busy: operation") || stderr.contains("scaling needs RUNNING"),
            "trial {trial}: the loser says why: {stderr}"
        );
        home.scenario(json!({}));
        assert_eq!(home.run(&["--json", "provision", "retry", "1"]).ok().json()["state"], "RUNNING");
        // Forget the plan calls of this trial so the next one waits for its own.
        std::fs::remove_file(home.tmp.path().join("fake-calls.jsonl")).unwrap();
    }
}

/// Polls `provision show 1` until the state is `want` (bounded).
fn wait_for_state(home: &Home, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = home.run(&["--json", "provision", "show", "1"]).ok().json();
        if p["state"] == want || Instant::now() > deadline {
            assert_eq!(p["state"], want, "provision never reached {want}");
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn detach_hands_the_work_to_a_background_process() {
    let home = Home::with_fakes();
    sim_provider(&home);
    let out = home
        .run_with_stdin(
            &["--json", "provision", "create", "sim", "--detach", "--values", "-"],
            Some(r#"{"oneform_hosts": 2}"#),
        )
        .ok()
        .json();
    assert_eq!(out["id"], 1);
    assert!(out["pid"].as_u64().is_some());
    let p = wait_for_state(&home, "RUNNING");
    assert_eq!(p["one_objects"]["hosts"].as_array().unwrap().len(), 2);
}

#[test]
fn any_command_resumes_an_orphaned_operation_in_the_background() {
    let home = Home::with_fakes();
    sim_provider(&home);
    home.scenario(json!({"hang_apply": true}));
    let mut child = create_in_background(&home, 1);
    wait_for_call(&home, "terraform", "apply");
    kill9(&mut child);
    home.scenario(json!({}));
    let run = home.run(&["provision", "list"]).ok();
    assert!(
        run.stderr().contains("resuming interrupted operations of provisions [1] in the background"),
        "{}",
        run.stderr()
    );
    wait_for_state(&home, "RUNNING");
    no_duplicates(&home);
}

/// Runs formwork with a crash point: the process must die by SIGKILL.
fn run_crashing(home: &mut Home, at: &str, args: &[&str], stdin: Option<&str>) {
    home.env.push(("FORMWORK_CRASH_AT".into(), at.into()));
    let run = home.run_with_stdin(args, stdin);
    home.env.pop();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(run.0.status.signal(), Some(9), "{at}: formwork should have killed itself\n{}", run.stderr());
}

/// kill -9 on entering every stage and after every stage's work (before its checkpoint), for
/// create and for deprovision; a new process resumes, nothing runs twice that had finished,
/// and no OpenNebula object exists twice.
#[test]
fn killed_at_every_stage_boundary_resumes_to_the_same_end() {
    let create_stages = ["INIT", "PLANNING", "APPLYING", "CONFIGURING_ONE", "CONFIGURING_PROVISION"];
    for stage in create_stages {
        for point in ["entered", "finished"] {
            let at = format!("{point}:{stage}");
            let mut home = manual_home();
            sim_provider(&home);
            run_crashing(
                &mut home,
                &at,
                &["provision", "create", "sim", "--values", "-"],
                Some(r#"{"oneform_hosts": 2}"#),
            );
            assert_eq!(show(&home)["state"], stage, "{at}");
            assert_eq!(
                home.run(&["--json", "provision", "resume"]).ok().json(),
                json!([{"id": 1, "state": "RUNNING"}]),
                "{at}"
            );
            let p = show(&home);
            assert_eq!(p["one_objects"]["hosts"].as_array().unwrap().len(), 2, "{at}");
            assert!(p["one_objects"]["hosts"].as_array().unwrap().iter().all(|h| h["id"].is_i64()), "{at}");
            no_duplicates(&home);
            let before = create_stages.iter().position(|s| *s == stage).unwrap();
            if before >= 1 {
                assert_eq!(count(&home, "terraform", "init"), 1, "{at}: INIT had finished and must not run again");
            }
            if before >= 3 {
                assert_eq!(count(&home, "terraform", "apply"), 1, "{at}: APPLYING had finished and must not run again");
            }
            assert_eq!(one_names(&home).iter().filter(|n| n.starts_with("hosts:")).count(), 2, "{at}");
        }
    }
    for stage in ["DEPROVISIONING_ONE", "DEPROVISIONING", "DONE"] {
        for point in ["entered", "finished"] {
            let at = format!("{point}:{stage}");
            let mut home = manual_home();
            sim_provider(&home);
            home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 2}"#)).ok();
            let before = one_names(&home);
            run_crashing(&mut home, &at, &["provision", "deprovision", "1"], None);
            home.run(&["provision", "resume"]).ok();
            assert_eq!(show(&home)["state"], "DONE", "{at}");
            let after = one_names(&home);
            assert!(
                after.iter().all(|n| !n.contains("(provision_1)") && !n.starts_with("hosts:")),
                "{at}: left behind: {after:?}"
            );
            assert!(after.len() < before.len(), "{at}");
            assert!(
                !home.data_dir().join("work/1").exists(),
                "{at}: the working directory (with credentials) stays behind"
            );
        }
    }
}
