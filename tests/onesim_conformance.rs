//! onesim judged by OpenNebula's own Python client and XML schemas: each test starts the real
//! `onesim` binary on a free port (read from its first stdout line) and runs a script from
//! `tests/conformance/` against it with the Python that `scripts/setup` prepares in
//! `.tools/venv`: `pyone_check.py` (pyone parses every answer with the expected values), and
//! `xsd_check.py` (every `*.info` and pool answer validates against OpenNebula's XSDs, copied
//! into `tests/conformance/xsd/`, with xmlschema). Both must pass; onesim is then stopped with
//! SIGTERM and must exit cleanly.

// Tests run onesim and Python as a user would: they spawn them.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "conformance-pw";
/// A user of the `users` group, for pyone_check.py's reads as a plain user.
const PLAIN_USER: &str = "pyone-user:pyone-pw";
/// serveradmin's secret, from which pyone_check.py makes `serveradmin:<user>:<token>` sessions.
const SERVERADMIN_SECRET: &str = "conformance-server-secret";

/// Kills onesim if the test fails before stopping it.
struct Onesim(Child);

impl Drop for Onesim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup, which installs pyone there", python.display());
    python
}

/// Starts onesim on port 0 and returns it with its endpoint.
fn start() -> (Onesim, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onesim"))
        .args(["--port", "0", "--password", PASSWORD, "--user", PLAIN_USER])
        .args(["--serveradmin-password", SERVERADMIN_SECRET])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("onesim starts");
    let stdout = child.stdout.take().unwrap();
    let onesim = Onesim(child);
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx.recv_timeout(Duration::from_secs(60)).expect("onesim prints its endpoint within a minute");
    let endpoint = line.trim().strip_prefix("onesim listening on ").unwrap_or_else(|| panic!("first line: {line:?}"));
    assert!(endpoint.starts_with("http://127.0.0.1:") && endpoint.ends_with("/RPC2"), "{endpoint}");
    (onesim, endpoint.to_string())
}

/// Runs `tests/conformance/<script>` against a fresh onesim with `extra` arguments after the
/// endpoint and session; returns its stdout once it succeeded and onesim stopped cleanly.
fn run_check(script: &str, extra: &[&OsStr]) -> String {
    let python = python();
    let (mut onesim, endpoint) = start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(root.join("tests/conformance").join(script))
        .arg(&endpoint)
        .arg(format!("oneadmin:{PASSWORD}"))
        .args(extra)
        .env_clear()
        .output()
        .expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", output.status);

    let pid = nix::unistd::Pid::from_raw(onesim.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = onesim.0.wait().unwrap();
    assert!(status.success(), "onesim exits cleanly on SIGTERM: {status}");
    stdout.into_owned()
}

#[test]
fn pyone_parses_every_answer_with_the_expected_values() {
    let stdout = run_check("pyone_check.py", &[OsStr::new(PLAIN_USER), OsStr::new(SERVERADMIN_SECRET)]);
    assert!(stdout.contains("pyone_check: all checks passed"), "{stdout}");
    for step in ["serveradmin sessions: expired, tampered", "zonepool.info", "documentpool.info as a plain user"] {
        assert!(stdout.contains(&format!("pyone_check: {step}")), "the step '{step}' did not run:\n{stdout}");
    }
}

#[test]
fn every_info_and_pool_answer_validates_against_opennebulas_xsds() {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/xsd");
    let stdout = run_check("xsd_check.py", &[xsd.as_os_str()]);
    assert!(stdout.contains("xsd_check: every answer is valid"), "{stdout}");
    // Each kind onesim answers for, in its info and (where it has one) pool form.
    for root in ["CLUSTER", "HOST", "VNET", "DATASTORE", "IMAGE", "VM", "DOCUMENT", "USER", "ZONE"] {
        assert!(stdout.contains(&format!("<{root}>")), "<{root}> was not validated:\n{stdout}");
    }
    for pool in [
        "CLUSTER_POOL",
        "HOST_POOL",
        "VNET_POOL",
        "DATASTORE_POOL",
        "IMAGE_POOL",
        "DOCUMENT_POOL",
        "USER_POOL",
        "ZONE_POOL",
    ] {
        assert!(stdout.contains(&format!("<{pool}>")), "<{pool}> was not validated:\n{stdout}");
    }
}
