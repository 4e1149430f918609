//! onesim for the integration tests: started per test on a free port, its state in a file the
//! test reads back, and formwork pointed at it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::Home;

pub struct Onesim {
    child: Child,
    pub url: String,
}

impl Onesim {
    pub fn start(state: &std::path::Path) -> Onesim {
        Onesim::with_faults(state, &[])
    }

    /// onesim with extra flags (`--fail-rate`, `--latency-ms`, `--seed`…).
    pub fn with_faults(state: &std::path::Path, faults: &[&str]) -> Onesim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_onesim"))
            .args(["--port", "0", "--password", "pw", "--state", state.to_str().unwrap()])
            .args(faults)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Onesim { child, url }
    }

    pub fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap();
    }
}

/// Points `home`'s formwork at `sim` (replacing an earlier endpoint).
pub fn use_endpoint(home: &mut Home, sim: &Onesim) {
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, "oneadmin:pw\n").unwrap();
    home.env.retain(|(k, _)| k != "ONE_XMLRPC" && k != "ONE_AUTH");
    home.env.push(("ONE_XMLRPC".into(), sim.url.clone()));
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));
}

/// Every object onesim holds, as `kind:name`, from its state file.
pub fn objects(state: &std::path::Path) -> Vec<String> {
    let saved: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let mut names = Vec::new();
    for kind in ["clusters", "hosts", "datastores", "vnets"] {
        for record in saved["world"][kind].as_object().unwrap().values() {
            names.push(format!("{kind}:{}", record["name"].as_str().unwrap()));
        }
    }
    names.sort();
    names
}
