//! An operation runs on one snapshot of its driver, taken when it starts: a driver folder edited
//! (or replaced by an upgrade) under a running operation changes nothing for it, and the next
//! operation takes the new version, which the historic says.

// Tests spawn formwork.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Home, copy_dir};
use serde_json::Value;

/// A manual home (nothing resumes by itself) with fake tools and its own copy of the sim driver.
fn home() -> Home {
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
    let builtin = home.tmp.path().join("drivers");
    copy_dir(&common::builtin_drivers().join("sim"), &builtin.join("sim"));
    home.builtin = builtin;
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(r#"{"api_token": "t0ken"}"#)).ok();
    home
}

/// Makes the driver folder version 2: another version in driver.conf and a marked playbook.
fn update_driver(home: &Home) {
    let sim = home.builtin.join("sim");
    let conf = std::fs::read_to_string(sim.join("driver.conf")).unwrap();
    std::fs::write(sim.join("driver.conf"), conf.replace("version: '1.0.0'", "version: '2.0.0'")).unwrap();
    let site = std::fs::read_to_string(sim.join("ansible/site.yaml")).unwrap();
    std::fs::write(sim.join("ansible/site.yaml"), format!("# driver version 2\n{site}")).unwrap();
}

/// The playbook the provision's last CONFIGURING_PROVISION ran.
fn playbook_ran(home: &Home) -> String {
    std::fs::read_to_string(home.data_dir().join("work/1/ansible/site.yaml")).unwrap()
}

fn historic(provision: &Value) -> Vec<(String, String)> {
    provision["historic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["action"].as_str().unwrap().to_string(), h["description"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_driver_updated_under_an_operation_takes_effect_at_the_next_operation_only() {
    let mut home = home();
    // The create is killed once INIT made its directory from version 1; then the folder becomes
    // version 2, as an upgrade or an admin's edit makes it.
    home.env.push(("FORMWORK_CRASH_AT".into(), "finished:INIT".into()));
    let killed = home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#));
    assert_ne!(killed.code(), 0, "the create was killed after INIT");
    home.env.pop();
    update_driver(&home);

    let resumed = home.run(&["--json", "provision", "resume"]);
    let p = home.run(&["--json", "provision", "show", "1"]).ok().json();
    assert_eq!(p["state"], "RUNNING", "{}", resumed.stderr());
    assert!(
        !playbook_ran(&home).contains("driver version 2"),
        "the interrupted create configured with version 1's playbook, the one its Terraform came from"
    );
    assert!(!historic(&p).iter().any(|(action, _)| action == "Driver updated"), "{:?}", historic(&p));

    let scaled = home.run(&["--json", "provision", "add-host", "1", "--amount", "1"]).ok().json();
    assert_eq!(scaled["state"], "RUNNING");
    assert!(playbook_ran(&home).contains("driver version 2"), "the next operation takes version 2");
    let updates: Vec<String> =
        historic(&scaled).into_iter().filter(|(action, _)| action == "Driver updated").map(|(_, d)| d).collect();
    assert_eq!(updates.len(), 1, "{:?}", historic(&scaled));
    assert!(updates[0].contains("version 1.0.0") && updates[0].contains("version 2.0.0"), "{}", updates[0]);

    // Each operation names its snapshot; the two differ, and each is in the store once.
    let conn = rusqlite::Connection::open(home.data_dir().join("formwork.db")).unwrap();
    let digests: Vec<Option<String>> = conn
        .prepare("SELECT driver_digest FROM operations ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(digests.len(), 2);
    assert!(digests.iter().all(Option::is_some) && digests[0] != digests[1], "{digests:?}");
    let kept: i64 = conn.query_row("SELECT count(*) FROM driver_snapshots", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 2);
}

#[test]
fn a_snapshot_missing_on_disk_is_made_again_from_the_store() {
    let mut home = home();
    home.env.push(("FORMWORK_CRASH_AT".into(), "finished:APPLYING".into()));
    let killed = home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#));
    assert_ne!(killed.code(), 0);
    home.env.pop();
    // The machine lost the extracted snapshots, and the driver folder is version 2 now.
    std::fs::remove_dir_all(home.data_dir().join("work/.drivers")).unwrap();
    update_driver(&home);
    let resumed = home.run(&["--json", "provision", "resume"]);
    let p = home.run(&["--json", "provision", "show", "1"]).ok().json();
    assert_eq!(p["state"], "RUNNING", "{}", resumed.stderr());
    assert!(!playbook_ran(&home).contains("driver version 2"), "version 1, from the store");
}
