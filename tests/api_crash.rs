//! `formwork serve` killed in the middle of a real create started through the API — real
//! Terraform with the `sim` provider, real ansible-playbook, onesim as OpenNebula — and started
//! again: the operation resumes by itself, with no request, and ends RUNNING with exactly the
//! hosts asked for in onesim, in the sim cloud and in the Terraform state. Three ways to die:
//! SIGKILL from outside while Terraform is creating, SIGKILL by the server itself at the crash
//! point after the apply finished and before its checkpoint (`FORMWORK_CRASH_AT`), and SIGTERM,
//! after which the server must exit on its own within a bound. `scripts/setup` installs the
//! tools; without them these tests fail and say so.

// Tests spawn formwork and onesim and signal them.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Home;
use common::check::{Want, assert_provisioned_in, assert_registered};
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Server};
use serde_json::{Value, json};

const TOKEN: &str = "crash-secret-token";
const HOSTS: usize = 2;

/// A formwork home with the real tools, onesim and a sim cloud folder.
struct World {
    sim: Option<Onesim>,
    home: Home,
    cloud: PathBuf,
    onesim_state: PathBuf,
}

impl World {
    fn new() -> World {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
        for needed in ["bin/terraform", "terraformrc", "venv/bin/ansible-playbook"] {
            assert!(tools.join(needed).exists(), ".tools/{needed} is missing: run scripts/setup first");
        }
        let mut home = Home::with_builtin();
        let cloud = home.tmp.path().join("cloud");
        let onesim_state = home.tmp.path().join("onesim.json");
        let sim = Onesim::start(&onesim_state);
        use_endpoint(&mut home, &sim);
        World { sim: Some(sim), home, cloud, onesim_state }
    }

    fn faults(&self, faults: Value) {
        common::check::set_faults(&self.cloud, &faults);
    }

    /// Host records in the sim cloud: (id, ip), sorted.
    fn cloud_hosts(&self) -> Vec<(String, String)> {
        common::check::hosts_in_cloud(&self.cloud)
    }

    fn log(&self, id: i64) -> String {
        std::fs::read_to_string(self.home.data_dir().join(format!("logs/{id}.log"))).unwrap_or_default()
    }

    /// Starts a server, makes the sim provider and posts a create of [`HOSTS`] hosts; returns
    /// the server and the provision id.
    fn start_create(&self) -> (Server, i64) {
        let server = Server::start(&self.home);
        let admin = admin(&server);
        let provider = json!({"driver": "sim", "connection_values": {"api_token": TOKEN, "endpoint": self.cloud}});
        let provider = admin.post("/api/v1/providers", &provider).expect(201).json();
        let request = json!({
            "driver": "sim", "deployment_type": "sim_cluster",
            "provider_id": provider["DOCUMENT"]["ID"].as_str().unwrap().parse::<i64>().unwrap(),
            "user_inputs_values": {"oneform_hosts": HOSTS},
        });
        let created = admin.post("/api/v1/provisions", &request).expect(201).json();
        let id = created["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap();
        (server, id)
    }

    /// Waits (bounded) until the provision's log has `text`.
    fn wait_log(&self, id: i64, text: &str, server: &mut Server) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.log(id).contains(text) {
            assert!(server.is_running(), "the server exited before {text:?}:\n{}", server.log());
            assert!(Instant::now() < deadline, "{text:?} never showed in the log:\n{}", self.log(id));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again, asks for nothing, and waits for provision `id` to be RUNNING;
    /// then checks it holds exactly [`HOSTS`] hosts everywhere.
    fn restart_and_check(&self, id: i64, label: &str) -> Server {
        let server = Server::start(&self.home);
        let admin = admin(&server);
        let deadline = Instant::now() + Duration::from_secs(240);
        let body = loop {
            let doc = admin.get(&format!("/api/v1/provisions/{id}")).expect(200).json();
            let body = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"].clone();
            let state = body["state"].as_str().unwrap().to_owned();
            if state == "RUNNING" {
                break body;
            }
            assert!(
                !state.ends_with("_FAILURE"),
                "{label}: the resumed operation failed in {state}:\n{}",
                self.log(id)
            );
            assert!(Instant::now() < deadline, "{label}: still {state} 4 minutes after the restart:\n{}", self.log(id));
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_registered(label, &body, &self.onesim_state, Want::sim(HOSTS, 0));
        assert_provisioned_in(label, self.cloud_hosts(), &self.home, &body, HOSTS);
        // The RUNNING checkpoint and the operation's end are two writes: give the second a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let operations = admin.get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
            let ops = operations.as_array().unwrap();
            assert!(!ops.is_empty(), "{label}: no operation recorded");
            if ops.iter().all(|o| o["status"] != "running") {
                break;
            }
            assert!(Instant::now() < deadline, "{label}: an operation is still running: {operations}");
            std::thread::sleep(Duration::from_millis(50));
        }
        for text in [server.log(), self.log(id)] {
            assert!(!text.contains(TOKEN), "{label}: the provider token reached a log");
        }
        server
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

fn admin(server: &Server) -> Client {
    server.client("oneadmin", "pw")
}

#[test]
fn kill_9_while_terraform_creates_then_a_restart_resumes_to_running() {
    let world = World::new();
    // Slow creates keep the apply going long enough to be killed in it.
    world.faults(json!({"delay_ms": 1500}));
    let (mut server, id) = world.start_create();
    world.wait_log(id, "Creating...", &mut server);
    server.kill9();
    assert!(world.log(id).contains("State changed from PLANNING to APPLYING"));
    assert!(!world.log(id).contains("to CONFIGURING_ONE"), "the kill came too late:\n{}", world.log(id));
    world.faults(json!({}));
    world.restart_and_check(id, "killed while creating");
}

#[test]
fn killed_after_the_apply_before_its_checkpoint_the_restart_makes_no_extra_host() {
    let mut world = World::new();
    world.home.env.push(("FORMWORK_CRASH_AT".into(), "finished:APPLYING".into()));
    let (mut server, id) = world.start_create();
    let status = server.wait_exit(Duration::from_secs(180));
    assert_eq!(status.signal(), Some(9), "the server killed itself at the crash point: {status:?}\n{}", server.log());
    world.home.env.retain(|(k, _)| k != "FORMWORK_CRASH_AT");
    assert_eq!(world.cloud_hosts().len(), HOSTS, "the apply had made the hosts before the kill");
    assert!(!world.log(id).contains("to CONFIGURING_ONE"), "{}", world.log(id));
    world.restart_and_check(id, "killed after the apply");
}

#[test]
fn sigterm_stops_the_server_in_bounded_time_and_the_next_start_resumes() {
    let world = World::new();
    world.faults(json!({"delay_ms": 1500}));
    let (mut server, id) = world.start_create();
    world.wait_log(id, "Creating...", &mut server);
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "a graceful stop exits 0: {status:?}\n{}", server.log());
    assert!(!world.log(id).contains("to CONFIGURING_ONE"), "SIGTERM came too late:\n{}", world.log(id));
    world.faults(json!({}));
    let mut server = world.restart_and_check(id, "stopped by SIGTERM");
    // Nothing was left to resume: a second graceful stop is quick and clean.
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
