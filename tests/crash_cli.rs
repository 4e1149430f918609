//! Durability through the real binary: formwork killed with SIGKILL in the middle of a stage
//! and resumed by a new process, cancellation from another process, two processes racing for
//! the same provision (exactly one may proceed), and the crash matrix: every operation killed
//! at every stage boundary and after every OpenNebula change a stage saves, each resumed to
//! the end it would have reached, checked against OpenNebula, the cloud, the Terraform state
//! and the tool calls.

// Tests send signals and spawn formwork itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::Home;
use common::check::{
    Want, assert_provisioned, assert_registered, assert_unregistered, cloud_hosts, counts, in_body, in_body_so_far,
    in_opennebula, latest_state, tool_counts,
};
use common::crash::{Crash, boundaries, expected_calls, resume, run_crashing};
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

/// A manual home with a sim provision 1 of `hosts` hosts and `ips` public IPs, RUNNING.
fn running(hosts: u64, ips: u64) -> Home {
    let home = manual_home();
    sim_provider(&home);
    let values = json!({"oneform_hosts": hosts, "oneform_public_ips": ips}).to_string();
    home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(&values)).ok();
    home
}

fn create_in_background(home: &Home, hosts: u64) -> Child {
    let mut child = home.spawn(&["--json", "provision", "create", "sim", "--values", "-"]);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(json!({"oneform_hosts": hosts}).to_string().as_bytes()).unwrap();
    child
}

/// The fake tools' calls of `tool` whose first argument is `first`.
fn calls_of(home: &Home, tool: &str, first: &str) -> Vec<Value> {
    home.calls().into_iter().filter(|c| c["tool"] == tool && c["argv"][0] == first).collect()
}

/// Waits (bounded) until the fakes recorded a call of `tool` whose first argument is `first`.
fn wait_for_call(home: &Home, tool: &str, first: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while calls_of(home, tool, first).is_empty() {
        assert!(Instant::now() < deadline, "{tool} {first} was never called: {:?}", home.calls());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(child: &mut Child) {
    Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

fn show(home: &Home, id: i64) -> Value {
    home.run(&["--json", "provision", "show", &id.to_string()]).ok().json()
}

#[test]
fn killed_during_applying_resumes_from_applying() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_apply": true}));
    let mut child = create_in_background(&home, 2);
    wait_for_call(&home, "terraform", "apply");
    kill9(&mut child);
    assert_eq!(show(&home, 1)["state"], "APPLYING", "the interrupted stage is still recorded");

    home.scenario(json!({}));
    let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
    assert_eq!(resumed, json!([{"id": 1, "state": "RUNNING"}]));
    assert_eq!(home.run(&["--json", "provision", "resume"]).ok().json(), json!([]), "nothing left to resume");
    let p = show(&home, 1);
    assert_registered("resumed", &p, &home.model(), Want::sim(2, 0));
    assert_provisioned("resumed", &home, &p, 2);
    // INIT finished before the crash and did not run again; a resumed apply plans again (the
    // old plan may be stale), and the hanging apply had made nothing.
    let want = counts(&[("terraform init", 1), ("terraform plan", 2), ("terraform apply", 2), ("ansible-playbook", 1)]);
    assert_eq!(tool_counts(&home), want);
}

#[test]
fn killed_during_configuring_provision_resumes_there() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_ansible": true}));
    let mut child = create_in_background(&home, 1);
    wait_for_call(&home, "ansible-playbook", "-i");
    kill9(&mut child);
    assert_eq!(show(&home, 1)["state"], "CONFIGURING_PROVISION");
    home.scenario(json!({}));
    home.run(&["provision", "resume"]).ok();
    let p = show(&home, 1);
    assert_eq!(p["state"], "RUNNING");
    assert_registered("resumed", &p, &home.model(), Want::sim(1, 0));
    assert_provisioned("resumed", &home, &p, 1);
    let want = counts(&[("terraform init", 1), ("terraform plan", 1), ("terraform apply", 1), ("ansible-playbook", 2)]);
    assert_eq!(tool_counts(&home), want, "only the interrupted playbook ran again");
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
fn cancelling_one_orphaned_operation_fails_only_that_one() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_plan": true}));
    for (id, plans) in [(1, 1), (2, 2)] {
        let mut child = create_in_background(&home, 1);
        let deadline = Instant::now() + Duration::from_secs(60);
        while calls_of(&home, "terraform", "plan").len() < plans {
            assert!(Instant::now() < deadline, "provision {id} never planned: {:?}", home.calls());
            std::thread::sleep(Duration::from_millis(20));
        }
        kill9(&mut child);
    }
    home.scenario(json!({}));
    home.run(&["provision", "cancel", "1"]).ok();
    assert_eq!(show(&home, 1)["state"], "PLANNING_FAILURE", "the cancelled orphan is failed");
    assert_eq!(show(&home, 2)["state"], "PLANNING", "the other orphan is not touched by a cancel of provision 1");
    let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
    assert_eq!(resumed, json!([{"id": 2, "state": "RUNNING"}]), "provision 2's operation was still there to resume");
}

/// A stage killed mid-way left its clear files (the variables, the plan it was applying, maybe a
/// state its Terraform wrote): failing it instead of resuming it saves that state and removes
/// them, and the retry starts from the saved state.
#[test]
fn failing_an_interrupted_stage_saves_its_state_and_removes_its_clear_files() {
    let home = manual_home();
    sim_provider(&home);
    home.scenario(json!({"hang_apply": true}));
    let mut child = create_in_background(&home, 1);
    wait_for_call(&home, "terraform", "apply");
    kill9(&mut child);
    let tf = home.data_dir().join("work/1/terraform");
    let clear = ["provision.auto.tfvars.json", "plan.tfplan"];
    for name in clear {
        assert!(
            tf.join(name).exists(),
            "the killed APPLYING left {name}: {:?}",
            std::fs::read_dir(&tf).unwrap().count()
        );
    }
    // As if the killed Terraform had written its state before it died.
    let left = json!({"version": 4, "serial": 41, "resources": [], "outputs": {}});
    std::fs::write(tf.join("terraform.tfstate"), left.to_string()).unwrap();

    let out = home.run(&["--json", "provision", "resume", "--on-interrupted", "fail"]).ok().json();
    assert_eq!(out, json!([{"id": 1, "state": "APPLYING_FAILURE"}]));
    for name in clear.iter().chain(&["terraform.tfstate"]) {
        assert!(!tf.join(name).exists(), "{name} outlived the interrupted stage");
    }
    assert_eq!(latest_state(&home, 1)["serial"], 41, "the state on disk was saved first");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("state an interrupted stage left behind was saved"), "{log}");
    assert!(log.contains("clear secrets the interrupted stage left were removed"), "{log}");

    home.scenario(json!({}));
    let retried = home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(retried["state"], "RUNNING");
    assert_provisioned("retried", &home, &retried, 1);
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
    assert_eq!(show(&home, 1)["state"], "PLANNING_FAILURE");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("Interrupt received"), "terraform got SIGINT first:\n{log}");
}

/// Waits (bounded) until one racer has exited and one `terraform plan` has started; returns
/// (the racer that exited, the pid of the process that started the plan). Fails at once if
/// two plans start or both racers end.
fn race_outcome(home: &Home, racers: &mut [Child; 2], trial: usize) -> (usize, u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "trial {trial}: no racer was refused, or none reached PLANNING");
        let planners: Vec<u32> =
            calls_of(home, "terraform", "plan").iter().map(|c| c["ppid"].as_u64().unwrap() as u32).collect();
        assert!(planners.len() <= 1, "trial {trial}: two operations reached PLANNING");
        let exited: Vec<usize> = (0..2).filter(|&i| racers[i].try_wait().unwrap().is_some()).collect();
        assert!(exited.len() < 2, "trial {trial}: both racers ended");
        if let ([loser], [planner]) = (exited.as_slice(), planners.as_slice()) {
            return (*loser, *planner);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn of_two_racing_operations_exactly_one_proceeds() {
    let home = manual_home();
    sim_provider(&home);
    home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#)).ok();
    for trial in 0..5 {
        home.forget_calls();
        // The winner reaches PLANNING, where the fake plan blocks until it is interrupted.
        home.scenario(json!({"hang_plan": true}));
        let mut racers = [home.spawn(&["provision", "add-host", "1"]), home.spawn(&["provision", "add-host", "1"])];
        let (loser, planner) = race_outcome(&home, &mut racers, trial);
        let winner = 1 - loser;
        assert_eq!(planner, racers[winner].id(), "trial {trial}: the plan is the winner's");
        assert!(racers[winner].try_wait().unwrap().is_none(), "trial {trial}: the winner waits in PLANNING");
        home.run(&["provision", "cancel", "1"]).ok();
        let [a, b] = racers;
        let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let (lost, won) = (&outputs[loser], &outputs[winner]);
        // The loser is refused as busy (exit 3), or, if it looked after the winner had moved
        // the provision on, by its state (exit 1).
        let stderr = String::from_utf8_lossy(&lost.stderr);
        match lost.status.code() {
            Some(3) => assert!(stderr.contains("is busy: operation"), "trial {trial}: {stderr}"),
            Some(1) => assert!(stderr.contains("scaling needs RUNNING"), "trial {trial}: {stderr}"),
            other => panic!("trial {trial}: the loser ended with {other:?}: {stderr}"),
        }
        assert_eq!(won.status.code(), Some(1), "trial {trial}: the winner was cancelled");
        assert!(String::from_utf8_lossy(&won.stderr).contains("was cancelled"), "trial {trial}");
        home.scenario(json!({}));
        let p = home.run(&["--json", "provision", "retry", "1"]).ok().json();
        assert_eq!(p["state"], "RUNNING");
        assert_registered(&format!("trial {trial}"), &p, &home.model(), Want::sim(trial + 2, 0));
        assert_provisioned(&format!("trial {trial}"), &home, &p, trial + 2);
    }
}

/// Polls `provision show 1` until the state is `want` (bounded).
fn wait_for_state(home: &Home, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let p = show(home, 1);
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
    let pid = out["pid"].as_u64().expect("the background process's pid");
    let p = wait_for_state(&home, "RUNNING");
    assert_registered("detached", &p, &home.model(), Want::sim(2, 0));
    assert_provisioned("detached", &home, &p, 2);
    assert_eq!(tool_counts(&home), counts(&GROW_CALLS));
    assert!(home.calls().iter().all(|c| c["ppid"] == pid), "the background process ran the tools");
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
    let p = wait_for_state(&home, "RUNNING");
    assert_registered("resumed", &p, &home.model(), Want::sim(1, 0));
    assert_provisioned("resumed", &home, &p, 1);
}

const CREATE: [&str; 5] = ["INIT", "PLANNING", "APPLYING", "CONFIGURING_ONE", "CONFIGURING_PROVISION"];

/// What a sim create or scale-up runs once, and again for each stage killed after its work.
const GROW_CALLS: [(&str, usize); 4] =
    [("terraform init", 1), ("terraform plan", 1), ("terraform apply", 1), ("ansible-playbook", 1)];
const GROW_AGAIN: [(&str, &[(&str, usize)]); 4] = [
    ("INIT", &[("terraform init", 1)]),
    ("PLANNING", &[("terraform plan", 1)]),
    // An apply that may have happened is never repeated blind: the stage plans again.
    ("APPLYING", &[("terraform plan", 1), ("terraform apply", 1)]),
    ("CONFIGURING_PROVISION", &[("ansible-playbook", 1)]),
];

#[test]
fn a_create_killed_at_every_stage_boundary_resumes_to_exactly_its_hosts() {
    for at in boundaries(&CREATE) {
        let mut home = manual_home();
        sim_provider(&home);
        let args = ["provision", "create", "sim", "--values", "-"];
        let killed = run_crashing(&mut home, &at, &args, Some(r#"{"oneform_hosts": 2, "oneform_public_ips": 1}"#));
        assert!(matches!(killed, Crash::Killed), "{at}: formwork should have killed itself");
        let p = resume(&home, &at, 1, "RUNNING");
        assert_registered(&at, &p, &home.model(), Want::sim(2, 1));
        assert_provisioned(&at, &home, &p, 2);
        assert_eq!(tool_counts(&home), expected_calls(&at, &GROW_CALLS, &GROW_AGAIN), "{at}");
    }
}

#[test]
fn a_scale_up_killed_at_every_stage_boundary_keeps_its_hosts_and_public_ips() {
    let stages: Vec<&str> = ["SCALING"].into_iter().chain(CREATE).collect();
    for at in boundaries(&stages) {
        let mut home = running(2, 1);
        // Public IPs changed by add-ip and del-ip since the create: the scale-up keeps them.
        home.run(&["provision", "add-ip", "1", "--amount", "2"]).ok();
        let first_ar = in_body(&show(&home, 1)).public_ips[0];
        home.run(&["provision", "del-ip", "1", &first_ar.to_string()]).ok();
        let before = show(&home, 1);
        let old = assert_registered(&at, &before, &home.model(), Want::sim(2, 2));
        let old_cloud = cloud_hosts(&home);

        let killed = run_crashing(&mut home, &at, &["provision", "add-host", "1", "--amount", "1"], None);
        assert!(matches!(killed, Crash::Killed), "{at}: formwork should have killed itself");
        let p = resume(&home, &at, 1, "RUNNING");
        let now = assert_registered(&at, &p, &home.model(), Want::sim(3, 2));
        let cloud = assert_provisioned(&at, &home, &p, 3);
        assert!(old.hosts.iter().all(|h| now.hosts.contains(h)), "{at}: the first hosts keep their ids");
        assert!(old_cloud.iter().all(|h| cloud.contains(h)), "{at}: the first hosts stay in the cloud");
        assert_eq!(now.public_ips, old.public_ips, "{at}: the same public IPs");
        assert_eq!(tool_counts(&home), expected_calls(&at, &GROW_CALLS, &GROW_AGAIN), "{at}");
    }
}

/// Kills a scale-down (`del-host` of the middle host of 3) at `at`, resumes it and checks that
/// exactly the other two hosts remain, everywhere. `Passed` if the crash point was never reached.
fn scale_down_killed_at(at: &str) -> Crash {
    let mut home = running(3, 1);
    let before = show(&home, 1);
    let old = assert_registered(at, &before, &home.model(), Want::sim(3, 1));
    let victim = before["one_objects"]["hosts"][1].clone();
    let id = victim["id"].to_string();
    if let Crash::Passed = run_crashing(&mut home, at, &["provision", "del-host", "1", "--ids", &id], None) {
        return Crash::Passed;
    }
    let mid = show(&home, 1);
    assert_eq!(in_opennebula(&home.model(), 1), in_body_so_far(&mid), "{at}: every change was saved");
    let p = resume(&home, at, 1, "RUNNING");
    let now = assert_registered(at, &p, &home.model(), Want::sim(2, 1));
    let kept: Vec<(i64, String)> = old.hosts.into_iter().filter(|(i, _)| victim["id"] != *i).collect();
    assert_eq!(now.hosts, kept, "{at}: the other hosts keep their ids");
    let cloud = assert_provisioned(at, &home, &p, 2);
    assert!(!cloud.iter().any(|(rid, _)| victim["resource_id"] == rid.as_str()), "{at}: {victim} destroyed");
    // The targeted destroy, the move of host[2] into host[1]'s place and a refresh, once each:
    // a DEPROVISIONING run again finds nothing left to do.
    let want = counts(&[("terraform destroy", 1), ("terraform state", 1), ("terraform apply -refresh-only", 1)]);
    assert_eq!(tool_counts(&home), want, "{at}");
    Crash::Killed
}

#[test]
fn a_scale_down_killed_at_every_stage_boundary_or_opennebula_change_keeps_the_other_hosts() {
    for at in boundaries(&["DEPROVISIONING_ONE", "DEPROVISIONING"]) {
        assert!(matches!(scale_down_killed_at(&at), Crash::Killed), "{at}: formwork should have killed itself");
    }
    let killed = (1..)
        .take_while(|n| matches!(scale_down_killed_at(&format!("saved:DEPROVISIONING_ONE:{n}")), Crash::Killed))
        .count();
    assert!(killed >= 1, "removing a host saves at least once");
}

/// Kills a full deprovision of provision 1 at `at` while provision 2 runs beside it; resumes
/// it to DONE and checks that nothing of provision 1 is left and provision 2 is untouched.
/// `Passed` if the crash point was never reached.
fn deprovision_killed_at(at: &str) -> Crash {
    let mut home = running(2, 2);
    let values = r#"{"oneform_hosts": 1}"#;
    home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(values)).ok();
    let other = show(&home, 2);
    let other_objects = assert_registered(at, &other, &home.model(), Want::sim(1, 0));
    if let Crash::Passed = run_crashing(&mut home, at, &["provision", "deprovision", "1"], None) {
        return Crash::Passed;
    }
    let mid = show(&home, 1);
    assert_eq!(in_opennebula(&home.model(), 1), in_body_so_far(&mid), "{at}: every change was saved");
    assert_eq!(resume(&home, at, 1, "DONE")["state"], "DONE");
    assert_unregistered(at, &home.model(), 1);
    assert!(!home.data_dir().join("work/1").exists(), "{at}: the working directory (with credentials) stays");
    assert_eq!(assert_registered(at, &show(&home, 2), &home.model(), Want::sim(1, 0)), other_objects, "{at}");
    assert_provisioned(at, &home, &other, 1);
    let again: [(&str, &[(&str, usize)]); 1] = [("DEPROVISIONING", &[("terraform destroy", 1)])];
    assert_eq!(tool_counts(&home), expected_calls(at, &[("terraform destroy", 1)], &again), "{at}");
    Crash::Killed
}

#[test]
fn a_deprovision_killed_at_every_stage_boundary_or_opennebula_change_leaves_nothing_behind() {
    for at in boundaries(&["DEPROVISIONING_ONE", "DEPROVISIONING", "DONE"]) {
        assert!(matches!(deprovision_killed_at(&at), Crash::Killed), "{at}: formwork should have killed itself");
    }
    let killed = (1..)
        .take_while(|n| matches!(deprovision_killed_at(&format!("saved:DEPROVISIONING_ONE:{n}")), Crash::Killed))
        .count();
    // A cluster, 2 datastores, 2 networks (their public IPs go with them), 2 hosts.
    assert!(killed >= 7, "a teardown saves after every deletion: {killed}");
}

/// Kills a create at `saved:<stage>:<n>`, resumes it and checks that every OpenNebula object
/// exists once and is recorded. `Passed` if the stage made fewer than `n` saves.
fn create_killed_after_save(stage: &str, n: usize) -> Crash {
    let at = format!("saved:{stage}:{n}");
    let mut home = manual_home();
    sim_provider(&home);
    let args = ["provision", "create", "sim", "--values", "-"];
    if let Crash::Passed = run_crashing(&mut home, &at, &args, Some(r#"{"oneform_hosts": 2, "oneform_public_ips": 2}"#))
    {
        return Crash::Passed;
    }
    let mid = show(&home, 1);
    let made = in_opennebula(&home.model(), 1);
    assert_eq!(made, in_body_so_far(&mid), "{at}: everything made in OpenNebula was saved with its id");
    let p = resume(&home, &at, 1, "RUNNING");
    let now = assert_registered(&at, &p, &home.model(), Want::sim(2, 2));
    // The cluster comes first, so every kill leaves something made that must be adopted.
    assert_eq!(made.clusters, now.clusters, "{at}: the cluster was adopted");
    for (kind, before, after) in [
        ("hosts", &made.hosts, &now.hosts),
        ("networks", &made.networks, &now.networks),
        ("datastores", &made.datastores, &now.datastores),
    ] {
        assert!(before.iter().all(|o| after.contains(o)), "{at}: {kind} made before the kill were adopted");
    }
    assert!(made.public_ips.iter().all(|a| now.public_ips.contains(a)), "{at}: public IPs made before were kept");
    assert_provisioned(&at, &home, &p, 2);
    assert_eq!(tool_counts(&home), expected_calls(&at, &GROW_CALLS, &GROW_AGAIN), "{at}");
    Crash::Killed
}

#[test]
fn a_create_killed_after_each_opennebula_change_resumes_with_every_object_once() {
    let killed = (1..).take_while(|&n| matches!(create_killed_after_save("CONFIGURING_ONE", n), Crash::Killed)).count();
    // A cluster, 2 datastores, 2 networks, 2 hosts, 2 public IPs.
    assert!(killed >= 9, "CONFIGURING_ONE saves after every change: {killed}");
    let killed =
        (1..).take_while(|&n| matches!(create_killed_after_save("CONFIGURING_PROVISION", n), Crash::Killed)).count();
    assert!(killed >= 1, "CONFIGURING_PROVISION saves the hosts it activates: {killed}");
}

/// The on-prem hosts of these tests: addresses only, nothing is reached.
const ONPREM: &str = r#"{"oneform_onprem_hosts": ["127.0.0.1", "127.0.0.2"]}"#;

#[test]
fn an_onprem_create_killed_at_every_stage_boundary_resumes_without_terraform() {
    for at in boundaries(&CREATE) {
        let mut home = manual_home();
        let killed = run_crashing(&mut home, &at, &["provision", "create", "onprem", "--values", "-"], Some(ONPREM));
        assert!(matches!(killed, Crash::Killed), "{at}: formwork should have killed itself");
        let p = resume(&home, &at, 1, "RUNNING");
        let now = assert_registered(&at, &p, &home.model(), Want::onprem(2));
        let names: Vec<&str> = now.hosts.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(names, ["127.0.0.1", "127.0.0.2"], "{at}");
        let again: [(&str, &[(&str, usize)]); 1] = [("CONFIGURING_PROVISION", &[("ansible-playbook", 1)])];
        assert_eq!(tool_counts(&home), expected_calls(&at, &[("ansible-playbook", 1)], &again), "{at}");
    }
}

#[test]
fn an_onprem_deprovision_killed_at_every_stage_boundary_leaves_nothing_behind() {
    for at in boundaries(&["DEPROVISIONING_ONE", "DEPROVISIONING", "DONE"]) {
        let mut home = manual_home();
        home.run_with_stdin(&["provision", "create", "onprem", "--values", "-"], Some(ONPREM)).ok();
        let killed = run_crashing(&mut home, &at, &["provision", "deprovision", "1"], None);
        assert!(matches!(killed, Crash::Killed), "{at}: formwork should have killed itself");
        resume(&home, &at, 1, "DONE");
        assert_unregistered(&at, &home.model(), 1);
        assert_eq!(tool_counts(&home), counts(&[]), "{at}: a teardown of on-prem hosts runs no tool");
    }
}

/// `add-ip` and `del-ip` run no stage; killed after each OpenNebula change they saved, `resume`
/// finishes them: the address ranges in OpenNebula, those recorded in the body and
/// `oneform_public_ips` agree, at the count the request asked for, with no range twice.
#[test]
fn public_ip_changes_killed_after_each_save_are_finished_by_resume() {
    for n in 1..=3 {
        let at = format!("saved:PUBLIC_IPS:{n}");
        let mut home = running(2, 1);
        let before = in_body(&show(&home, 1)).public_ips;
        assert_eq!(before.len(), 1, "one public IP to start with");
        let killed = run_crashing(&mut home, &at, &["provision", "add-ip", "1", "--amount", "3"], None);
        assert!(matches!(killed, Crash::Killed), "{at}: add-ip of 3 saves at least 3 times");
        let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
        assert_eq!(resumed, json!([{"id": 1, "state": "RUNNING"}]), "{at}");
        assert_eq!(home.run(&["--json", "provision", "resume"]).ok().json(), json!([]), "{at}: nothing left");
        let p = show(&home, 1);
        let now = assert_registered(&at, &p, &home.model(), Want::sim(2, 4));
        assert!(before.iter().all(|ar| now.public_ips.contains(ar)), "{at}: the first public IP stays");

        let victim = now.public_ips[1];
        let killed =
            run_crashing(&mut home, "saved:PUBLIC_IPS:1", &["provision", "del-ip", "1", &victim.to_string()], None);
        assert!(matches!(killed, Crash::Killed), "{at}: del-ip saves once");
        let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
        assert_eq!(resumed, json!([{"id": 1, "state": "RUNNING"}]), "{at}: del-ip");
        let p = show(&home, 1);
        let after = assert_registered(&at, &p, &home.model(), Want::sim(2, 3));
        assert!(!after.public_ips.contains(&victim), "{at}: address range {victim} removed");
    }
}
