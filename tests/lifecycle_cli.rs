//! The lifecycle through the `formwork` binary with scripted fake `terraform` and
//! `ansible-playbook` executables (tests/fakes): create to RUNNING, failure and retry, scale,
//! deprovision to DONE, on-prem without Terraform, secrets kept out of everything but the
//! 0600 variables file, which lives as long as the stage that needs it.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Home;
use common::check::cloud_hosts;
use serde_json::{Value, json};

const CANARY: &str = "canary-s3cret-4242";

fn sim_provider(home: &Home) -> i64 {
    let values = json!({"api_token": CANARY}).to_string();
    let out = home.run_with_stdin(&["--json", "provider", "create", "sim", "--values", "-"], Some(&values)).ok().json();
    out["id"].as_i64().unwrap()
}

fn create(home: &Home, values: Value) -> common::Run {
    home.run_with_stdin(&["--json", "provision", "create", "sim", "--values", "-"], Some(&values.to_string()))
}

fn show(home: &Home, id: i64) -> Value {
    home.run(&["--json", "provision", "show", &id.to_string()]).ok().json()
}

fn tool_calls(home: &Home, tool: &str) -> Vec<Vec<String>> {
    home.calls()
        .into_iter()
        .filter(|c| c["tool"] == tool)
        .map(|c| c["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
        .collect()
}

fn states(p: &Value) -> Vec<String> {
    p["historic"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "State changed")
        .map(|h| h["description"].as_str().unwrap().rsplit(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn create_runs_to_running_with_plan_once_and_secrets_kept() {
    let home = Home::with_fakes();
    sim_provider(&home);
    let run = create(&home, json!({"oneform_hosts": 2, "oneform_public_ips": 1})).ok();
    let p = run.json();
    assert_eq!(p["state"], "RUNNING", "{}", run.stderr());
    assert_eq!(states(&p), ["INIT", "PLANNING", "APPLYING", "CONFIGURING_ONE", "CONFIGURING_PROVISION", "RUNNING"]);
    let hosts = p["one_objects"]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(hosts.iter().all(|h| h["id"].is_i64()), "{hosts:?}");
    assert_eq!(hosts[0]["name"], "10.0.0.10");
    assert_eq!(hosts[0]["resource_id"], "h-0");
    assert!(p["one_objects"]["cluster"]["name"].as_str().unwrap().ends_with("(provision_1)"));

    let tf = tool_calls(&home, "terraform");
    assert_eq!(tf.iter().map(|a| a[0].as_str()).collect::<Vec<_>>(), ["init", "plan", "apply"]);
    assert!(tf[1].contains(&"-out=plan.tfplan".to_string()) && tf[1].contains(&"-input=false".to_string()));
    assert_eq!(tf[2].last().unwrap(), "plan.tfplan", "apply runs the saved plan");
    let call = &home.calls()[0];
    assert_eq!(call["env"]["TF_IN_AUTOMATION"], "1");
    assert_eq!(call["env"]["CHECKPOINT_DISABLE"], "1");
    assert!(call["env"].get("FORMWORK_DATA_DIR").is_none(), "children get an explicit environment");
    let ansible = &home.calls().into_iter().find(|c| c["tool"] == "ansible-playbook").unwrap();
    assert_eq!(ansible["inventory_mode"], "0o600");
    assert!(ansible["inventory"].as_str().unwrap().contains("10.0.0.11"));
    assert!(ansible["argv"].as_array().unwrap().contains(&json!("@extra_vars.yaml")));

    // Terraform found the canary in the 0600 variables file, which is gone once its stage ended.
    let plan = home.calls().into_iter().find(|c| c["tool"] == "terraform" && c["argv"][0] == "plan").unwrap();
    assert!(plan["tfvars"].as_str().unwrap().contains(CANARY), "{plan}");
    assert_eq!(plan["tfvars_mode"], "0o600");
    let work = home.data_dir().join("work/1/terraform");
    assert!(work.join("main.tf").exists());
    assert!(!work.join("provision.auto.tfvars.json").exists(), "the variables file outlived its stage");
    assert!(!work.join("plan.tfplan").exists(), "the applied plan (it holds the variables) is removed");
    assert!(!home.data_dir().join("work/1/ansible/extra_vars.yaml").exists());
    assert_eq!(std::fs::metadata(home.data_dir().join("work/1")).unwrap().permissions().mode() & 0o777, 0o700);
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("[I] State changed from APPLYING to CONFIGURING_ONE"), "{log}");
    for text in [
        log,
        run.stdout(),
        run.stderr(),
        show(&home, 1).to_string(),
        home.run(&["--json", "provider", "list"]).ok().stdout(),
    ] {
        assert!(!text.contains(CANARY), "the canary leaked: {text}");
    }
    let calls = home.calls();
    assert_eq!(calls.len(), 4, "terraform init, plan, apply and ansible-playbook: {calls:?}");
    for call in calls {
        assert!(!call["argv"].to_string().contains(CANARY), "a secret on a command line: {call}");
    }
}

#[test]
fn a_failed_apply_saves_state_and_retry_finishes() {
    let home = Home::with_fakes();
    sim_provider(&home);
    home.scenario(json!({"fail_host": 1}));
    let run = create(&home, json!({"oneform_hosts": 2}));
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("APPLYING failed") && run.stderr().contains("quota exceeded"), "{}", run.stderr());
    assert!(run.stderr().contains("formwork provision retry 1"), "{}", run.stderr());
    assert_eq!(show(&home, 1)["state"], "APPLYING_FAILURE");

    let retried = home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(retried["state"], "RUNNING");
    assert_eq!(retried["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    let tf: Vec<String> = tool_calls(&home, "terraform").into_iter().map(|a| a[0].clone()).collect();
    assert_eq!(
        tf,
        ["init", "plan", "apply", "plan", "apply"],
        "the retry plans again: the first plan was partly applied"
    );
}

#[test]
fn a_busy_provision_is_refused_with_the_commands_to_wait_or_cancel() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1})).ok();
    home.scenario(json!({"hang_plan": true}));
    let scale = home.spawn(&["provision", "add-host", "1", "--amount", "1"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while tool_calls(&home, "terraform").iter().filter(|a| a[0] == "plan").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "the scale-up never planned: {:?}", home.calls());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let busy = home.run(&["provision", "retry", "1"]);
    assert_eq!(busy.code(), 3, "{}", busy.stderr());
    // The service says what is wrong; the command line adds what to run about it.
    assert!(busy.stderr().contains("provision 1 is busy: operation"), "{}", busy.stderr());
    assert!(busy.stderr().contains("`formwork provision logs 1 --follow`"), "{}", busy.stderr());
    assert!(busy.stderr().contains("`formwork provision cancel 1`"), "{}", busy.stderr());
    home.run(&["provision", "cancel", "1"]).ok();
    let out = scale.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`formwork provision retry 1`"), "a cancelled stage: {stderr}");
}

/// Terraform writes a state it could not persist to `errored.tfstate`: formwork keeps that
/// state (so the retry does not create the hosts again) and leaves no clear copy behind.
#[test]
fn a_state_terraform_could_not_write_is_kept_and_the_retry_makes_no_extra_host() {
    let home = Home::with_fakes();
    sim_provider(&home);
    home.scenario(json!({"errored_state": "write terraform.tfstate: no space left on device"}));
    let run = create(&home, json!({"oneform_hosts": 2}));
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("Failed to persist state"), "{}", run.stderr());
    assert_eq!(show(&home, 1)["state"], "APPLYING_FAILURE");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("left the newest state in errored.tfstate: formwork keeps it"), "{log}");
    let work = home.data_dir().join("work/1/terraform");
    assert!(!work.join("errored.tfstate").exists(), "the clear state outlived its stage");
    assert_eq!(cloud_hosts(&home).len(), 2);

    let retried = home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(retried["state"], "RUNNING");
    assert_eq!(retried["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(cloud_hosts(&home).len(), 2, "the retry built on the kept state: {:?}", cloud_hosts(&home));
}

#[test]
fn deprovision_after_a_failed_first_apply_destroys_what_was_made() {
    let home = Home::with_fakes();
    sim_provider(&home);
    home.scenario(json!({"fail_host": 1}));
    assert_eq!(create(&home, json!({"oneform_hosts": 3})).code(), 1);
    home.run(&["provision", "deprovision", "1"]).fails_with("deprovision needs RUNNING");
    let done = home.run(&["--json", "provision", "deprovision", "1", "--force"]).ok().json();
    assert_eq!(done["state"], "DONE");
    let destroy =
        tool_calls(&home, "terraform").into_iter().find(|a| a[0] == "destroy").expect("terraform destroy ran");
    assert!(!destroy.iter().any(|a| a.starts_with("-target")), "a full destroy");
    assert!(!home.data_dir().join("work/1").exists(), "DONE removes the working directory");
}

#[test]
fn scale_up_and_down_then_deprovision_to_done() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1})).ok();
    let up = home.run(&["--json", "provision", "add-host", "1", "--amount", "2"]).ok().json();
    assert_eq!(up["one_objects"]["hosts"].as_array().unwrap().len(), 3);
    assert_eq!(up["user_inputs_values"]["oneform_hosts"], 3);
    let id = up["one_objects"]["hosts"][1]["id"].as_i64().unwrap().to_string();
    let down = home.run(&["--json", "provision", "del-host", "1", "--ids", &id]).ok().json();
    assert_eq!(down["state"], "RUNNING");
    let names: Vec<&str> =
        down["one_objects"]["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["10.0.0.10", "10.0.0.12"]);
    assert_eq!(down["user_inputs_values"]["oneform_hosts"], 2);
    let destroy = tool_calls(&home, "terraform").into_iter().find(|a| a[0] == "destroy").unwrap();
    assert!(destroy.contains(&"-target=sim_host.host[1]".to_string()), "{destroy:?}");

    home.run(&["provision", "add-host", "1", "--amount", "60"]).fails_with("should be ≤ 50");
    let done = home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert!(home.run(&["--json", "provision", "list"]).ok().json().as_array().unwrap().is_empty());
    assert_eq!(home.run(&["--json", "provision", "list", "--all"]).ok().json().as_array().unwrap().len(), 1);
    home.run(&["provision", "delete", "1"]).ok();
}

#[test]
fn onprem_runs_without_any_terraform() {
    let home = Home::with_fakes();
    let values = json!({"oneform_onprem_hosts": ["127.0.0.1", "127.0.0.2"]}).to_string();
    let p =
        home.run_with_stdin(&["--json", "provision", "create", "onprem", "--values", "-"], Some(&values)).ok().json();
    assert_eq!(p["state"], "RUNNING");
    assert_eq!(p["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    let grown = home.run(&["--json", "provision", "add-host", "1", "--ips", "127.0.0.3"]).ok().json();
    assert_eq!(grown["one_objects"]["hosts"].as_array().unwrap().len(), 3);
    home.run(&["provision", "add-host", "1", "--ips", "127.0.0.3"]).fails_with("listed more than once");
    let done = home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert!(tool_calls(&home, "terraform").is_empty(), "on-prem never runs terraform");
    assert_eq!(tool_calls(&home, "ansible-playbook").len(), 2);
}

#[test]
fn a_failing_playbook_names_the_host_and_bad_requests_change_nothing() {
    let home = Home::with_fakes();
    sim_provider(&home);
    home.scenario(json!({"fail_ansible": "n2"}));
    let run = create(&home, json!({"oneform_hosts": 2}));
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("failed hosts: n2"), "{}", run.stderr());
    let before = show(&home, 1);
    assert_eq!(before["state"], "CONFIGURING_PROVISION_FAILURE");
    home.run(&["provision", "add-host", "1"]).fails_with("scaling needs RUNNING or SCALING_FAILURE");
    home.run(&["provision", "recover", "1", "--state", "RUNNING"])
        .fails_with("can only be recovered to CONFIGURING_PROVISION");
    home.run(&["provision", "delete", "1"]).fails_with("not DONE");
    home.run(&["provision", "show", "99"]).fails_with("provision 99 does not exist");
    assert_eq!(show(&home, 1), before, "refused requests change nothing");
    assert_eq!(
        home.run(&["--json", "provision", "recover", "1", "--state", "configuring_provision"]).ok().json()["state"],
        "RUNNING"
    );
}

#[test]
fn public_ips_are_added_and_removed_within_the_drivers_rules() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1, "oneform_public_ips": 1})).ok();
    let elastic = |p: &Value| -> Vec<i64> {
        let nets = p["one_objects"]["networks"].as_array().unwrap();
        let net = nets.iter().find(|n| n["template"]["vn_mad"] == "elastic").unwrap();
        net["template"]["ar"].as_array().unwrap().iter().map(|a| a["ar_id"].as_i64().unwrap()).collect()
    };
    assert_eq!(elastic(&show(&home, 1)).len(), 1);
    let added = home.run(&["--json", "provision", "add-ip", "1", "--amount", "2"]).ok().json();
    assert_eq!(added["user_inputs_values"]["oneform_public_ips"], 3);
    let ars = elastic(&added);
    assert_eq!(ars.len(), 3);
    let removed = home.run(&["--json", "provision", "del-ip", "1", &ars[0].to_string()]).ok().json();
    assert_eq!(removed["user_inputs_values"]["oneform_public_ips"], 2);
    assert_eq!(elastic(&removed), ars[1..].to_vec());
    let before = show(&home, 1);
    home.run(&["provision", "add-ip", "1", "--amount", "4"]).fails_with("should be ≤ 5");
    home.run(&["provision", "del-ip", "1", "999"]).fails_with("999");
    assert_eq!(show(&home, 1), before, "refused changes change nothing");
}

#[test]
fn update_and_rename_change_the_record_within_the_rules() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1})).ok();
    let renamed = home.run(&["--json", "provision", "rename", "1", "edge-eu"]).ok().json();
    assert_eq!(renamed["name"], "edge-eu");
    let values = json!({"oneform_tags": {"team": "blue"}, "instance_type": "__redacted__"}).to_string();
    let updated = home
        .run_with_stdin(&["--json", "provision", "update", "1", "--values", "-", "--description", "d"], Some(&values))
        .ok()
        .json();
    assert_eq!(updated["tags"], json!({"team": "blue"}));
    assert_eq!(updated["user_inputs_values"]["instance_type"], "small", "__redacted__ leaves a value as it is");
    assert_eq!(updated["description"], "d");
    let before = show(&home, 1);
    home.run_with_stdin(&["provision", "update", "1", "--values", "-"], Some(r#"{"instance_type": "huge"}"#))
        .fails_with("Choose from: small, medium, large");
    assert_eq!(show(&home, 1), before);
    let list = home.run(&["provision", "list"]).ok().stdout();
    assert!(list.contains("edge-eu") && list.contains("RUNNING"), "{list}");
}

/// Every file under `dir` whose bytes contain `needle`, with its mode.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<(String, u32)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| std::fs::read(e.path()).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|e| {
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            (e.path().strip_prefix(dir).unwrap().display().to_string(), mode)
        })
        .collect()
}

#[test]
fn sensitive_inputs_and_credentials_stay_in_private_files() {
    // A sim driver with a sensitive provision input besides the sensitive credential.
    let home = Home::with_sensitive_input();
    sim_provider(&home);
    let input_canary = "input-canary-9731";
    let run = create(&home, json!({"oneform_hosts": 1, "admin_password": input_canary})).ok();
    let p = run.json();
    assert_eq!(p["user_inputs_values"]["admin_password"], "__redacted__");
    let secret_view = home.run(&["--json", "provision", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(secret_view["user_inputs_values"]["admin_password"], input_canary, "shown when asked for explicitly");
    let plan = home.calls().into_iter().find(|c| c["tool"] == "terraform" && c["argv"][0] == "plan").unwrap();
    for canary in [CANARY, input_canary] {
        // Terraform got the value (so the search below looks for something that existed)...
        assert!(plan["tfvars"].as_str().unwrap().contains(canary), "{plan}");
        // ...and no file formwork keeps holds it: the database has it sealed.
        let found = files_containing(&home.data_dir(), canary);
        assert!(found.is_empty(), "{canary} found in {found:?}");
        assert!(!run.stdout().contains(canary) && !run.stderr().contains(canary));
    }
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(!log.contains(input_canary) && !log.contains(CANARY));
}

#[test]
fn a_stage_that_runs_too_long_is_stopped_and_fails() {
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_STAGE_TIMEOUT".into(), "2".into()));
    sim_provider(&home);
    home.scenario(json!({"hang_plan": true}));
    let run = create(&home, json!({"oneform_hosts": 1}));
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("timed out after 2s"), "{}", run.stderr());
    assert_eq!(show(&home, 1)["state"], "PLANNING_FAILURE");
    let log = std::fs::read_to_string(home.data_dir().join("logs/1.log")).unwrap();
    assert!(log.contains("Interrupt received"), "the tool got SIGINT before anything harsher:\n{log}");
}

#[test]
fn logs_print_the_provision_log_as_levels_and_text() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1})).ok();
    let text = home.run(&["provision", "logs", "1", "--all"]).ok().stdout();
    // As OneForm's log API: the level, then the whole line in OneForm's format.
    let line = |level: &str, marker: &str, message: &str| {
        text.lines().any(|l| l.starts_with(&format!("[{level}] ")) && l.ends_with(&format!("[{marker}] {message}")))
    };
    assert!(line("info", "I", "Provision 'Sim' allocated"), "{text}");
    assert!(line("info", "I", "State changed from CONFIGURING_PROVISION to RUNNING"), "{text}");
    assert!(line("debug", "D", "Terraform has been successfully initialized!"), "{text}");
    let json_lines = home.run(&["--json", "provision", "logs", "1", "--follow"]).ok().stdout();
    let last: Value = serde_json::from_str(json_lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "info");
}

#[test]
fn list_and_show_take_a_handlebars_format() {
    let home = Home::with_fakes();
    sim_provider(&home);
    create(&home, json!({"oneform_hosts": 1})).ok();
    assert_eq!(
        home.run(&["provision", "list", "--format", "{{id}}:{{state}}:{{driver}}"]).ok().stdout(),
        "1:RUNNING:sim\n"
    );
    let host =
        home.run(&["provision", "show", "1", "--format", "{{one_objects.hosts.0.name}} <{{name}}>"]).ok().stdout();
    assert_eq!(host, "10.0.0.10 <Sim>\n");
    home.run(&["provision", "list", "--format", "{{stat}}"]).fails_with("--format cannot be rendered");
}

#[test]
fn unmanaged_vms_block_a_teardown_unless_forced() {
    let home = Home::with_fakes();
    sim_provider(&home);
    let p = create(&home, json!({"oneform_hosts": 2})).ok().json();
    let host = p["one_objects"]["hosts"][1]["id"].as_i64().unwrap();
    // A user's VM appears on the second host, as it would in OpenNebula.
    let sim = home.data_dir().join("one-sim.json");
    let mut one: Value = serde_json::from_slice(&std::fs::read(&sim).unwrap()).unwrap();
    one["world"]["vms"]["500"] = json!({"name": "user-vm", "state": 3, "host": host, "leases": []});
    std::fs::write(&sim, one.to_string()).unwrap();

    let before = show(&home, 1);
    home.run(&["provision", "deprovision", "1"])
        .fails_with("VMs or images formwork did not create still use these objects");
    home.run(&["provision", "del-host", "1", "--ids", &host.to_string()]).fails_with("\"vm\":[500]");
    assert_eq!(show(&home, 1)["state"], "RUNNING");
    assert_eq!(
        show(&home, 1)["one_objects"]["hosts"],
        before["one_objects"]["hosts"],
        "a refused teardown changes nothing"
    );
    let other = p["one_objects"]["hosts"][0]["id"].as_i64().unwrap().to_string();
    assert_eq!(home.run(&["--json", "provision", "del-host", "1", "--ids", &other]).ok().json()["state"], "RUNNING");
    assert_eq!(home.run(&["--json", "provision", "deprovision", "1", "--force"]).ok().json()["state"], "DONE");
    let one: Value = serde_json::from_slice(&std::fs::read(&sim).unwrap()).unwrap();
    assert!(
        one["world"]["vms"].get("500").is_none_or(|vm| vm["state"] == 6),
        "the forced teardown deleted the VM: {}",
        one["world"]["vms"]
    );
}
