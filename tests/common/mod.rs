//! Helpers shared by the integration tests: an isolated formwork home, copies of driver
//! folders to break, and a runner for the real `formwork` binary.

#![allow(dead_code)]
// Tests run formwork as a user would: they spawn it and pass it PATH.
#![allow(clippy::disallowed_methods)]

pub mod check;
pub mod crash;
pub mod leaks;
pub mod onesim;
pub mod postgres;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's built-in drivers.
pub fn builtin_drivers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers")
}

/// A throw-away formwork home: data dir, an empty built-in dir unless told otherwise, and an
/// extra drivers dir the test fills.
pub struct Home {
    pub tmp: tempfile::TempDir,
    pub builtin: PathBuf,
    /// Extra environment for formwork (e.g. fake tool paths).
    pub env: Vec<(String, String)>,
}

impl Home {
    /// A home whose built-in drivers are the repository's.
    pub fn with_builtin() -> Home {
        Home { tmp: tempfile::tempdir().unwrap(), builtin: builtin_drivers(), env: vec![] }
    }

    /// A home with the built-in drivers whose Terraform and Ansible are the scripted fakes in
    /// tests/fakes (scenario in `<home>/fake-scenario.json`, calls in `<home>/fake-calls.jsonl`).
    pub fn with_fakes() -> Home {
        let mut home = Home::with_builtin();
        let fakes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
        home.env.push(("FORMWORK_TERRAFORM".into(), fakes.join("terraform").display().to_string()));
        home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), fakes.join("ansible-playbook").display().to_string()));
        home
    }

    /// [`Home::with_fakes`] with its own copy of the sim driver, given one more provision input,
    /// `admin_password`, sensitive and without a default (besides the sensitive credential).
    pub fn with_sensitive_input() -> Home {
        let mut home = Home::with_fakes();
        let builtin = home.tmp.path().join("drivers");
        copy_dir(&builtin_drivers().join("sim"), &builtin.join("sim"));
        let vars = builtin.join("sim/terraform/variables.tf");
        let mut text = std::fs::read_to_string(&vars).unwrap();
        text.push_str("\nvariable \"admin_password\" {\n  type      = string\n  sensitive = true\n}\n");
        std::fs::write(&vars, text).unwrap();
        home.builtin = builtin;
        home
    }

    /// Writes the fake tools' scenario.
    pub fn scenario(&self, scenario: serde_json::Value) {
        std::fs::write(self.tmp.path().join("fake-scenario.json"), scenario.to_string()).unwrap();
    }

    /// Every call the fake tools recorded, in order. A tool may be writing its line while
    /// this reads: only complete lines (ended by a newline) count.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.tmp.path().join("fake-calls.jsonl")).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    /// Forgets the calls recorded so far, so [`Home::calls`] shows only the ones made after.
    pub fn forget_calls(&self) {
        match std::fs::remove_file(self.tmp.path().join("fake-calls.jsonl")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
            _ => {}
        }
    }

    /// formwork's OpenNebula model, saved after every call when no endpoint is configured.
    pub fn model(&self) -> PathBuf {
        self.data_dir().join("one-sim.json")
    }

    /// A home with no built-in drivers; drivers are added with [`Home::add_driver`].
    pub fn empty() -> Home {
        let tmp = tempfile::tempdir().unwrap();
        let builtin = tmp.path().join("builtin");
        std::fs::create_dir_all(&builtin).unwrap();
        Home { tmp, builtin, env: vec![] }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Copies a repository driver into the built-in dir under `name`; returns its path.
    pub fn add_driver(&self, from: &str, name: &str) -> PathBuf {
        let dest = self.builtin.join(name);
        copy_dir(&builtin_drivers().join(from), &dest);
        dest
    }

    /// Runs formwork with this home; `FORMWORK_*` and `XDG_*` from the outer environment are
    /// not inherited.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        use std::io::Write;
        let mut child = self.spawn(args);
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        Run(child.wait_with_output().unwrap())
    }

    /// Starts formwork without waiting for it (stdin, stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("FORMWORK_DATA_DIR", self.data_dir())
            .env("FORMWORK_BUILTIN_DRIVERS", &self.builtin)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("formwork starts")
    }
}

/// The outcome of one formwork run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout(), self.stderr()))
    }
    /// Asserts success and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(self.code(), 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
        self
    }
    /// Asserts exit code 1 with `fragment` on stderr.
    pub fn fails_with(self, fragment: &str) -> Run {
        assert_eq!(self.code(), 1, "expected failure\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
        assert!(self.stderr().contains(fragment), "stderr lacks {fragment:?}:\n{}", self.stderr());
        self
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A snapshot of every file under `dir` (path and bytes), to prove nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if !dir.exists() {
        return vec![];
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// The keys of a JSON object, in order.
pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    value.as_object().expect("a JSON object").keys().map(String::as_str).collect()
}

/// A served driver's id, as OneForm clients compute it: the basename of `system_path`.
pub fn driver_id(driver: &serde_json::Value) -> String {
    let path = driver["system_path"].as_str().expect("system_path");
    path.rsplit('/').next().unwrap_or(path).to_string()
}
