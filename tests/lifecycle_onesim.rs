//! The lifecycle against onesim through the real XML-RPC client: formwork (with the scripted
//! Terraform and Ansible) registers and removes its OpenNebula objects over HTTP, and onesim
//! ends exactly as it started.

// Tests start onesim and read its first line.
#![allow(clippy::disallowed_methods)]

mod common;

use common::Home;
use common::onesim::{Onesim, assert_no_duplicates, objects, use_endpoint};
use serde_json::json;

#[test]
fn create_and_deprovision_through_onesim_leave_it_as_it_started() {
    let mut home = Home::with_fakes();
    let state = home.tmp.path().join("onesim.json");
    let sim = Onesim::start(&state);
    use_endpoint(&mut home, &sim);
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t"}"#)).ok();
    // Touch onesim once so its state file exists before anything is created.
    let before = {
        let p = home.run_with_stdin(
            &["--json", "provision", "create", "sim", "--values", "-"],
            Some(&json!({"oneform_hosts": 2, "oneform_public_ips": 1}).to_string()),
        );
        let p = p.ok().json();
        assert_eq!(p["state"], "RUNNING");
        assert_eq!(p["one_objects"]["hosts"].as_array().unwrap().len(), 2);
        let during = objects(&state);
        assert!(during.iter().any(|n| n == "hosts:10.0.0.10"), "{during:?}");
        assert!(during.iter().any(|n| n.starts_with("clusters:Sim (provision_1)")), "{during:?}");
        during.into_iter().filter(|n| !n.contains("(provision_1)") && !n.starts_with("hosts:")).collect::<Vec<_>>()
    };
    let done = home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert_eq!(objects(&state), before, "onesim holds exactly what it held before the provision");
    assert!(!home.data_dir().join("one-sim.json").exists(), "the model was not used: the client was");
    sim.stop();
}

#[test]
fn wrong_credentials_are_refused_with_the_authentication_error() {
    let mut home = Home::with_fakes();
    let state = home.tmp.path().join("onesim.json");
    let sim = Onesim::start(&state);
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "oneadmin:wrong\n").unwrap();
    home.env.push(("ONE_XMLRPC".into(), sim.url.clone()));
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t"}"#)).ok();
    let run = home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#));
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("CONFIGURING_ONE failed"), "{}", run.stderr());
    assert!(!run.stderr().contains("wrong"), "the password never shows: {}", run.stderr());
    sim.stop();
}

#[test]
fn a_retry_after_a_failure_half_way_through_configuring_one_adopts_what_exists_and_creates_the_rest() {
    let mut home = Home::with_fakes();
    let state = home.tmp.path().join("onesim.json");
    // The first network is made but its answer is lost: formwork cannot know its id.
    let sim = Onesim::with_faults(&state, &["--fail-rate", "one.vn.allocate=1:drop"]);
    use_endpoint(&mut home, &sim);
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t"}"#)).ok();
    let run = home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 2}"#));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("one.vn.allocate"), "the error names the call: {}", run.stderr());
    let failed = home.run(&["--json", "provision", "show", "1"]).ok().json();
    assert_eq!(failed["state"], "CONFIGURING_ONE_FAILURE");
    sim.stop();
    let half = objects(&state);
    assert!(half.iter().any(|n| n.starts_with("clusters:Sim (provision_1)")), "{half:?}");
    assert!(half.iter().any(|n| n.starts_with("vnets:") && n.contains("(provision_1)")), "{half:?}");
    assert!(!half.iter().any(|n| n.starts_with("hosts:")), "{half:?}");

    let sim = Onesim::start(&state);
    use_endpoint(&mut home, &sim);
    let done = home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    sim.stop();
    let after = objects(&state);
    assert_no_duplicates(&after);
    for name in half.iter().filter(|n| n.contains("(provision_1)")) {
        assert!(after.contains(name), "{name} was adopted: {after:?}");
    }
    assert_eq!(after.iter().filter(|n| n.starts_with("hosts:")).count(), 2, "{after:?}");
    assert_eq!(after.iter().filter(|n| n.starts_with("vnets:") && n.contains("(provision_1)")).count(), 2);
    let shown = home.run(&["--json", "provision", "show", "1"]).ok().json();
    for network in shown["one_objects"]["networks"].as_array().unwrap() {
        assert!(network["id"].is_number(), "every network has its id: {network}");
    }
}

#[test]
fn with_a_fifth_of_the_calls_failing_and_100_ms_latency_creates_finish_with_retries_and_no_duplicates() {
    let mut home = Home::with_fakes();
    let state = home.tmp.path().join("onesim.json");
    let sim = Onesim::with_faults(&state, &["--fail-rate", "*=0.2", "--latency-ms", "100", "--seed", "7"]);
    use_endpoint(&mut home, &sim);
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t"}"#)).ok();
    let run = home.run_with_stdin(
        &["--json", "provision", "create", "sim", "--values", "-"],
        Some(r#"{"oneform_hosts": 3, "oneform_public_ips": 2}"#),
    );
    let mut failures = 0;
    if run.code() != 0 {
        assert_eq!(run.code(), 1, "{}", run.stderr());
        let show = home.run(&["--json", "provision", "show", "1"]).ok().json();
        assert_eq!(show["state"], "CONFIGURING_ONE_FAILURE", "{}", run.stderr());
        assert!(run.stderr().contains("one."), "the error names the call: {}", run.stderr());
        assert!(
            run.stderr().contains("provision_1") || run.stderr().contains(" id "),
            "and the object: {}",
            run.stderr()
        );
        failures += 1;
        loop {
            let retry = home.run(&["--json", "provision", "retry", "1"]);
            if retry.code() == 0 {
                break;
            }
            failures += 1;
            assert!(failures < 30, "retry does not converge: {}", retry.stderr());
            assert!(retry.stderr().contains("one."), "the error names the call: {}", retry.stderr());
        }
    }
    let shown = home.run(&["--json", "provision", "show", "1"]).ok().json();
    assert_eq!(shown["state"], "RUNNING");
    sim.stop();
    let after = objects(&state);
    assert_no_duplicates(&after);
    assert_eq!(after.iter().filter(|n| n.starts_with("hosts:")).count(), 3, "{after:?}");
    eprintln!("reached RUNNING after {failures} failed attempts");
}
