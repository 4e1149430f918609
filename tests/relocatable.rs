//! formwork runs from wherever it is installed: the binary holds no path of the machine that
//! built it, and a copy of it in another prefix, beside its `share/formwork` folder, finds its
//! built-in drivers and shared Ansible roles there (the search order in `settings::share_dir`).

// Tests spawn the formwork binary they install.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, copy_dir};
use serde_json::{Value, json};

const CHECKOUT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_binaries_hold_no_path_of_the_checkout_they_were_built_in() {
    for binary in [env!("CARGO_BIN_EXE_formwork"), env!("CARGO_BIN_EXE_onesim")] {
        let bytes = std::fs::read(binary).unwrap();
        let needle = CHECKOUT.as_bytes();
        let at = bytes.windows(needle.len()).position(|w| w == needle);
        assert!(
            at.is_none(),
            "{binary} holds the checkout's path {CHECKOUT} at byte {at:?}: it would look for its files there once installed"
        );
    }
}

/// `<prefix>/bin/formwork` and `<prefix>/share/formwork/{drivers,playbooks}`, as the package and
/// `make install`-style layouts put them.
fn install(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin/formwork");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_formwork"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let share = prefix.join("share/formwork");
    copy_dir(&Path::new(CHECKOUT).join("drivers"), &share.join("drivers"));
    copy_dir(&Path::new(CHECKOUT).join("playbooks"), &share.join("playbooks"));
    bin
}

/// Runs the installed binary from `cwd` with nothing of the checkout in its environment but
/// ansible-playbook on PATH (as an admin's machine has it).
fn run(bin: &Path, cwd: &Path, home: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let venv = Path::new(CHECKOUT).join(".tools/venv/bin");
    assert!(venv.join("ansible-playbook").exists(), ".tools/venv/bin/ansible-playbook is missing: run scripts/setup");
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    Run(child.wait_with_output().unwrap())
}

#[test]
fn a_copy_in_another_prefix_lists_its_drivers_and_runs_an_onprem_provision_to_running() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = install(&tmp.path().join("opt/formwork"));
    let (cwd, home) = (tmp.path().join("elsewhere"), tmp.path().join("home"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&home).unwrap();

    let drivers = run(&bin, &cwd, &home, &["--json", "driver", "list"], None).ok().json();
    let found: Vec<(&str, &str)> = drivers
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["system_path"].as_str().unwrap()))
        .collect();
    let share = tmp.path().join("opt/formwork/share/formwork/drivers");
    let want = [("OnPrem", share.join("onprem")), ("Sim", share.join("sim"))];
    assert_eq!(found.len(), 2, "{drivers}");
    for (name, path) in &want {
        assert!(found.contains(&(name, path.to_str().unwrap())), "{name} from {}: {drivers}", path.display());
    }

    let nodes = tmp.path().join("nodes");
    let values = json!({
        "oneform_onprem_hosts": ["127.0.0.1", "127.0.0.2"],
        "node_connection": "local",
        "node_state_dir": nodes,
    });
    let created = run(
        &bin,
        &cwd,
        &home,
        &["--json", "provision", "create", "onprem", "--values", "-"],
        Some(&values.to_string()),
    )
    .ok()
    .json();
    assert_eq!(created["state"], "RUNNING", "{created}");
    let hosts: Vec<&Value> = created["one_objects"]["hosts"].as_array().unwrap().iter().collect();
    assert_eq!(hosts.len(), 2, "{created}");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        // Written by the shared `one_node` role, found in the installed share folder.
        assert!(nodes.join(ip).join("node.conf").exists(), "the shared roles configured {ip}");
    }
    let data = home.join(".local/share/formwork");
    assert!(data.join("formwork.db").exists(), "the data lives in the user's data dir, not the checkout");
}

#[test]
fn a_share_dir_that_is_not_one_is_refused_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_formwork"))
        .args(["driver", "list"])
        .env_clear()
        .env("HOME", tmp.path())
        .env("FORMWORK_SHARE_DIR", tmp.path().join("nowhere"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("share_dir") && stderr.contains("holds no drivers/ folder"), "{stderr}");
}
