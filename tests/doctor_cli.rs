//! `formwork doctor` on real installations: one with the real Terraform (`.tools/bin/terraform`,
//! 1.0.3), the real ansible-playbook (`.tools/venv`) and onesim passes every check and changes
//! no file; then each broken installation fails, exits non-zero, and names the failing check
//! and its fix: no Terraform, an old one, OpenNebula unreachable or refusing the credentials, a
//! data directory others may read, a key file missing under a database that holds sealed values,
//! a key file others may read. A warning (an OpenNebula user outside oneadmin) still passes.

// Tests spawn formwork and onesim, and pass them PATH.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::onesim::{Onesim, use_endpoint};
use common::{Home, Run};
use serde_json::{Value, json};

/// The check names, in report order.
const CHECKS: [&str; 9] =
    ["terraform", "ansible", "opennebula", "data_dir", "secret_key", "database", "drivers", "plugin_cache", "disk"];

/// A sensitive connection value: sealed in the database, never printed by doctor.
const CANARY: &str = "doctor-canary-6d1e";

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools")
}

/// A home with the built-in drivers and the real Terraform and ansible-playbook; no OpenNebula
/// endpoint (formwork's embedded model) until a test gives one.
fn installation() -> Home {
    let mut home = Home::with_builtin();
    home.env.push(("FORMWORK_TERRAFORM".into(), tools().join("bin/terraform").display().to_string()));
    home.env
        .push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), tools().join("venv/bin/ansible-playbook").display().to_string()));
    home
}

/// [`installation`] whose data directory holds a database with a sealed value and its key.
fn used_installation() -> Home {
    let home = installation();
    let connection = json!({"api_token": CANARY}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&connection)).ok();
    home
}

/// `formwork --json doctor` and its report.
fn doctor(home: &Home) -> (Run, Value) {
    let run = home.run(&["--json", "doctor"]);
    let report = run.json();
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS, "every check, in order");
    assert!(!run.stdout().contains(CANARY) && !run.stderr().contains(CANARY), "no secret is printed");
    (run, report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

/// Runs doctor on a broken `home`: it exits 1, `name` alone fails, its fix names `remedy` and
/// the error line names the check. Returns the failed check.
fn fails(home: &Home, name: &str, remedy: &str) -> Value {
    let (run, report) = doctor(home);
    let shown = format!("{report:#}\nstderr:\n{}", run.stderr());
    assert_eq!(run.code(), 1, "{shown}");
    assert_eq!(report["ok"], false, "{shown}");
    let failed: Vec<&str> = CHECKS.into_iter().filter(|n| check(&report, n)["status"] == "fail").collect();
    assert_eq!(failed, [name], "only {name} fails: {shown}");
    let failed = check(&report, name).clone();
    let fix = failed["fix"].as_str().unwrap();
    assert!(fix.contains(remedy), "the fix of {name} names {remedy:?}: {fix}");
    assert!(run.stderr().contains(&format!("checks failed ({name})")), "{}", run.stderr());
    failed
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_good_installation_passes_every_check_and_doctor_changes_nothing() {
    let mut home = used_installation();
    let sim = Onesim::start(&home.tmp.path().join("onesim.json"));
    use_endpoint(&mut home, &sim);
    let before = common::snapshot(&home.data_dir());
    let (run, report) = doctor(&home);
    assert_eq!(run.code(), 0, "{report:#}\nstderr:\n{}", run.stderr());
    assert_eq!(report["ok"], true);
    for name in CHECKS {
        let status = &check(&report, name)["status"];
        // Free disk is this machine's: under 5 GiB it warns, which still passes.
        let allowed: &[&str] = if name == "disk" { &["ok", "warn"] } else { &["ok"] };
        assert!(allowed.iter().any(|s| status == s), "{name}: {report:#}");
    }
    assert!(check(&report, "terraform")["detail"].as_str().unwrap().contains("Terraform 1.0.3"));
    assert!(check(&report, "ansible")["detail"].as_str().unwrap().contains("ansible-core 2."));
    let one = check(&report, "opennebula")["detail"].as_str().unwrap();
    assert!(one.contains(&sim.url) && one.contains("as oneadmin"), "{one}");
    assert!(check(&report, "database")["detail"].as_str().unwrap().contains("this formwork's newest"));

    let table = home.run(&["doctor"]).ok().stdout();
    assert!(table.starts_with("CHECK"), "{table}");
    for name in CHECKS {
        assert!(table.lines().any(|l| l.starts_with(name)), "a row for {name}:\n{table}");
    }
    let after = common::snapshot(&home.data_dir());
    let changed: Vec<_> =
        before.iter().chain(&after).filter(|f| !before.contains(f) || !after.contains(f)).map(|f| &f.0).collect();
    assert!(changed.is_empty(), "doctor changed no file of the data directory: {changed:?}");
    sim.stop();
}

#[test]
fn a_fresh_machine_passes_and_doctor_creates_nothing() {
    let home = installation();
    let (run, report) = doctor(&home);
    assert_eq!(run.code(), 0, "{report:#}");
    for name in ["data_dir", "secret_key", "database", "plugin_cache"] {
        let detail = check(&report, name)["detail"].as_str().unwrap();
        assert!(detail.contains("does not exist yet"), "{name}: {detail}");
    }
    assert!(check(&report, "opennebula")["detail"].as_str().unwrap().contains("embedded OpenNebula model"));
    assert!(!home.data_dir().exists(), "no data directory, key or database was made");
}

#[test]
fn no_terraform_fails_naming_the_install() {
    let mut home = installation();
    home.env.push(("FORMWORK_TERRAFORM".into(), "/nonexistent/terraform".into()));
    let failed = fails(&home, "terraform", "install Terraform 1.0.0 or newer");
    assert!(failed["detail"].as_str().unwrap().contains("/nonexistent/terraform"), "{failed}");

    // A bare name is looked for on the PATH the tools get, as a stage would.
    let mut home = installation();
    home.env.push(("FORMWORK_TERRAFORM".into(), "terraform".into()));
    home.env.push(("PATH".into(), "/nonexistent:/usr/bin:/bin".into()));
    let failed = fails(&home, "terraform", "FORMWORK_TERRAFORM");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("is not on the PATH") && detail.contains("/nonexistent:/usr/bin:/bin"), "{detail}");
}

#[test]
fn an_old_terraform_fails_naming_its_version_and_the_oldest_supported() {
    let mut home = installation();
    let old = home.tmp.path().join("terraform-0.14");
    std::fs::write(&old, "#!/bin/sh\necho '{\"terraform_version\":\"0.14.11\",\"platform\":\"linux_amd64\"}'\n")
        .unwrap();
    chmod(&old, 0o755);
    home.env.push(("FORMWORK_TERRAFORM".into(), old.display().to_string()));
    let failed = fails(&home, "terraform", "install Terraform 1.0.0 or newer");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("Terraform 0.14.11") && detail.contains("older than 1.0.0"), "{detail}");
}

#[test]
fn an_unreachable_opennebula_fails_naming_the_endpoint_and_the_setting() {
    let mut home = installation();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}/RPC2");
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "oneadmin:pw\n").unwrap();
    home.env.push(("ONE_XMLRPC".into(), url.clone()));
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));
    let failed = fails(&home, "opennebula", "set one_xmlrpc (ONE_XMLRPC)");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("cannot reach OpenNebula at {url} (one_xmlrpc)")), "{detail}");
}

#[test]
fn wrong_opennebula_credentials_fail_naming_the_one_auth_file() {
    let mut home = installation();
    let sim = Onesim::start(&home.tmp.path().join("onesim.json"));
    use_endpoint(&mut home, &sim);
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "oneadmin:not-the-password\n").unwrap();
    let failed = fails(&home, "opennebula", &auth.display().to_string());
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("refused the credentials") && !detail.contains("not-the-password"), "{detail}");
    sim.stop();
}

#[test]
fn a_user_outside_oneadmin_is_a_warning_and_warnings_still_pass() {
    let mut home = installation();
    let sim = Onesim::with_faults(&home.tmp.path().join("onesim.json"), &["--user", "alice:alice-pw"]);
    use_endpoint(&mut home, &sim);
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "alice:alice-pw\n").unwrap();
    let (run, report) = doctor(&home);
    assert_eq!(run.code(), 0, "a warning is no failure: {report:#}");
    assert_eq!(report["ok"], true);
    let one = check(&report, "opennebula");
    assert_eq!(one["status"], "warn", "{report:#}");
    assert!(one["detail"].as_str().unwrap().contains("outside the oneadmin group"), "{one}");
    assert!(one["fix"].as_str().unwrap().contains(&auth.display().to_string()), "{one}");
    sim.stop();
}

#[test]
fn a_data_dir_others_may_read_fails_naming_chmod_700() {
    let home = used_installation();
    chmod(&home.data_dir(), 0o755);
    let failed = fails(&home, "data_dir", &format!("chmod 700 {}", home.data_dir().display()));
    assert!(failed["detail"].as_str().unwrap().contains("mode 755"), "{failed}");
}

#[test]
fn a_missing_key_under_sealed_values_fails_naming_the_key_and_the_restore() {
    let home = used_installation();
    let key_file = home.data_dir().join("secret.key");
    std::fs::remove_file(&key_file).unwrap();
    let failed = fails(&home, "secret_key", "restore the key file");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains(&key_file.display().to_string()) && detail.contains("sealed with key"), "{detail}");
    assert!(!key_file.exists(), "doctor made no new key");
}

#[test]
fn a_key_file_others_may_read_fails_naming_chmod_600() {
    let home = used_installation();
    let key_file = home.data_dir().join("secret.key");
    chmod(&key_file, 0o644);
    let failed = fails(&home, "secret_key", &format!("chmod 600 {}", key_file.display()));
    assert!(failed["detail"].as_str().unwrap().contains("mode 644"), "{failed}");
}

#[test]
fn an_installation_without_its_share_folder_fails_naming_where_it_goes() {
    let mut home = installation();
    home.builtin = home.tmp.path().join("no-share/drivers");
    let failed = fails(&home, "drivers", "<prefix>/share/formwork");
    assert!(failed["detail"].as_str().unwrap().contains("no-share/drivers"), "{failed}");
}

#[test]
fn doctor_runs_on_the_machine_it_checks_not_through_a_server() {
    let home = installation();
    let refused = home.run(&["--server", "http://127.0.0.1:9", "doctor"]);
    assert_eq!(refused.code(), 1);
    assert!(refused.stderr().contains("GET /health?deep=true"), "{}", refused.stderr());
}
