//! Provision and provider names are checked as oned checks an object's name: a name OpenNebula
//! would refuse (`../../tmp/x` plus a line break became a cluster's name) is refused at create
//! and at rename, in the CLI and the API, with the character named, and nothing changes.

// Tests run formwork as a user would: they spawn it.
#![allow(clippy::disallowed_methods)]

mod common;

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::Server;
use serde_json::{Value, json};

const BAD: &str = "../../tmp/x\n";

fn provisions(home: &Home) -> Value {
    home.run(&["--json", "provision", "list"]).ok().json()
}

/// Gives `home` a sim provider and one RUNNING provision named `good`.
fn with_a_provision(home: &Home) {
    let connection = json!({"api_token": "names-token"}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--name", "prov", "--values", "-"], Some(&connection)).ok();
    let values = json!({"oneform_hosts": 1}).to_string();
    let args = ["--json", "provision", "create", "sim", "--name", "good", "--values", "-"];
    assert_eq!(home.run_with_stdin(&args, Some(&values)).ok().json()["state"], "RUNNING");
}

/// onesim, stopped when dropped (the server checks credentials against it).
struct Sim(Option<Onesim>);

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.0.take() {
            sim.stop();
        }
    }
}

#[test]
fn the_cli_refuses_names_oned_refuses_and_changes_nothing() {
    let home = Home::with_fakes();
    with_a_provision(&home);
    let before = provisions(&home);
    home.forget_calls();

    let values = json!({"oneform_hosts": 1}).to_string();
    let run = home.run_with_stdin(&["provision", "create", "sim", "--name", BAD, "--values", "-"], Some(&values));
    let said = run.fails_with("holds '/'").stderr();
    assert!(said.contains("choose a name without"), "{said}");
    assert!(home.calls().is_empty(), "a tool ran: {:?}", home.calls());

    home.run(&["provision", "update", "1", "--name", "a:b"]).fails_with("the provision name \"a:b\" holds ':'");
    home.run(&["provision", "update", "1", "--name", ""]).fails_with("the provision name is empty");
    home.run(&["provision", "rename", "1", "x/y"]).fails_with("the provision name \"x/y\" holds '/'");
    assert_eq!(provisions(&home), before);

    let connection = json!({"api_token": "t"}).to_string();
    let args = ["provider", "create", "sim", "--name", "p{x}", "--values", "-"];
    home.run_with_stdin(&args, Some(&connection)).fails_with("the provider name \"p{x}\" holds '{'");
    home.run(&["provider", "update", "2", "--name", "p\tq"]).fails_with("holds '\\t'");
    let providers = home.run(&["--json", "provider", "list"]).ok().json();
    let names: Vec<&str> = providers.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["OnPrem", "prov"]);

    home.run(&["provision", "update", "1", "--name", "still good (2)"]).ok();
    assert_eq!(home.run(&["--json", "provision", "show", "1"]).ok().json()["name"], "still good (2)");
}

#[test]
fn the_api_refuses_names_oned_refuses_and_changes_nothing() {
    let mut home = Home::with_fakes();
    let sim = Sim(Some(Onesim::start(&home.tmp.path().join("onesim.json"))));
    use_endpoint(&mut home, sim.0.as_ref().unwrap());
    with_a_provision(&home);
    let server = Server::start(&home);
    let admin = server.client("oneadmin", "pw");
    let before = admin.get("/api/v1/provisions/1").expect(200).json();

    let create = json!({"driver": "sim", "deployment_type": "sim_cluster", "provider_id": 2, "name": BAD,
        "user_inputs_values": {"oneform_hosts": 1}});
    let error = admin.post("/api/v1/provisions", &create).error(400);
    assert!(error["message"].as_str().unwrap().contains("holds '/'"), "{error}");
    let error = admin.patch("/api/v1/provisions/1", &json!({"name": "a;b"})).error(400);
    assert!(error["message"].as_str().unwrap().contains("holds ';'"), "{error}");
    assert_eq!(admin.get("/api/v1/provisions/1").expect(200).json(), before);
    let list = admin.get("/api/v1/provisions").expect(200).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    let provider = json!({"driver": "sim", "name": "p$", "connection_values": {"api_token": "t"}});
    let error = admin.post("/api/v1/providers", &provider).error(400);
    assert!(error["message"].as_str().unwrap().contains("holds '$'"), "{error}");
    let error = admin.patch("/api/v1/providers/2", &json!({"name": "<p>"})).error(400);
    assert!(error["message"].as_str().unwrap().contains("holds '<'"), "{error}");
    let providers = admin.get("/api/v1/providers").expect(200).json();
    assert_eq!(providers.as_array().map(Vec::len), Some(2), "{providers}");
}
