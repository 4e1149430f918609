//! The stateful, model-based test of `formwork serve` (issue 16): random sequences of REST
//! requests from three users, kill -9 and restarts of the server, queued and cancelled work,
//! each step checked against a reference model. The machine is Python Hypothesis
//! (`tests/model/server_machine.py`, run with `.tools/venv/bin/python`); this file builds its
//! world and runs it: a home with the fake `terraform` and `ansible-playbook` and the sim driver
//! given a sensitive and a free-text input, oneadmin's credentials, and the users onesim is to
//! have besides oneadmin — `ops` (a second member of the oneadmin group) and `alice` (a plain
//! user) — all handed over in `FORMWORK_MODEL_CONFIG`. The machine starts a fresh onesim and
//! server for each example (provision ids start again at 1, and OpenNebula objects are adopted
//! by name) and kills and restarts the server itself. Its knobs (seed, size, `max_operations`, shrinking) pass through
//! from the environment; docs/model-tests.md says how to run a long one and replay a seed.

// The test spawns Python (which spawns onesim and formwork).
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::Home;
use serde_json::json;

const ALICE_PW: &str = "alice-model-pw";
const OPS_PW: &str = "ops-model-pw";
/// oneadmin's password in onesim (`use_endpoint` writes it into ONE_AUTH).
const ADMIN_PW: &str = "pw";

/// Gives the sim driver (a copy) `motd`, a free-text input its inventory template quotes, as
/// drivers splice user inputs into their inventories: hostile values reach the renderer and
/// Ansible. (The built-in inputs are all checked against lists or a pattern.)
fn with_free_text_input(sim: &Path) {
    let variables = sim.join("terraform/variables.tf");
    let mut text = std::fs::read_to_string(&variables).unwrap();
    text.push_str("\nvariable \"motd\" {\n  description = \"Message of the day\"\n  type        = string\n  default     = \"hello\"\n}\n");
    std::fs::write(&variables, text).unwrap();
    let template = sim.join("ansible/templates/sim_cluster.j2");
    let text = std::fs::read_to_string(&template).unwrap();
    let spliced = text.replacen("all:\n  vars:\n", "all:\n  vars:\n    motd: \"{{ user_inputs.motd }}\"\n", 1);
    assert_ne!(spliced, text, "the sim template no longer opens with all.vars: {}", template.display());
    std::fs::write(&template, spliced).unwrap();
}

#[test]
fn the_server_keeps_the_models_promises_over_random_request_sequences() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup, which installs it", python.display());
    let mut home = Home::with_sensitive_input();
    with_free_text_input(&home.builtin.join("sim"));
    // oneadmin's credentials for the server; the machine starts a fresh onesim (with these
    // users) for each example and points the server at it with ONE_XMLRPC.
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, format!("oneadmin:{ADMIN_PW}\n")).unwrap();
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));

    // What `Home::spawn` gives formwork, except the data dir and the endpoint: the machine
    // sets them for each example.
    let mut server_env = serde_json::Map::new();
    server_env.insert("PATH".into(), json!(std::env::var("PATH").unwrap_or_default()));
    server_env.insert("HOME".into(), json!(home.tmp.path()));
    server_env.insert("FORMWORK_BUILTIN_DRIVERS".into(), json!(home.builtin));
    for (key, value) in &home.env {
        server_env.insert(key.clone(), json!(value));
    }
    let config = json!({
        "formwork": env!("CARGO_BIN_EXE_formwork"),
        "onesim": env!("CARGO_BIN_EXE_onesim"),
        "onesim_users": [format!("alice:{ALICE_PW}"), format!("ops:{OPS_PW}:oneadmin")],
        "home": home.tmp.path(),
        "passwords": {"oneadmin": ADMIN_PW, "ops": OPS_PW, "alice": ALICE_PW},
        "server_env": server_env,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model/server_machine.py");
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("FORMWORK_MODEL_CONFIG", config.to_string());
    // The machine's knobs (docs/model-tests.md) pass through.
    for (key, value) in std::env::vars() {
        if key.starts_with("FORMWORK_MODEL_") || key == "FORMWORK_MAX_OPERATIONS" {
            command.env(key, value);
        }
    }
    let output = command.output().expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the model test failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("model test: all invariants held"), "{stdout}\n{stderr}");
    println!("{stdout}");
}
