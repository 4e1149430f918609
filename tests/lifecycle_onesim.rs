//! The lifecycle against onesim through the real XML-RPC client: formwork (with the scripted
//! Terraform and Ansible) registers and removes its OpenNebula objects over HTTP, and onesim
//! ends exactly as it started.

// Tests start onesim and read its first line.
#![allow(clippy::disallowed_methods)]

mod common;

use common::Home;
use common::check::{Want, assert_registered, assert_unregistered, in_opennebula};
use common::onesim::{Onesim, objects, use_endpoint};
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
        assert_registered("created", &p, &state, Want::sim(2, 1));
        let during = objects(&state);
        assert!(during.iter().any(|n| n == "hosts:10.0.0.10"), "{during:?}");
        assert!(during.iter().any(|n| n.starts_with("clusters:Sim (provision_1)")), "{during:?}");
        during.into_iter().filter(|n| !n.contains("(provision_1)") && !n.starts_with("hosts:")).collect::<Vec<_>>()
    };
    let done = home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert_eq!(objects(&state), before, "onesim holds exactly what it held before the provision");
    assert_unregistered("done", &state, 1);
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
    let half = in_opennebula(&state, 1);
    assert_eq!(half.clusters.len(), 1, "{half:?}");
    assert_eq!(half.networks.len(), 1, "the network whose answer was lost: {half:?}");
    assert!(half.hosts.is_empty(), "{half:?}");

    let sim = Onesim::start(&state);
    use_endpoint(&mut home, &sim);
    let done = home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    sim.stop();
    // Every network has its id in the body (the lost one adopted), and nothing else exists.
    let after = assert_registered("retried", &done, &state, Want::sim(2, 0));
    assert_eq!(after.clusters, half.clusters, "the cluster was adopted");
    assert!(after.networks.contains(&half.networks[0]), "the network was adopted: {after:?}");
}

#[test]
fn with_a_fifth_of_the_calls_failing_and_100_ms_latency_creates_finish_with_retries_and_every_object_once() {
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
    assert_registered("after the retries", &shown, &state, Want::sim(3, 2));
    eprintln!("reached RUNNING after {failures} failed attempts");
}
