//! Upgrades keep everything: every fixture data dir under tests/fixtures/upgrade/ (one per
//! release, made by that release's own binary with scripts/make-upgrade-fixture: provision 1
//! RUNNING, 2 DONE, 3 a create killed mid-APPLYING) is opened by this build, with the real tools.
//! The interrupted create resumes to RUNNING on one consistent driver snapshot, the others scale
//! and deprovision, and the data, historic and logs the old release wrote come through.

// Tests spawn formwork.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Home;
use common::check::{Want, assert_registered, assert_unregistered, hosts_in_cloud};
use serde_json::Value;

const CHECKOUT: &str = env!("CARGO_MANIFEST_DIR");

fn fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(Path::new(CHECKOUT).join("tests/fixtures/upgrade"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("formwork.db").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// A home whose data dir is a copy of `fixture`, with the real tools. Git keeps no modes: the
/// key file and the folders are made private again, as the release left them.
fn home_from(fixture: &Path) -> Home {
    let tools = Path::new(CHECKOUT).join(".tools");
    for needed in ["bin/terraform", "terraformrc", "venv/bin/ansible-playbook"] {
        assert!(tools.join(needed).exists(), ".tools/{needed} is missing: run scripts/setup first");
    }
    let mut home = Home::with_builtin();
    common::copy_dir(fixture, &home.data_dir());
    std::fs::remove_dir_all(home.data_dir().join("sim-cloud")).unwrap();
    std::fs::remove_file(home.data_dir().join("FIXTURE.md")).unwrap();
    for entry in walkdir::WalkDir::new(home.data_dir()).into_iter().flatten() {
        let mode = if entry.file_type().is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let path = |p: PathBuf| p.display().to_string();
    home.env.push(("FORMWORK_TERRAFORM".into(), path(tools.join("bin/terraform"))));
    home.env.push(("FORMWORK_TERRAFORM_CONFIG".into(), path(tools.join("terraformrc"))));
    home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), path(tools.join("venv/bin/ansible-playbook"))));
    home.env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
    home
}

fn show(home: &Home, id: i64) -> Value {
    home.run(&["--json", "provision", "show", &id.to_string()]).ok().json()
}

fn historic(provision: &Value) -> Vec<String> {
    provision["historic"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap().to_string()).collect()
}

#[test]
fn there_is_a_fixture_of_each_release() {
    let names: Vec<String> = fixtures().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    // 47150c8: the release whose sim driver had no `sim_cloud` output yet (its interrupted creates
    // resumed into CONFIGURING_PROVISION_FAILURE before driver snapshots).
    // db59ff7: the release before driver snapshots (issue 17's).
    for release in ["47150c8", "db59ff7"] {
        assert!(names.iter().any(|n| n == release), "tests/fixtures/upgrade holds {names:?}, not {release}");
    }
}

#[test]
fn every_release_fixture_opens_resumes_scales_and_deprovisions() {
    for fixture in fixtures() {
        upgrade(&fixture);
    }
}

fn upgrade(fixture: &Path) {
    let label = fixture.file_name().unwrap().to_string_lossy().into_owned();
    let home = home_from(fixture);
    let data = home.data_dir();
    let model = data.join("one-sim.json");
    // The sim cloud is where the release's provider was told it is (an absolute path).
    let cloud = PathBuf::from(format!("/tmp/formwork-upgrade-fixture-{label}"));
    let _ = std::fs::remove_dir_all(&cloud);
    common::copy_dir(&fixture.join("sim-cloud"), &cloud);
    let old_log = std::fs::read_to_string(data.join("logs/1.log")).unwrap();
    // Read as the release left it, before this build migrates it.
    let conn = rusqlite::Connection::open(data.join("formwork.db")).unwrap();
    let count: i64 = conn.query_row("SELECT count(*) FROM provisions", [], |r| r.get(0)).unwrap();
    assert_eq!(count, 3, "{label}: the fixture holds three provisions");
    drop(conn);

    // The clear files the release left in the idle provision's directory (releases before the
    // put-away of interrupted stages left the variables with the provider's token and a clear
    // plan readable by all); for a release that left none, the same files are put there.
    let idle = data.join("work/1/terraform");
    let mut left = vec![idle.join("provision.auto.tfvars.json"), idle.join("plan.tfplan")];
    for file in &left {
        if !file.exists() {
            std::fs::write(file, format!(r#"{{"api_token": "fixture-token-{label}"}}"#)).unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    // A Terraform state left there too is saved before it goes.
    left.extend(Some(idle.join("terraform.tfstate")).filter(|state| state.exists()));

    // The first start of this formwork migrates and puts those away; nothing else runs.
    let list = home.run(&["--json", "provision", "list", "--all"]).ok().json();
    let states: Vec<(i64, &str)> =
        list.as_array().unwrap().iter().map(|p| (p["id"].as_i64().unwrap(), p["state"].as_str().unwrap())).collect();
    assert_eq!(states, [(1, "RUNNING"), (2, "DONE"), (3, "APPLYING")], "{label}");
    for file in &left {
        assert!(!file.exists(), "{label}: {} was put away at the first start", file.display());
    }
    let log1 = std::fs::read_to_string(data.join("logs/1.log")).unwrap();
    assert!(log1.starts_with(&old_log), "{label}: the old log is kept whole");
    assert!(log1.contains("The files of clear secrets the interrupted stage left were removed"), "{label}");
    // The release kept its log in a file only; this one reads logs from the database, into which
    // the file was imported whole (so the release's recorded positions still hold).
    let served = home.run(&["--json", "provision", "logs", "1", "--all"]).ok().stdout();
    let served: Vec<String> = served
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(served, log1.lines().collect::<Vec<_>>(), "{label}: the log served is the file");
    let state = formwork::store::Store::open(&data.join("formwork.db")).unwrap().latest_tfstate(1).unwrap();
    assert!(state.is_some_and(|s| s.contains("h-")), "{label}: the state on disk was saved before it was removed");

    // The create the upgrade interrupted resumes to its exact end.
    let resumed = home.run(&["--json", "provision", "resume"]);
    let p3 = show(&home, 3);
    assert_eq!(p3["state"], "RUNNING", "{label}: {}\n{}", resumed.stderr(), tail_of_log(&data, 3));
    assert_registered(&format!("{label}: resumed"), &p3, &model, Want::sim(1, 0));
    let log3 = std::fs::read_to_string(data.join("logs/3.log")).unwrap();
    assert!(log3.contains("not made from this operation's driver snapshot"), "{label}: {log3}");

    // The provision the old release ran scales on this one's driver, and its historic goes on.
    let p1_before = show(&home, 1);
    let scaled = home.run(&["--json", "provision", "add-host", "1", "--amount", "1"]).ok().json();
    assert_eq!(scaled["state"], "RUNNING", "{label}");
    assert_registered(&format!("{label}: scaled"), &scaled, &model, Want::sim(2, 0));
    let (before, after) = (historic(&p1_before), historic(&scaled));
    assert!(after.starts_with(&before) && after.len() > before.len(), "{label}: {before:?} then {after:?}");
    assert_eq!(hosts_in_cloud(&cloud).len(), 3, "{label}: 2 hosts of provision 1 and 1 of provision 3");

    for id in ["1", "3"] {
        let done = home.run(&["--json", "provision", "deprovision", id]).ok().json();
        assert_eq!(done["state"], "DONE", "{label}: provision {id}");
    }
    for id in 1..=3 {
        assert_unregistered(&format!("{label}: provision {id}"), &model, id);
    }
    assert!(hosts_in_cloud(&cloud).is_empty(), "{label}: the sim cloud holds {:?}", hosts_in_cloud(&cloud));
    // Nothing the release wrote was lost: its log lines and historic entries are still there.
    assert!(std::fs::read_to_string(data.join("logs/1.log")).unwrap().starts_with(&old_log), "{label}");
    let _ = std::fs::remove_dir_all(&cloud);
    let token = format!("fixture-token-{label}");
    for entry in walkdir::WalkDir::new(&data).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{label}: {} holds the provider's token in clear",
            entry.path().display()
        );
    }
}

fn tail_of_log(data: &Path, id: i64) -> String {
    let text = std::fs::read_to_string(data.join(format!("logs/{id}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
