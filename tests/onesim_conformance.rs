//! onesim judged by OpenNebula's own Python client: starts the real `onesim` binary on a free
//! port (read from its first stdout line), runs `tests/conformance/pyone_check.py` against it
//! with the pyone that `scripts/setup` installs into `.tools/venv`, and expects every check to
//! pass; then stops onesim with SIGTERM and expects a clean exit.

// Tests run onesim and Python as a user would: they spawn them.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "conformance-pw";

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
        .args(["--port", "0", "--password", PASSWORD])
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

#[test]
fn pyone_parses_every_answer_with_the_expected_values() {
    let python = python();
    let (mut onesim, endpoint) = start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/pyone_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&endpoint)
        .arg(format!("oneadmin:{PASSWORD}"))
        .env_clear()
        .output()
        .expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "pyone_check failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("pyone_check: all checks passed"), "{stdout}");

    let pid = nix::unistd::Pid::from_raw(onesim.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = onesim.0.wait().unwrap();
    assert!(status.success(), "onesim exits cleanly on SIGTERM: {status}");
}
