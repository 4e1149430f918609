//! Driver capabilities through the `formwork` binary and `formwork serve`, with the fake
//! `terraform` and `ansible-playbook` (tests/fakes): a scale-up of a driver that declares
//! `scale-up-configures: new-hosts` runs the play limited to the front-end and exactly the new
//! hosts, one without the key runs the whole play, and what a driver does not support is
//! refused, in the CLI and the API, before anything is written.

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::Server;
use serde_json::{Value, json};

/// A home with the fake tools and copies of the built-in sim driver: `sim` as it is, `plain`
/// without formwork's keys (OneForm's behaviour) and `strict`, which refuses scale-down by
/// amount and public IPs.
fn home() -> Home {
    let mut home = Home::empty();
    let fakes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
    home.env.push(("FORMWORK_TERRAFORM".into(), fakes.join("terraform").display().to_string()));
    home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), fakes.join("ansible-playbook").display().to_string()));
    home.add_driver("sim", "sim");
    let conf = std::fs::read_to_string(home.add_driver("sim", "plain").join("driver.conf")).unwrap();
    let oneform_only = conf.split("\nformwork:").next().unwrap().to_string();
    assert!(!oneform_only.contains("scale-up-configures"), "{oneform_only}");
    std::fs::write(home.builtin.join("plain/driver.conf"), &oneform_only).unwrap();
    let strict = format!("{oneform_only}\nformwork:\n  scale-down-by-amount: false\n  public-ips: false\n")
        .replace("    add-ip: amount\n    del-ip: ids\n", "");
    std::fs::write(home.add_driver("sim", "strict").join("driver.conf"), strict).unwrap();
    home
}

/// A provider and a RUNNING provision of `hosts` hosts of `driver`; its JSON.
fn running(home: &Home, driver: &str, hosts: u64) -> Value {
    let values = json!({"api_token": "t"}).to_string();
    home.run_with_stdin(&["provider", "create", driver, "--values", "-"], Some(&values)).ok();
    let values = json!({"oneform_hosts": hosts}).to_string();
    let p = home.run_with_stdin(&["--json", "provision", "create", driver, "--values", "-"], Some(&values)).ok().json();
    assert_eq!(p["state"], "RUNNING", "{p}");
    p
}

/// The argv of every `ansible-playbook` call recorded since the last `forget_calls`.
fn playbooks(home: &Home) -> Vec<Vec<String>> {
    let calls = home.calls().into_iter().filter(|c| c["tool"] == "ansible-playbook");
    calls.map(|c| c["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()).collect()
}

/// The value following `flag` in `argv`.
fn flag<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().position(|a| a == flag).map(|i| argv[i + 1].as_str())
}

fn host_names(p: &Value) -> Vec<String> {
    p["one_objects"]["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_declaring_driver_configures_only_the_new_hosts_and_the_front_end() {
    let home = home();
    let shown = home.run(&["--json", "driver", "show", "sim"]).ok().json();
    assert_eq!(shown["capabilities"]["scale-up-configures"], "new-hosts");
    let before = host_names(&running(&home, "sim", 2));
    home.forget_calls();

    let up = home.run(&["--json", "provision", "add-host", "1", "--amount", "2"]).ok().json();
    assert_eq!(up["state"], "RUNNING");
    let after = host_names(&up);
    let new: Vec<&String> = after.iter().filter(|h| !before.contains(h)).collect();
    assert_eq!(new.len(), 2, "{after:?}");
    let calls: Vec<Value> = home.calls().into_iter().filter(|c| c["tool"] == "ansible-playbook").collect();
    assert_eq!(calls.len(), 1);
    let argv: Vec<String> = serde_json::from_value(calls[0]["argv"].clone()).unwrap();
    // The inventory keeps every host (plays may read them); the limit names the new ones.
    // Values are tagged `!unsafe`; the tags are dropped.
    let inventory = formwork::driver::deployment::yaml_to_json(calls[0]["inventory"].as_str().unwrap()).unwrap();
    let nodes = inventory["node"]["hosts"].as_object().unwrap();
    assert_eq!(nodes.len(), 4, "{inventory}");
    let mut named: Vec<&str> =
        nodes.iter().filter(|(_, v)| new.iter().any(|ip| v["ansible_host"] == **ip)).map(|(n, _)| n.as_str()).collect();
    named.sort();
    assert_eq!(named.len(), 2);
    assert_eq!(flag(&argv, "--limit"), Some(format!("frontend,{}", named.join(",")).as_str()), "{argv:?}");
    let log = home.run(&["provision", "logs", "1"]).ok().stdout();
    assert!(log.contains("Configuring only the front-end and the new hosts: frontend, n3, n4"), "{log}");
}

#[test]
fn a_driver_without_the_key_runs_the_whole_play_as_oneform() {
    let home = home();
    let shown = home.run(&["--json", "driver", "show", "plain"]).ok().json();
    assert_eq!(shown["capabilities"]["scale-up-configures"], "all-hosts");
    running(&home, "plain", 2);
    home.forget_calls();
    let up = home.run(&["--json", "provision", "add-host", "1", "--amount", "1"]).ok().json();
    assert_eq!(up["state"], "RUNNING");
    let calls = playbooks(&home);
    assert_eq!(calls.len(), 1);
    assert_eq!(flag(&calls[0], "--limit"), None, "{:?}", calls[0]);
    assert!(calls[0].contains(&"site.yaml".to_string()), "{:?}", calls[0]);
}

/// What the store holds about provision 1: the provision, its operations and its historic.
fn recorded(home: &Home) -> (Value, usize, usize) {
    let store = formwork::store::Store::open(&home.data_dir().join("formwork.db")).unwrap();
    let shown = home.run(&["--json", "provision", "show", "1"]).ok().json();
    (shown, store.operations(1).unwrap().len(), store.historic(1).unwrap().len())
}

#[test]
fn what_a_driver_does_not_support_is_refused_in_the_cli_before_any_write() {
    let home = home();
    let shown = home.run(&["--json", "driver", "show", "strict"]).ok().json();
    let caps = json!({"add-host": ["amount"], "del-host": ["ids"], "add-ip": [], "del-ip": [],
                      "scale-up-configures": "all-hosts"});
    assert_eq!(shown["capabilities"], caps);
    let text = home.run(&["driver", "show", "strict"]).ok().stdout();
    assert!(text.contains("OPERATIONS   add-host (amount), del-host (ids)\n"), "{text}");
    running(&home, "strict", 2);
    home.forget_calls();
    let before = recorded(&home);

    let refused = home.run(&["provision", "del-host", "1", "--amount", "1"]);
    assert_eq!(refused.code(), 1);
    let refused = refused.fails_with(
        "driver 'strict' does not support del-host by amount (provision 1): it supports add-host by amount; \
         del-host by ids; a scale-up configures every host",
    );
    assert!(!refused.stderr().contains("State changed"), "{}", refused.stderr());
    home.run(&["provision", "add-ip", "1", "--amount", "1"]).fails_with("driver 'strict' does not support add-ip");
    home.run(&["provision", "del-ip", "1", "0"]).fails_with("driver 'strict' does not support del-ip");
    assert_eq!(recorded(&home), before, "nothing was written");
    assert!(home.calls().is_empty(), "no tool ran: {:?}", home.calls());

    let id = before.0["one_objects"]["hosts"][0]["id"].as_i64().unwrap().to_string();
    let down = home.run(&["--json", "provision", "del-host", "1", "--ids", &id]).ok().json();
    assert_eq!(host_names(&down).len(), 1, "removing by id is supported");
}

#[test]
fn what_a_driver_does_not_support_is_refused_by_the_api_before_any_write() {
    let mut home = home();
    let sim = Onesim::start(&home.tmp.path().join("onesim.json"));
    use_endpoint(&mut home, &sim);
    running(&home, "strict", 2);
    let server = Server::start(&home);
    let admin = server.client("oneadmin", "pw");
    let driver = admin.get("/api/v1/drivers/strict").expect(200).json();
    assert_eq!(driver["capabilities"]["del-host"], json!(["ids"]));
    assert_eq!(driver["fireedge"]["operations"], json!({"add-host": "amount", "del-host": "ids"}), "OneForm's own");
    let operations = || admin.get("/api/v1/provisions/1/operations").expect(200).json();
    let before = (operations(), admin.get("/api/v1/provisions/1").expect(200).json());

    let error = admin.post("/api/v1/provisions/1/scale", &json!({"direction": "down", "nodes": 1})).error(405);
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("driver 'strict' does not support del-host by amount"), "{error}");
    assert!(message.contains("it supports add-host by amount; del-host by ids"), "{error}");
    let error = admin.post("/api/v1/provisions/1/add-ip", &json!({"amount": 1})).error(405);
    assert!(error["message"].as_str().unwrap().starts_with("driver 'strict' does not support add-ip"), "{error}");
    assert_eq!((operations(), admin.get("/api/v1/provisions/1").expect(200).json()), before, "nothing was written");
    sim.stop();
}
