//! Secrets at rest with the real tools, through `formwork serve`: a copy of the sim driver whose
//! sensitive input `admin_password` reaches the Terraform state in clear (a `sensitive = true`
//! output and a `terraform_data` resource's attribute, as Terraform writes them) goes through a
//! create, a scale up, a scale down (a targeted destroy and a count compaction) and a
//! deprovision over the REST API, with real Terraform and the `sim` provider, real
//! ansible-playbook and onesim. After each step and at the end, neither that canary nor the
//! canary provider token is in any file of the data directory (database and WAL included, byte
//! for byte; no Terraform state outlives its stage), nor in the server's stdout or stderr, nor in
//! any answer the API gave (the test keeps them all), nor in onesim's state or anywhere else in
//! the test's home; and no file or folder of the data directory may be read by its group or
//! others. `scripts/setup` installs the tools; without them this test fails and says so.

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Home;
use common::check::latest_state;
use common::leaks::{self, holders, readable_by_others};
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Response, Server};
use serde_json::{Value, json};

const CONNECTION_CANARY: &str = "canary-conn-real-51d0";
const INPUT_CANARY: &str = "canary-input-real-e83a";

/// The sim driver with a sensitive input that Terraform writes into its state.
fn home() -> Home {
    let home = Home::empty();
    let sim = home.add_driver("sim", "sim");
    let append = |file: &str, text: &str| {
        let path = sim.join("terraform").join(file);
        let mut old = std::fs::read_to_string(&path).unwrap();
        old.push_str(text);
        std::fs::write(&path, old).unwrap();
    };
    append(
        "variables.tf",
        "\nvariable \"admin_password\" {\n  description = \"Password of the hosts' admin account\"\n  type        = string\n  sensitive   = true\n}\n",
    );
    if has_terraform_data() {
        append("main.tf", "\nresource \"terraform_data\" \"admin\" {\n  input = var.admin_password\n}\n");
    }
    append("outputs.tf", "\noutput \"admin_password\" {\n  value     = var.admin_password\n  sensitive = true\n}\n");
    home
}

/// Whether the Terraform formwork runs here has the built-in `terraform_data` resource
/// (Terraform 1.4 and later; setup installs 1.0.3 where none is on PATH, which has no built-in
/// resource at all: the sensitive output alone then carries the canary into the state).
fn has_terraform_data() -> bool {
    let terraform = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/terraform");
    let out = std::process::Command::new(&terraform)
        .args(["version", "-json"])
        .output()
        .unwrap_or_else(|e| panic!("{} does not run ({e}): run scripts/setup", terraform.display()));
    let version: Value = serde_json::from_slice(&out.stdout).expect("terraform version -json");
    let text = version["terraform_version"].as_str().expect("a terraform_version");
    let numbers: Vec<u64> = text.split('.').take(2).map(|n| n.parse().unwrap_or(0)).collect();
    numbers.as_slice() >= [1, 4].as_slice()
}

/// The home, onesim, the sim cloud's folder, the server and every answer it gave.
struct World {
    home: Home,
    cloud: PathBuf,
    onesim_state: PathBuf,
    sim: Option<Onesim>,
    server: Server,
    admin: Client,
    /// Every answer of the API, as (request, status and body): what a client was shown.
    answers: RefCell<Vec<String>>,
}

impl World {
    fn new() -> World {
        World::with_env(&[])
    }

    /// The world, its server started with `env` added to its environment.
    fn with_env(env: &[(&str, &str)]) -> World {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
        for needed in ["bin/terraform", "terraformrc", "venv/bin/ansible-playbook"] {
            assert!(tools.join(needed).exists(), ".tools/{needed} is missing: run scripts/setup first");
        }
        let mut home = home();
        home.env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cloud = home.tmp.path().join("cloud");
        let onesim_state = home.tmp.path().join("onesim.json");
        let sim = Onesim::start(&onesim_state);
        use_endpoint(&mut home, &sim);
        let server = Server::start(&home);
        let admin = server.client("oneadmin", "pw");
        World { home, cloud, onesim_state, sim: Some(sim), server, admin, answers: RefCell::new(Vec::new()) }
    }

    /// Starts the server again, without the environment [`World::with_env`] added.
    fn restart(&mut self, without: &str) {
        self.home.env.retain(|(k, _)| k != without);
        self.server = Server::start(&self.home);
        self.admin = self.server.client("oneadmin", "pw");
    }

    fn keep(&self, response: Response) -> Response {
        let seen = format!("{} -> {} {}", response.request, response.status, response.text());
        self.answers.borrow_mut().push(seen);
        response
    }

    fn get(&self, path: &str) -> Response {
        self.keep(self.admin.get(path))
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        self.keep(self.admin.post(path, body))
    }

    fn log(&self, id: i64) -> String {
        std::fs::read_to_string(self.home.data_dir().join(format!("logs/{id}.log"))).unwrap_or_default()
    }

    /// Polls provision `id` until it is in `state` with `hosts` hosts and no operation of it
    /// runs; fails on a failure state or after two minutes. Returns the `PROVISION_BODY`.
    fn wait(&self, id: i64, state: &str, hosts: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let doc = self.get(&format!("/api/v1/provisions/{id}")).expect(200).json();
            let body = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"].clone();
            let now = body["state"].as_str().unwrap_or_default().to_string();
            let count = body["one_objects"]["hosts"].as_array().map_or(0, Vec::len);
            let operations = self.get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
            let settled = operations.as_array().unwrap().iter().all(|o| o["status"] != "running");
            if now == state && count == hosts && settled {
                return body;
            }
            assert!(!now.ends_with("_FAILURE"), "provision {id} failed in {now}:\n{}", self.log(id));
            assert!(Instant::now() < deadline, "provision {id} is {now} with {count} hosts after 2 minutes");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// No canary in any file of the test's home (data directory, onesim's state, the sim cloud),
    /// in what the server printed or in an answer; no file of the data directory readable by
    /// others, and no Terraform state left in the provision's working directory.
    fn assert_no_trace(&self, label: &str, id: i64) {
        for canary in [CONNECTION_CANARY, INPUT_CANARY] {
            let found = holders(self.home.tmp.path(), canary, &[]);
            assert!(found.is_empty(), "{label}: {canary} is in {found:?}");
            assert!(!self.server.log().contains(canary), "{label}: {canary} is in the server's stderr");
            assert!(!self.server.stdout().contains(canary), "{label}: {canary} is in the server's stdout");
            let answers = self.answers.borrow();
            let shown: Vec<&String> = answers.iter().filter(|a| a.contains(canary)).collect();
            assert!(shown.is_empty(), "{label}: the API answered {canary}: {shown:?}");
        }
        let work = self.home.data_dir().join(format!("work/{id}/terraform"));
        let states: Vec<String> = std::fs::read_dir(&work)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("tfstate"))
            .collect();
        assert!(states.is_empty(), "{label}: {states:?} outlived their stage");
        let open = readable_by_others(&self.home.data_dir());
        assert!(open.is_empty(), "{label}: others may read {open:?}");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

fn id_of(doc: &Value) -> i64 {
    doc["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap()
}

/// Creates the canary provider and a provision of one host using it; returns their ids.
fn create(world: &World) -> (i64, i64) {
    let provider = json!({
        "driver": "sim", "name": "canary",
        "connection_values": {"api_token": CONNECTION_CANARY, "endpoint": world.cloud},
    });
    let provider = id_of(&world.post("/api/v1/providers", &provider).expect(201).json());
    let request = json!({
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider, "name": "canary",
        "user_inputs_values": {"oneform_hosts": 1, "admin_password": INPUT_CANARY},
    });
    (provider, id_of(&world.post("/api/v1/provisions", &request).expect(201).json()))
}

#[test]
fn a_canary_in_the_terraform_state_leaves_no_trace_through_the_api_with_the_real_tools() {
    let mut world = World::new();
    let (provider, id) = create(&world);
    let running = world.wait(id, "RUNNING", 1);
    assert_eq!(running["user_inputs_values"]["admin_password"], "__redacted__");

    // Terraform wrote the canary into the state, in clear (so every search below looks for
    // something that existed): the store keeps it sealed, and opens it.
    let state = latest_state(&world.home, id);
    assert_eq!(state["outputs"]["admin_password"]["value"], INPUT_CANARY, "{}", state["outputs"]);
    assert_eq!(state["outputs"]["admin_password"]["sensitive"], true);
    let resources = state["resources"].as_array().unwrap();
    if has_terraform_data() {
        let admin = resources.iter().find(|r| r["type"] == "terraform_data").expect("the terraform_data resource");
        assert_eq!(admin["instances"][0]["attributes"]["input"]["value"], INPUT_CANARY, "{admin}");
    }
    world.assert_no_trace("created", id);

    let path = format!("/api/v1/provisions/{id}");
    world.post(&format!("{path}/add-host"), &json!({"amount": 1})).expect(204);
    let up = world.wait(id, "RUNNING", 2);
    world.assert_no_trace("scaled up", id);

    // The first host goes, so the second is moved into its place in the state.
    let first = latest_state(&world.home, id)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "sim_host")
        .and_then(|r| r["instances"].as_array().unwrap().iter().find(|i| i["index_key"] == 0).cloned())
        .expect("sim_host.host[0]")["attributes"]["id"]
        .clone();
    let hosts = up["one_objects"]["hosts"].as_array().unwrap();
    let victim =
        hosts.iter().find(|h| h["resource_id"] == first).expect("the host of sim_host.host[0]")["id"].as_i64().unwrap();
    world.post(&format!("{path}/remove-host"), &json!({"ids": [victim]})).expect(204);
    let down = world.wait(id, "RUNNING", 1);
    assert!(down["one_objects"]["hosts"].as_array().unwrap().iter().all(|h| h["id"] != victim));
    assert!(world.log(id).contains("-target=sim_host.host[0]"), "a targeted destroy:\n{}", world.log(id));
    assert!(world.log(id).contains("state mv"), "a count compaction:\n{}", world.log(id));
    let state = latest_state(&world.home, id);
    assert_eq!(state["outputs"]["admin_password"]["value"], INPUT_CANARY, "the state read back after a move");
    world.assert_no_trace("scaled down", id);

    world.post(&format!("{path}/undeploy"), &json!({})).expect(204);
    world.wait(id, "DONE", 0);
    world.get(&format!("{path}/logs")).expect(200);
    world.get(&format!("/api/v1/providers/{provider}")).expect(200);
    world.get("/api/v1/provisions?all=true").expect(200);
    let status = world.server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", world.server.log());
    if let Some(sim) = world.sim.take() {
        sim.stop();
    }
    assert!(world.onesim_state.exists() && world.home.data_dir().join("formwork.db").exists());
    world.assert_no_trace("deprovisioned", id);
}

/// A saved plan holds the variables' values in clear (deflated in its zip archive): between
/// PLANNING and APPLYING it waits sealed, and the resumed APPLYING opens and applies that plan.
#[test]
fn a_provision_stopped_between_plan_and_apply_keeps_its_plan_sealed() {
    const CRASH: &str = "FORMWORK_CRASH_AT";
    let mut world = World::with_env(&[(CRASH, "entered:APPLYING")]);
    let (_, id) = create(&world);
    let status = world.server.wait_exit(Duration::from_secs(120));
    assert_eq!(
        status.signal(),
        Some(9),
        "the server killed itself entering APPLYING: {status:?}\n{}",
        world.server.log()
    );
    assert!(world.log(id).contains("State changed from PLANNING to APPLYING"), "{}", world.log(id));
    let work = world.home.data_dir().join(format!("work/{id}/terraform"));
    world.assert_no_trace("stopped before the apply", id);
    assert!(work.join("plan.tfplan.sealed").exists(), "PLANNING left its plan: {:?}", leaks::files(&work));

    world.restart(CRASH);
    world.wait(id, "RUNNING", 1);
    let log = world.log(id);
    assert!(!log.contains("planning again"), "APPLYING applied the sealed plan:\n{log}");
    assert_eq!(latest_state(&world.home, id)["outputs"]["admin_password"]["value"], INPUT_CANARY);
    world.assert_no_trace("applied", id);
}
