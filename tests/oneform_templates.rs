//! Every built-in driver's deployment templates, rendered as OneForm's own inventory plugin
//! renders them: Python Jinja2 with StrictUndefined and only OneForm's variables, by
//! `tests/conformance/render_check.py` with the Python of `.tools/venv` (ansible-core brings
//! Jinja2 and PyYAML). The provisions are real ones: each is created with formwork and the
//! scripted fake tools, and handed to the script as OneForm's REST API serves it (what the
//! plugin reads back), so the variables are those of a provision as formwork stores it.

// Tests run formwork and Python as a user would: they spawn them.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Home, builtin_drivers};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup, which installs ansible-core there", python.display());
    python
}

/// Runs render_check.py over (template, document) pairs.
fn render_check(pairs: &[(PathBuf, PathBuf)]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/render_check.py");
    let args = pairs.iter().flat_map(|(template, document)| [template, document]);
    Command::new(python()).arg(script).args(args).env_clear().output().expect("python runs")
}

/// Input values that give a provision of each built-in driver two hosts.
fn values(driver: &str) -> Value {
    match driver {
        "sim" => json!({"oneform_hosts": 2, "oneform_public_ips": 1}),
        "onprem" => json!({"oneform_onprem_hosts": ["10.0.0.5", "10.0.0.6"]}),
        other => panic!("no values for the built-in driver '{other}': add some here so its templates are checked"),
    }
}

/// (driver, deployment, template path) of every built-in deployment template.
fn templates() -> Vec<(String, String, PathBuf)> {
    let mut found = vec![];
    for driver in std::fs::read_dir(builtin_drivers()).unwrap().map(|e| e.unwrap().path()) {
        let Ok(entries) = std::fs::read_dir(driver.join("ansible/templates")) else { continue };
        for template in entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "j2")) {
            let name = driver.file_name().unwrap().to_string_lossy().into_owned();
            let deployment = template.file_stem().unwrap().to_string_lossy().into_owned();
            found.push((name, deployment, template));
        }
    }
    found.sort();
    found
}

/// Creates a provision of `driver` with `deployment` and writes it, as OneForm's API serves
/// it, into a file; returns the file.
fn served_document(home: &Home, driver: &str, deployment: &str) -> PathBuf {
    let values = values(driver).to_string();
    let args = ["--json", "provision", "create", driver, "--deployment", deployment, "--values", "-"];
    let created = home.run_with_stdin(&args, Some(&values)).ok().json();
    assert_eq!(created["state"], "RUNNING", "{created}");
    let id = created["id"].as_i64().unwrap().to_string();
    let body = home.run(&["--json", "provision", "show", &id]).ok().json();
    let document = json!({"DOCUMENT": {"ID": id, "TEMPLATE": {"PROVISION_BODY": body}}});
    let path = home.tmp.path().join(format!("document-{id}.json"));
    std::fs::write(&path, document.to_string()).unwrap();
    path
}

#[test]
fn every_builtin_template_renders_under_oneforms_variables() {
    let templates = templates();
    let drivers: Vec<&str> = templates.iter().map(|(driver, _, _)| driver.as_str()).collect();
    assert!(drivers.contains(&"sim") && drivers.contains(&"onprem"), "built-in templates found: {templates:?}");

    let home = Home::with_fakes();
    let provider = json!({"api_token": "render-check-token"}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&provider)).ok();
    let pairs: Vec<(PathBuf, PathBuf)> = templates
        .iter()
        .map(|(driver, deployment, template)| (template.clone(), served_document(&home, driver, deployment)))
        .collect();

    let output = render_check(&pairs);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "render_check.py failed ({}):\n{stdout}\n{stderr}", output.status);
    for (_, _, template) in &templates {
        let line = format!("render_check: {} ok (2 nodes,", template.display());
        assert!(stdout.contains(&line), "{} was not checked with its two hosts:\n{stdout}", template.display());
    }
}

/// The check fails a template that reads a variable OneForm does not give (formwork once gave
/// templates the provider's `connection`).
#[test]
fn a_template_reading_beyond_oneforms_variables_fails_the_check() {
    let home = Home::with_fakes();
    let provider = json!({"api_token": "render-check-token"}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&provider)).ok();
    let document = served_document(&home, "sim", "sim_cluster");

    let source = std::fs::read_to_string(builtin_drivers().join("sim/ansible/templates/sim_cluster.j2")).unwrap();
    let marker = "      one_node_create_state_dir: false\n";
    assert!(source.contains(marker), "the sim template changed: pick another line to extend");
    let broken = source.replace(marker, &format!("{marker}      cloud: \"{{{{ connection.endpoint }}}}\"\n"));
    let dir = home.tmp.path().join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("sim_cluster.j2");
    std::fs::write(&template, broken).unwrap();

    let output = render_check(&[(template, document)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("'connection' is undefined"), "{stderr}");
}
