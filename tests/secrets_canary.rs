//! Secrets at rest, end to end through the `formwork` binary (fake Terraform and Ansible,
//! onesim as OpenNebula): a canary credential and a canary sensitive input go through a whole
//! lifecycle (create with a failed apply that prints them, retry, show, scale up and down, a
//! key rotation, deprovision) and afterwards
//! appear in no file of the data directory (database and WAL included, byte for byte), no log,
//! no command's output but the one that asked for them, and not in onesim; no file formwork
//! keeps may be read by its group or others. Also: a rotation killed half way is finished by the
//! next start, and a data directory opened without its key is refused and left unchanged.

mod common;

use std::cell::RefCell;

use common::Home;
use common::leaks::{files, holders, readable_by_others};
use common::onesim::{Onesim, use_endpoint};
use serde_json::{Value, json};

const CONNECTION_CANARY: &str = "canary-conn-8c1f2e";
const INPUT_CANARY: &str = "canary-input-3b7d9a";

/// Runs commands and keeps everything they printed.
struct Session<'a> {
    home: &'a Home,
    printed: RefCell<Vec<(String, String)>>,
}

impl Session<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> common::Run {
        let run = self.home.run_with_stdin(args, stdin);
        self.printed.borrow_mut().push((args.join(" "), format!("{}\n{}", run.stdout(), run.stderr())));
        run
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.run(&full, None).ok().json()
    }
}

#[test]
fn a_canary_secret_leaves_no_trace_after_a_whole_lifecycle() {
    let mut home = Home::with_sensitive_input();
    let onesim_state = home.tmp.path().join("onesim.json");
    let sim = Onesim::start(&onesim_state);
    use_endpoint(&mut home, &sim);
    let s = Session { home: &home, printed: RefCell::new(Vec::new()) };
    let connection = json!({"api_token": CONNECTION_CANARY}).to_string();
    s.run(&["--json", "provider", "create", "sim", "--values", "-"], Some(&connection)).ok();
    // The first apply fails, and the tool repeats both secrets in its error: the error is kept
    // (stage attempt, operation, log, stderr) with the secrets masked.
    home.scenario(json!({"fail_apply": format!("Error: token {CONNECTION_CANARY} refused for {INPUT_CANARY}")}));
    let values = json!({"oneform_hosts": 1, "admin_password": INPUT_CANARY}).to_string();
    let failed = s.run(&["provision", "create", "sim", "--values", "-"], Some(&values));
    assert!(failed.stderr().contains("Error: token ******** refused"), "{}", failed.stderr());
    let created = s.json(&["provision", "retry", "1"]);
    assert_eq!(created["state"], "RUNNING");
    assert_eq!(created["user_inputs_values"]["admin_password"], "__redacted__");

    // While RUNNING: the working directory keeps no file that handed secrets to a tool.
    let work = home.data_dir().join("work/1");
    assert!(work.join("terraform/main.tf").exists() && work.join("ansible/inventory.yaml").exists());
    let handed = ["terraform/provision.auto.tfvars.json", "terraform/plan.tfplan", "ansible/extra_vars.yaml"];
    for gone in handed.into_iter().chain(["terraform/terraform.tfstate", "terraform/terraform.tfstate.backup"]) {
        assert!(!work.join(gone).exists(), "{gone} outlived its stage");
    }
    let open = readable_by_others(&home.data_dir());
    assert!(open.is_empty(), "others may read {open:?}");

    s.json(&["provision", "show", "1"]);
    s.json(&["provider", "show", "1"]);
    s.run(&["provider", "list"], None).ok();
    s.run(&["provision", "list"], None).ok();
    s.run(&["provision", "logs", "1"], None).ok();
    let up = s.json(&["provision", "add-host", "1", "--amount", "1"]);
    assert_eq!(up["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    let rotated = s.json(&["secrets", "rotate"]);
    assert_eq!(rotated["retired"].as_array().unwrap().len(), 1, "{rotated}");
    let host = up["one_objects"]["hosts"][1]["id"].as_i64().unwrap().to_string();
    let down = s.json(&["provision", "del-host", "1", "--ids", &host]);
    assert_eq!(down["state"], "RUNNING");

    // Asked for explicitly, the values come back as they were: after a rotation too.
    let asked = home.run(&["--json", "provision", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(asked["user_inputs_values"]["admin_password"], INPUT_CANARY);
    let asked = home.run(&["--json", "provider", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(asked["connection"]["api_token"], CONNECTION_CANARY);

    let done = s.json(&["provision", "deprovision", "1"]);
    assert_eq!(done["state"], "DONE");
    s.run(&["provision", "list", "--all"], None).ok();
    sim.stop();

    // Terraform got both values (so every search below looks for something that existed).
    let calls = home.calls();
    let seen: Vec<&str> = calls.iter().filter_map(|c| c["tfvars"].as_str()).collect();
    assert!(seen.iter().any(|v| v.contains(CONNECTION_CANARY) && v.contains(INPUT_CANARY)), "{seen:?}");
    assert!(calls.iter().any(|c| c["tool"] == "ansible-playbook"));
    let db = std::fs::read(home.data_dir().join("formwork.db")).unwrap();
    assert!(db.windows(7).any(|w| w == b"$sealed"), "the database holds the sealed values");

    for canary in [CONNECTION_CANARY, INPUT_CANARY] {
        // The fake tools' own record of what they were handed is the test's, not formwork's.
        let calls_file = home.tmp.path().join("fake-calls.jsonl");
        let found = holders(home.tmp.path(), canary, &[&calls_file]);
        assert!(found.is_empty(), "{canary} is in {found:?}");
        for call in &calls {
            let mut rest = call.clone();
            rest.as_object_mut().unwrap().remove("tfvars");
            assert!(!rest.to_string().contains(canary), "{canary} reached a tool outside its variables file: {call}");
        }
        for (command, printed) in s.printed.borrow().iter() {
            assert!(!printed.contains(canary), "`formwork {command}` printed {canary}:\n{printed}");
        }
    }
    assert!(!files(&home.data_dir().join("logs")).is_empty());
    assert!(onesim_state.exists());
    let open = readable_by_others(&home.data_dir());
    assert!(open.is_empty(), "others may read {open:?}");
}

/// The values of the provider and provision the rotation tests make, as stored.
fn stored_bodies(home: &Home) -> Vec<String> {
    let conn = rusqlite::Connection::open(home.data_dir().join("formwork.db")).unwrap();
    let mut stmt = conn.prepare("SELECT body FROM providers UNION ALL SELECT body FROM provisions").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn key_ids(home: &Home) -> Vec<String> {
    let bodies = stored_bodies(home);
    let mut ids: Vec<String> = bodies
        .iter()
        .flat_map(|b| {
            b.match_indices("\"$sealed\":\"v2:").map(move |(at, m)| b[at + m.len()..at + m.len() + 16].to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn key_lines(home: &Home) -> Vec<String> {
    let text = std::fs::read_to_string(home.data_dir().join("secret.key")).unwrap();
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn a_rotation_killed_half_way_keeps_every_value_open_and_the_next_start_finishes_it() {
    let mut home = Home::with_sensitive_input();
    let connection = json!({"api_token": CONNECTION_CANARY}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&connection)).ok();
    let values = json!({"oneform_hosts": 1, "admin_password": INPUT_CANARY}).to_string();
    home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(&values)).ok();
    let old = key_ids(&home);
    assert_eq!((old.len(), key_lines(&home).len()), (1, 1));

    // Killed after the providers' batch, before the provisions'.
    home.env.push(("FORMWORK_CRASH_AT".into(), "rotate:batch:1".into()));
    let killed = home.run(&["secrets", "rotate"]);
    home.env.pop();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&killed.0.status), Some(9), "{}", killed.stderr());
    assert_eq!(key_lines(&home).len(), 2, "both keys are kept until the rotation ends");
    let both = key_ids(&home);
    assert_eq!(both.len(), 2, "values under the new key and under the old one: {both:?}");
    let new: Vec<String> = both.iter().filter(|id| !old.contains(id)).cloned().collect();

    // The next start (any command) finishes the rotation, and every value opens.
    let shown = home.run(&["--json", "provision", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(shown["user_inputs_values"]["admin_password"], INPUT_CANARY);
    assert_eq!(key_ids(&home), new, "every value is under the new key");
    assert_eq!(key_lines(&home).len(), 1, "the old key is retired");
    let provider = home.run(&["--json", "provider", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(provider["connection"]["api_token"], CONNECTION_CANARY);
}

#[test]
fn a_data_directory_without_its_key_is_refused_and_left_unchanged() {
    let home = Home::with_sensitive_input();
    let connection = json!({"api_token": CONNECTION_CANARY}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&connection)).ok();
    let id = key_ids(&home).pop().unwrap();
    let key_file = home.data_dir().join("secret.key");
    let kept = home.tmp.path().join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let before = common::snapshot(&home.data_dir());
    let refused = home.run(&["provider", "list"]).fails_with(&format!("sealed with key {id}"));
    assert!(refused.stderr().contains(&key_file.display().to_string()), "{}", refused.stderr());
    assert_eq!(common::snapshot(&home.data_dir()), before, "nothing was written, no key was made");

    // The key given by the environment instead of the file opens it.
    let key = std::fs::read_to_string(&kept).unwrap().lines().find(|l| !l.starts_with('#')).unwrap().to_string();
    let mut given = home;
    given.env.push(("FORMWORK_SECRET_KEY".into(), key));
    let shown = given.run(&["--json", "provider", "show", "1", "--include-sensitive"]).ok().json();
    assert_eq!(shown["connection"]["api_token"], CONNECTION_CANARY);
    assert!(!key_file.exists());
}
