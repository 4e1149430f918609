//! The `formwork driver` and `formwork provision validate` commands, run as a user runs them.

mod common;

use std::fs;

use common::{Home, driver_id, keys, snapshot};
use serde_json::json;

#[test]
fn builtin_drivers_list_and_show_in_oneform_shape() {
    let home = Home::with_builtin();
    let list = home.run(&["--json", "driver", "list"]).ok().json();
    let ids: Vec<String> = list.as_array().unwrap().iter().map(driver_id).collect();
    assert_eq!(ids, vec!["onprem", "sim"]);

    let sim = home.run(&["--json", "driver", "show", "sim"]).ok().json();
    assert_eq!(
        keys(&sim),
        vec![
            "name",
            "description",
            "state",
            "registry",
            "version",
            "system_path",
            "fireedge",
            "connection",
            "user_inputs",
            "deployment_confs",
            "capabilities"
        ]
    );
    assert_eq!(sim["name"], "Sim");
    assert_eq!(sim["state"], "ENABLED");
    assert_eq!(sim["registry"], "default");
    assert_eq!(
        sim["connection"][0],
        json!({"name": "api_token", "description": "Token of the simulated cloud account", "type": "string", "mandatory": true, "sensitive": true})
    );
    let zone = sim["user_inputs"].as_array().unwrap().iter().find(|i| i["name"] == "zone").unwrap();
    assert_eq!(zone["match"]["grouped_by"], "region");
    let deployment = &sim["deployment_confs"][0];
    assert_eq!(
        keys(deployment),
        vec!["name", "description", "inventory", "user_inputs", "template_path", "one_objects"]
    );
    assert_eq!(deployment["inventory"], "sim_cluster");
    assert_eq!(deployment["one_objects"]["networks"][0]["template"]["network_address"], "null");

    let table = home.run(&["driver", "list"]).ok().stdout();
    assert!(table.starts_with("NAME    STATE    VERSION  REGISTRY  DEPLOYMENTS\n"), "{table}");
    assert!(table.contains("sim     ENABLED  1.0.0    default   sim_cluster"), "{table}");
}

#[test]
fn enable_disable_follow_oneform_rules_and_survive_restarts() {
    let home = Home::with_builtin();
    home.run(&["driver", "enable", "sim"]).fails_with("driver 'sim' is already enabled");
    home.run(&["driver", "disable", "sim"]).ok();
    home.run(&["driver", "disable", "sim"]).fails_with("already disabled");
    // A new process sees the recorded state; sync never re-enables a disabled driver.
    assert_eq!(home.run(&["--json", "driver", "show", "sim"]).ok().json()["state"], "DISABLED");
    home.run(&["driver", "sync"]).ok();
    assert_eq!(home.run(&["--json", "driver", "show", "sim"]).ok().json()["state"], "DISABLED");
    let enabled_only = home.run(&["--json", "driver", "list", "--enabled"]).ok().json();
    assert_eq!(enabled_only.as_array().unwrap().len(), 1);
    home.run(&["provision", "validate", "sim"]).fails_with("driver 'sim' is DISABLED");
    home.run(&["driver", "enable", "sim"]).ok();
    home.run(&["provision", "validate", "sim"]).ok();
}

#[test]
fn driver_names_that_are_paths_are_refused_before_any_lookup() {
    let home = Home::with_builtin();
    for bad in ["../sim", "a/b", "/etc", "", ".states", ".."] {
        home.run(&["driver", "show", bad]).fails_with("is not a plain folder name");
        home.run(&["driver", "enable", bad]).fails_with("is not a plain folder name");
        home.run(&["provision", "validate", bad]).fails_with("is not a plain folder name");
    }
    home.run(&["driver", "show", "smi"]).fails_with("no driver named 'smi' (did you mean 'sim'?)");
}

#[test]
fn registries_and_shadowed_duplicates() {
    let home = Home::with_builtin();
    let extra = home.tmp.path().join("registries");
    common::copy_dir(&common::builtin_drivers().join("sim"), &extra.join("oneform-registry/aws"));
    common::copy_dir(&common::builtin_drivers().join("sim"), &extra.join("oneform-registry/sim"));
    let dir = extra.to_str().unwrap();
    let run = home.run(&["--drivers-dir", dir, "--json", "driver", "list"]).ok();
    let registries: Vec<(String, String)> =
        run.json().as_array().unwrap().iter().map(|d| (driver_id(d), d["registry"].as_str().unwrap().into())).collect();
    assert_eq!(
        registries,
        vec![
            ("onprem".into(), "default".into()),
            ("sim".into(), "default".into()),
            ("aws".into(), "oneform-registry".into())
        ]
    );
    assert!(run.stderr().contains("driver 'sim' at") && run.stderr().contains("is shadowed by"), "{}", run.stderr());
    home.run(&["--drivers-dir", "/nonexistent/dir", "driver", "list"])
        .fails_with("drivers directory '/nonexistent/dir' does not exist");
}

#[test]
fn validate_fills_defaults_redacts_and_substitutes() {
    let home = Home::with_builtin();
    let values = r#"{"oneform_hosts": 3, "region": "us-east", "zone": "us-east-1c", "oneform_public_ips": 2, "cidr_block": "10.9.0.0/24"}"#;
    let out =
        home.run_with_stdin(&["--json", "provision", "validate", "sim", "--values", "-"], Some(values)).ok().json();
    assert_eq!(out["valid"], true);
    assert_eq!(out["deployment"], "sim_cluster");
    assert_eq!(out["user_inputs_values"]["instance_type"], "small");
    assert_eq!(out["user_inputs_values"]["oneform_public_ips"], 2);
    assert_eq!(out["one_objects"]["networks"][0]["template"]["network_address"], "10.9.0.0/24");
    assert_eq!(out["one_objects"]["datastores"][0]["name"], "sim_system_ds");
}

#[test]
fn validate_reports_every_error_and_changes_nothing() {
    let home = Home::with_builtin();
    home.run(&["driver", "list"]).ok();
    let before = snapshot(&home.data_dir());
    let values = home.tmp.path().join("values.yaml");
    fs::write(
        &values,
        "oneform_hosts: 0\nregion: us-east\nzone: eu-west-1a\ninstance_typ: large\noneform_tags: {a: 1}\n",
    )
    .unwrap();
    let run = home.run(&["--json", "provision", "validate", "sim", "--values", values.to_str().unwrap()]);
    assert_eq!(run.code(), 1);
    let out = run.json();
    assert_eq!(out["valid"], false);
    assert_eq!(
        out["errors"],
        json!({
            "instance_typ": ["is not an input of this driver or deployment (did you mean 'instance_type'?)"],
            "oneform_hosts": ["invalid value '0' for 'oneform_hosts', should be ≥ 1"],
            "zone": ["invalid value 'eu-west-1a' for 'zone', choose from: us-east-1a, us-east-1b, us-east-1c."],
            "oneform_tags": ["must be a map of string, but 'a' is a number (1)"]
        })
    );
    assert!(run.stderr().contains("4 inputs of sim / sim_cluster are wrong"), "{}", run.stderr());
    assert_eq!(before, snapshot(&home.data_dir()), "a failed validation must not change any state");
}

#[test]
fn onprem_hosts_are_checked_for_meaning() {
    let home = Home::with_builtin();
    let run = home.run_with_stdin(
        &["provision", "validate", "onprem", "--values", "-"],
        Some("oneform_onprem_hosts: [10.0.0.1, 10.0.0.1]\n"),
    );
    run.fails_with("oneform_onprem_hosts: '10.0.0.1' is listed more than once");
    home.run(&["provision", "validate", "onprem"]).fails_with("oneform_onprem_hosts: is missing");
    home.run_with_stdin(
        &["provision", "validate", "onprem", "--values", "-"],
        Some("oneform_onprem_hosts: [127.0.0.1, node-2]"),
    )
    .ok();
}

#[test]
fn bad_values_files_and_deployments_are_named() {
    let home = Home::with_builtin();
    home.run(&["provision", "validate", "sim", "--values", "/nonexistent.yaml"])
        .fails_with("cannot read values file '/nonexistent.yaml'");
    home.run_with_stdin(&["provision", "validate", "sim", "--values", "-"], Some("a: [unclosed"))
        .fails_with("values in stdin are neither JSON nor YAML");
    home.run_with_stdin(&["provision", "validate", "sim", "--values", "-"], Some("[1, 2]"))
        .fails_with("values: must be a mapping of input name to value");
    home.run(&["provision", "validate", "sim", "-d", "sim_clustr"])
        .fails_with("has no deployment 'sim_clustr' (did you mean 'sim_cluster'?)");
}

#[test]
fn schema_is_draft_2020_12_and_matches_validation() {
    let home = Home::with_builtin();
    let schema = home.run(&["driver", "schema", "sim", "--deployment", "sim_cluster"]).ok().json();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["properties"]["oneform_public_ips"]["maximum"], json!(5));
    assert_eq!(schema["properties"]["instance_type"]["enum"], json!(["small", "medium", "large"]));
    assert_eq!(schema["required"], json!([]));
    let connection = home.run(&["driver", "schema", "sim", "--connection"]).ok().json();
    assert_eq!(connection["required"], json!(["api_token"]));
    assert_eq!(connection["properties"]["api_token"]["writeOnly"], true);
    let no_deployment = home.run(&["driver", "schema", "sim"]).ok().json();
    assert!(no_deployment["properties"].get("oneform_public_ips").is_none());
}

#[test]
fn config_file_and_bad_settings() {
    let home = Home::empty();
    home.add_driver("sim", "sim");
    let config = home.tmp.path().join("formwork.yaml");
    fs::write(&config, "drivers_dirs: [nowhere]\n").unwrap();
    home.run(&["--config", config.to_str().unwrap(), "driver", "list"]).fails_with("nowhere' does not exist");
    fs::write(&config, "driver_dirs: []\n").unwrap();
    home.run(&["--config", config.to_str().unwrap(), "driver", "list"])
        .fails_with("unknown setting 'driver_dirs' (did you mean 'drivers_dirs'?)");
    home.run(&["--config", "/no/such.yaml", "driver", "list"]).fails_with("config file '/no/such.yaml' does not exist");
}

#[test]
fn state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::with_builtin();
    home.run(&["driver", "list"]).ok();
    let states = home.data_dir().join("drivers/.states");
    let mode = fs::metadata(&states).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(fs::read_to_string(states.join("sim.state")).unwrap(), "ENABLED");
}
