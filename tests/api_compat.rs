//! `formwork serve` asked in the shapes OneForm's own clients send, read as OneForm's server
//! reads them: `oneprovision logs` polls with `?pos` and no value, FireEdge sends counts and
//! ids as strings from its form fields (`{"nodes": "1"}`), an operation re-checks only the
//! inputs it changes (add-ip after a scale-down to no host), and no answer tells an API client
//! to run a `formwork` command. With the fake tools and onesim as OpenNebula.

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Response, Server};
use serde_json::{Value, json};

/// A server with the built-in drivers, the fake tools and onesim; oneadmin's client.
struct Api {
    home: Home,
    admin: Client,
    _server: Server,
    sim: Option<Onesim>,
}

impl Api {
    fn start() -> Api {
        let mut home = Home::with_fakes();
        let sim = Onesim::start(&home.tmp.path().join("onesim.json"));
        use_endpoint(&mut home, &sim);
        let server = Server::start(&home);
        let admin = server.client("oneadmin", "pw");
        Api { home, admin, _server: server, sim: Some(sim) }
    }

    /// A sim provider and a provision of `hosts` hosts on it, RUNNING; the provision's id.
    fn running(&self, hosts: u64) -> i64 {
        let provider = json!({"driver": "sim", "name": "sim-a", "connection_values": {"api_token": "t"}});
        let provider = id_of(&self.admin.post("/api/v1/providers", &provider).expect(201).json());
        let request = json!({"driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
                             "user_inputs_values": {"oneform_hosts": hosts}});
        let id = id_of(&self.admin.post("/api/v1/provisions", &request).expect(201).json());
        self.wait(id, "RUNNING", |_| true);
        id
    }

    fn path(&self, id: i64, route: &str) -> String {
        format!("/api/v1/provisions/{id}{route}")
    }

    /// Polls until the provision is in `state`, `also` holds for its body and no operation of
    /// it runs; fails after a minute. Returns the `PROVISION_BODY`.
    fn wait(&self, id: i64, state: &str, also: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let doc = self.admin.get(&self.path(id, "")).expect(200).json();
            let body = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"].clone();
            let operations = self.admin.get(&self.path(id, "/operations")).expect(200).json();
            if body["state"] == state && also(&body) && operations[0]["status"] != "running" {
                return body;
            }
            assert!(Instant::now() < deadline, "provision {id} is not {state} after a minute: {body}\n{operations}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) until the fake Terraform was called with `first` as its first argument.
    fn wait_for_terraform(&self, first: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.home.calls().iter().any(|c| c["tool"] == "terraform" && c["argv"][0] == first) {
            assert!(Instant::now() < deadline, "terraform {first} was never called");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

fn id_of(doc: &Value) -> i64 {
    doc["DOCUMENT"]["ID"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no DOCUMENT.ID: {doc}"))
}

fn hosts(body: &Value) -> Vec<i64> {
    body["one_objects"]["hosts"].as_array().unwrap().iter().filter_map(|h| h["id"].as_i64()).collect()
}

fn public_ips(body: &Value) -> Value {
    body["user_inputs_values"]["oneform_public_ips"].clone()
}

/// The address ranges of the provision's elastic network.
fn elastic_ars(body: &Value) -> Vec<i64> {
    let networks = body["one_objects"]["networks"].as_array().unwrap();
    let elastic = networks.iter().find(|n| n["template"]["vn_mad"] == "elastic").expect("an elastic network");
    elastic["template"]["ar"].as_array().into_iter().flatten().map(|a| a["ar_id"].as_i64().unwrap()).collect()
}

/// Asserts a 400 whose `context` names `field`.
#[track_caller]
fn refused_naming(response: Response, field: &str) {
    let error = response.error(400);
    assert!(error["context"].get(field).is_some(), "the context should name {field:?}: {error}");
}

#[test]
fn a_log_poll_with_no_pos_value_starts_at_the_end() {
    let api = Api::start();
    let id = api.running(1);
    let size = std::fs::metadata(api.home.data_dir().join(format!("logs/{id}.log"))).unwrap().len();
    // `oneprovision logs ID` polls first with `URI.encode_www_form(pos: nil)`: `?pos`.
    for query in ["?pos", "?pos="] {
        let poll = api.admin.get(&api.path(id, &format!("/logs/poll{query}"))).expect(200).json();
        assert_eq!(poll, json!({"pos": size, "lines": []}), "{query}");
    }
    let from0 = api.admin.get(&api.path(id, "/logs/poll?pos=0")).expect(200).json();
    assert_eq!(from0["pos"], size);
    assert!(!from0["lines"].as_array().unwrap().is_empty());
}

#[test]
fn counts_and_ids_sent_as_strings_are_read_as_oneform_reads_them() {
    let api = Api::start();
    let id = api.running(1);
    // FireEdge's "Add host" (an amount form): the text field's value as it is.
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "up", "nodes": "1"})).expect(204);
    api.wait(id, "RUNNING", |b| hosts(b).len() == 2);
    // OneForm reads the direction case-blind, and FireEdge's add-host route sends `amount`.
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "Up", "nodes": 1})).expect(204);
    api.wait(id, "RUNNING", |b| hosts(b).len() == 3);
    api.admin.post(&api.path(id, "/add-host"), &json!({"amount": "1"})).expect(204);
    let four = api.wait(id, "RUNNING", |b| hosts(b).len() == 4);
    // "Delete host" by table (host ids as strings), then by amount.
    let victim = hosts(&four)[0];
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "down", "nodes": [victim.to_string()]})).expect(204);
    api.wait(id, "RUNNING", |b| hosts(b).len() == 3 && !hosts(b).contains(&victim));
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "down", "nodes": "1"})).expect(204);
    api.wait(id, "RUNNING", |b| hosts(b).len() == 2);
    // Public IPs: a numeric-string amount, and an address range id as a string.
    api.admin.post(&api.path(id, "/add-ip"), &json!({"amount": "2"})).expect(204);
    let with_ips = api.wait(id, "RUNNING", |b| public_ips(b) == 2);
    let ars = elastic_ars(&with_ips);
    api.admin.post(&api.path(id, "/remove-ip"), &json!({"ar_id": ars[0].to_string()})).expect(204);
    let body = api.wait(id, "RUNNING", |b| public_ips(b) == 1);

    // What Ruby's `to_i` would read as a number nobody sent is refused, naming the field.
    for nodes in ["abc", "", "1.5", "2x", "-1"] {
        refused_naming(api.admin.post(&api.path(id, "/scale"), &json!({"direction": "up", "nodes": nodes})), "nodes");
    }
    refused_naming(api.admin.post(&api.path(id, "/add-ip"), &json!({"amount": "two"})), "amount");
    refused_naming(api.admin.post(&api.path(id, "/add-host"), &json!({"amount": 1.5})), "amount");
    assert_eq!(api.wait(id, "RUNNING", |_| true), body, "a refused request changes nothing");
}

#[test]
fn add_ip_after_a_scale_down_to_no_host_checks_only_the_public_ips() {
    let api = Api::start();
    let id = api.running(1);
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "down", "nodes": 1})).expect(204);
    let empty = api.wait(id, "RUNNING", |b| hosts(b).is_empty());
    // Below the driver's `oneform_hosts` rule (min 1) now: no concern of add-ip's.
    assert_eq!(empty["user_inputs_values"]["oneform_hosts"], 0, "{empty}");
    api.admin.post(&api.path(id, "/add-ip"), &json!({"amount": 1})).expect(204);
    let body = api.wait(id, "RUNNING", |b| public_ips(b) == 1);
    assert_eq!(elastic_ars(&body).len(), 1, "{body}");
    // A scale-up still checks the host count it sets.
    let error = api.admin.post(&api.path(id, "/scale"), &json!({"direction": "up", "nodes": 51})).error(400);
    assert!(error["context"].get("oneform_hosts").is_some(), "{error}");
}

/// Asserts an answer names no formwork command and, unless it is a tool's transcript (a log),
/// no command-line flag.
#[track_caller]
fn names_no_command(what: &str, text: &str, transcript: bool) {
    let command = regex::Regex::new(r"`formwork|formwork (provision|provider|driver|secrets|serve)\b").unwrap();
    assert!(!command.is_match(text), "{what} tells an API client to run a formwork command: {text}");
    let flag = regex::Regex::new(r"\s--[a-z]").unwrap();
    assert!(transcript || !flag.is_match(text), "{what} tells an API client to pass a command-line flag: {text}");
}

#[test]
fn no_answer_tells_an_api_client_to_run_a_formwork_command() {
    let api = Api::start();
    let id = api.running(1);
    let create = |driver: &str, provider: i64| json!({"driver": driver, "deployment_type": "sim_cluster", "provider_id": provider, "user_inputs_values": {}});
    let providers = api.admin.get("/api/v1/providers").expect(200).json();
    let sim = providers.as_array().unwrap().iter().find(|p| p["DOCUMENT"]["NAME"] == "sim-a").map(id_of).unwrap();
    let onprem = providers.as_array().unwrap().iter().map(id_of).find(|p| *p != sim).expect("the onprem provider");
    let mut answers = vec![
        ("unknown driver", api.admin.post("/api/v1/provisions", &create("nope", sim)).error(404)),
        ("unknown provider", api.admin.post("/api/v1/provisions", &create("sim", 999)).error(404)),
        ("another driver's provider", api.admin.post("/api/v1/provisions", &create("sim", onprem)).error(400)),
        ("delete before DONE", api.admin.delete(&api.path(id, "")).error(405)),
        ("unknown address range", api.admin.post(&api.path(id, "/remove-ip"), &json!({"ar_id": 999})).error(400)),
        ("no host to add", api.admin.post(&api.path(id, "/scale"), &json!({"direction": "up", "nodes": 0})).error(400)),
        (
            "too many to remove",
            api.admin.post(&api.path(id, "/scale"), &json!({"direction": "down", "nodes": 5})).error(400),
        ),
        ("no IP to add", api.admin.post(&api.path(id, "/add-ip"), &json!({"amount": 0})).error(400)),
        ("addresses for a cloud", api.admin.post(&api.path(id, "/add-host"), &json!({"ips": ["10.9.9.9"]})).error(400)),
    ];
    api.admin.post("/api/v1/drivers/sim/disable", &json!({})).expect(200);
    answers.push(("driver not enabled", api.admin.post("/api/v1/provisions", &create("sim", sim)).error(400)));
    api.admin.post("/api/v1/drivers/sim/enable", &json!({})).expect(200);

    // Busy, then cancelled: the refusal, and the cancelled operation's record.
    api.home.scenario(json!({"hang_plan": true}));
    api.home.forget_calls();
    api.admin.post(&api.path(id, "/scale"), &json!({"direction": "up", "nodes": 1})).expect(204);
    api.wait_for_terraform("plan");
    let busy = api.admin.post(&api.path(id, "/retry"), &json!({})).error(405);
    assert!(busy["message"].as_str().unwrap().contains("is busy"), "{busy}");
    answers.push(("busy", busy));
    api.admin.post(&api.path(id, "/cancel"), &json!({})).expect(204);
    api.wait(id, "PLANNING_FAILURE", |_| true);
    // A failed stage: the retry's apply fails.
    api.home.scenario(json!({"fail_apply": "Error: quota exceeded"}));
    api.admin.post(&api.path(id, "/retry"), &json!({})).expect(204);
    api.wait(id, "APPLYING_FAILURE", |_| true);
    let operations = api.admin.get(&api.path(id, "/operations")).expect(200).json();
    let errors: Vec<&str> = operations.as_array().unwrap().iter().filter_map(|o| o["error"].as_str()).collect();
    assert!(errors.iter().any(|e| e.contains("APPLYING failed")), "{operations}");
    assert!(errors.iter().any(|e| e.contains("cancelled")), "{operations}");

    for (what, answer) in &answers {
        names_no_command(what, &answer.to_string(), false);
    }
    names_no_command("the operations' errors", &operations.to_string(), false);
    names_no_command("the log", &api.admin.get(&api.path(id, "/logs?all=true")).expect(200).text(), true);
}
