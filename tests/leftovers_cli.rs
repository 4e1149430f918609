//! What a killed formwork's tools leave running is stopped by the process that takes the
//! operation over: a fake Terraform starts a helper in its process group (as Terraform starts
//! its providers), formwork is killed with SIGKILL mid-stage (the tool then dies of its
//! parent-death signal, the helper lives on), and `formwork provision resume` stops the helper
//! before the stage runs again.

// The test kills formwork itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Home;
use serde_json::json;

/// Only bounds a wait that would otherwise hang.
const WITHIN: Duration = Duration::from_secs(60);

/// Whether process `pid` runs (exists and is not a zombie nobody reaped yet).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..].split_whitespace().next() != Some("Z"),
        Err(_) => false,
    }
}

/// Waits (bounded) for the fake Terraform to note the helper it left; returns its pid.
fn wait_for_orphan(home: &Home) -> u32 {
    let path = home.tmp.path().join("fake-orphans");
    let deadline = Instant::now() + WITHIN;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            return line.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "the fake terraform never started its helper");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn resume_stops_what_the_killed_tool_left_in_its_process_group() {
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t0ken"}"#)).ok();
    home.scenario(json!({"orphan_apply": true, "hang_apply": true}));
    let mut formwork = home.spawn(&["--json", "provision", "create", "sim", "--values", "-"]);
    use std::io::Write;
    formwork.stdin.take().unwrap().write_all(json!({"oneform_hosts": 1}).to_string().as_bytes()).unwrap();
    let helper = wait_for_orphan(&home);
    Command::new("kill").args(["-9", &formwork.id().to_string()]).status().unwrap();
    formwork.wait().unwrap();
    assert!(is_running(helper), "the helper outlived formwork and its tool");

    home.scenario(json!({}));
    let resumed = home.run(&["--json", "provision", "resume"]).ok().json();
    assert_eq!(resumed, json!([{"id": 1, "state": "RUNNING"}]));
    assert!(!is_running(helper), "resume left the killed tool's helper running");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("stopped 1 process(es) the interrupted tool left running"), "{log}");
}
