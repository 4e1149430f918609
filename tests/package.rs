//! The Debian package (`scripts/package`, `packaging/`): what it holds, its control fields and
//! maintainer scripts, the unit (systemd's own verifier, every hardening setting), the default
//! config, the unit's key step, and the readiness protocol `Type=notify` relies on.
//!
//! The package is built once per run from the debug binary the tests already have
//! (`scripts/package --binary`), uncompressed, and unpacked with `dpkg-deb -x` into a root the
//! tests run it from. `systemd-analyze` and `dpkg-deb` come from Debian's `systemd` and `dpkg`
//! (`scripts/setup` installs them).

// Tests run the script, dpkg-deb and the binary as a user would.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The package built from the debug binary, and the root it was unpacked into.
struct Built {
    deb: PathBuf,
    root: PathBuf,
    /// `dpkg-deb -e`: control, conffiles, maintainer scripts.
    control: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        for tool in ["dpkg-deb", "systemd-analyze"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
            assert!(
                found.status.success(),
                "{tool} is missing: run scripts/setup, which installs Debian's dpkg and systemd packages (apt-get install dpkg systemd)"
            );
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = run(Command::new(Path::new(REPO).join("scripts/package")).args([
            "--binary",
            env!("CARGO_BIN_EXE_formwork"),
            "--out",
            dir.to_str().unwrap(),
            "--compression",
            "none",
        ]));
        let deb = PathBuf::from(stdout(&out).trim());
        let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture"))).trim().to_string();
        assert_eq!(deb, dir.join(format!("formwork_{}_{arch}.deb", env!("CARGO_PKG_VERSION"))), "the printed path");
        let (root, control) = (dir.join("root"), dir.join("control"));
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
        Built { deb, root, control }
    })
}

/// Runs `cmd`; panics with its output unless it succeeded.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}\n{}{}", out.status, stdout(&out), String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packaged formwork, with nothing of this process's environment but PATH, HOME and `env`,
/// run from `cwd` (not the repository).
fn formwork(cwd: &Path, env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(built().root.join("usr/bin/formwork"));
    cmd.current_dir(cwd).env_clear().env("PATH", "/usr/bin:/bin").env("HOME", cwd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

/// The package's unit as `[section] key` → values in order (a key may repeat).
fn unit() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(built().root.join("lib/systemd/system/formwork.service")).unwrap();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        keys.entry(format!("[{section}] {key}")).or_default().push(value.to_string());
    }
    keys
}

#[test]
fn the_package_holds_exactly_the_expected_files_with_the_control_fields() {
    let built = built();
    let listing = stdout(&run(Command::new("dpkg-deb").arg("--contents").arg(&built.deb)));
    let mut files = BTreeMap::new();
    for line in listing.lines() {
        // -rw-r--r-- root/root      5655 2026-12-07 17:38 ./etc/formwork/config.yaml
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], "root/root", "owned by root: {line}");
        if !fields[0].starts_with('d') {
            files.insert(fields[5].trim_start_matches("./").to_string(), fields[0].to_string());
        } else {
            assert_eq!(fields[0], "drwxr-xr-x", "{line}");
        }
    }
    let mut expected: BTreeSet<String> = [
        "usr/bin/formwork",
        "lib/systemd/system/formwork.service",
        "etc/formwork/config.yaml",
        "etc/logrotate.d/formwork",
        "usr/share/doc/formwork/copyright",
        "usr/share/doc/formwork/changelog.gz",
        "usr/share/doc/formwork/install.md",
        "usr/share/lintian/overrides/formwork",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for dir in ["drivers", "playbooks"] {
        for file in walk(&Path::new(REPO).join(dir)) {
            let relative = file.strip_prefix(REPO).unwrap().display().to_string();
            expected.insert(format!("usr/share/formwork/{relative}"));
        }
    }
    for role in ["one_node", "one_frontend"] {
        assert!(expected.contains(&format!("usr/share/formwork/playbooks/roles/{role}/tasks/main.yml")));
    }
    for driver in ["onprem", "sim"] {
        assert!(expected.contains(&format!("usr/share/formwork/drivers/{driver}/driver.conf")));
    }
    assert_eq!(files.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (file, mode) in &files {
        let want = if file == "usr/bin/formwork" { "-rwxr-xr-x" } else { "-rw-r--r--" };
        assert_eq!(mode, want, "{file}");
    }

    let field = |name: &str| stdout(&run(Command::new("dpkg-deb").arg("--field").arg(&built.deb).arg(name)));
    assert_eq!(field("Package").trim(), "formwork");
    assert_eq!(field("Version").trim(), env!("CARGO_PKG_VERSION"));
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")));
    assert_eq!(field("Architecture").trim(), arch.trim());
    let depends = field("Depends");
    assert!(depends.starts_with("adduser, libc6 (>= 2.") && depends.contains("libgcc-s1"), "{depends}");
    assert!(field("Recommends").contains("ansible-core"));
    assert!(field("Description").contains("Terraform (or OpenTofu) is not in Debian"));
    let size: u64 = field("Installed-Size").trim().parse().unwrap();
    assert!(size > 1000, "Installed-Size {size} KiB");

    // Everything the package puts in /etc is a conffile: an upgrade keeps the admin's edits.
    let conffiles = std::fs::read_to_string(built.control.join("conffiles")).unwrap();
    let etc: BTreeSet<String> = files.keys().filter(|f| f.starts_with("etc/")).map(|f| format!("/{f}")).collect();
    assert_eq!(conffiles.lines().map(String::from).collect::<BTreeSet<_>>(), etc);
    assert!(etc.contains("/etc/formwork/config.yaml"));
}

/// The files below `dir`, hidden entries left out (as the script leaves them out).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// A folder of fake `adduser`, `install`, `deb-systemd-helper`, `deb-systemd-invoke` and
/// `systemctl` that append their arguments to `calls`; `deb-systemd-helper debian-installed`
/// succeeds when the file `installed` exists.
fn fake_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["adduser", "install", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"] {
        let script = format!(
            "#!/bin/sh\necho \"{tool} $*\" >>'{calls}'\n\
             if [ \"$1\" = debian-installed ] && [ ! -e '{installed}' ]; then exit 1; fi\nexit 0\n",
            calls = dir.join("calls").display(),
            installed = dir.join("installed").display(),
        );
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn the_maintainer_scripts_parse_and_create_the_user_without_enabling_or_starting_the_service() {
    let control = &built().control;
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.join(script);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o755, "{script}");
        run(Command::new("sh").arg("-n").arg(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n") && text.contains("\nset -e\n"), "{script}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_tools(tmp.path());
    let calls = || std::fs::read_to_string(tmp.path().join("calls")).unwrap_or_default();
    let script = |name: &str, args: &[&str]| {
        let _ = std::fs::remove_file(tmp.path().join("calls"));
        let path = format!("{}:/usr/bin:/bin", bin.display());
        run(Command::new("sh").arg(control.join(name)).args(args).env_clear().env("PATH", path));
        calls()
    };

    // A first install: the user and group, no login, home in the data directory; the unit is
    // recorded, neither enabled nor started. Twice is the same (adduser --system is idempotent).
    for _ in 0..2 {
        let done = script("postinst", &["configure", ""]);
        assert!(
            done.contains(
                "adduser --system --group --quiet --home /var/lib/formwork --no-create-home --shell /usr/sbin/nologin formwork"
            ),
            "{done}"
        );
        assert!(done.contains("deb-systemd-helper update-state formwork.service"), "{done}");
        assert!(!done.contains(" enable") && !done.contains(" start") && !done.contains("restart"), "{done}");
    }
    // Installed before (and enabled by the admin): enabled again, so new symlinks are made.
    std::fs::write(tmp.path().join("installed"), "").unwrap();
    let done = script("postinst", &["configure", "0.0.9"]);
    assert!(done.contains("deb-systemd-helper enable formwork.service"), "{done}");

    let done = script("postrm", &["purge"]);
    assert!(done.contains("deb-systemd-helper purge formwork.service"), "{done}");
    let text = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(!text.contains("rm "), "a purge removes no data, key, log or user itself:\n{text}");
    let text = std::fs::read_to_string(control.join("prerm")).unwrap();
    assert!(text.contains("\"$1\" = remove") && text.contains("deb-systemd-invoke stop formwork.service"));
}

#[test]
fn the_extracted_binary_runs_from_elsewhere_with_the_packaged_drivers_and_default_config() {
    let root = &built().root;
    let tmp = tempfile::tempdir().unwrap();
    let version = stdout(&run(formwork(tmp.path(), &[]).arg("--version")));
    assert_eq!(version.trim(), format!("formwork {}", env!("CARGO_PKG_VERSION")));

    // /var/lib and /etc are not the test's to write: the data dir and key file through the
    // environment, which beats the config file.
    let data = tmp.path().join("data");
    let key = tmp.path().join("secret.key");
    let drivers = root.join("usr/share/formwork/drivers");
    // Nothing names the drivers: the binary finds <bin>/../share/formwork by itself.
    let env = [("FORMWORK_DATA_DIR", data.as_path()), ("FORMWORK_SECRET_KEY_FILE", &key)];
    let config = root.join("etc/formwork/config.yaml");
    let out = run(formwork(tmp.path(), &env).arg("--config").arg(&config).args(["--json", "driver", "list"]));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_lowercase(), d["system_path"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(paths.keys().map(String::as_str).collect::<Vec<_>>(), ["onprem", "sim"]);
    for (name, path) in &paths {
        assert_eq!(Path::new(path), drivers.join(name), "the packaged driver, not the repository's");
    }

    // Every setting the config shows commented out is one formwork knows: all of them
    // uncommented, the file is still accepted.
    let text = std::fs::read_to_string(&config).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) || rest.starts_with("  ") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(uncommented.contains("\none_xmlrpc: ") && uncommented.contains("\ntool_env:\n  pass:"), "{uncommented}");
    let all = tmp.path().join("all.yaml");
    std::fs::write(&all, &uncommented).unwrap();
    // Its example drivers_dirs is OneForm's folder, not on this machine: one that is.
    let extra = tmp.path().join("extra");
    std::fs::create_dir(&extra).unwrap();
    let env = [env.as_slice(), &[("FORMWORK_DRIVERS_DIRS", extra.as_path())]].concat();
    run(formwork(tmp.path(), &env).arg("--config").arg(&all).args(["driver", "list"]));
    // ...and a misspelt one is refused, so that acceptance means something.
    std::fs::write(&all, uncommented.replace("\nstage_timeout:", "\nstage_timout:")).unwrap();
    let out = formwork(tmp.path(), &env).arg("--config").arg(&all).args(["driver", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting 'stage_timout'"), "{out:?}");

    // The settings the service needs are set, to the layout the unit and docs describe.
    for line in [
        "data_dir: /var/lib/formwork",
        "secret_key_file: /etc/formwork/secret.key",
        "audit_log: /var/log/formwork/audit.log",
        "listen: 127.0.0.1:13013",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}");
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let root = &built().root;
    let tmp = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's binary exists: point the unit at the unpacked tree.
    let text = std::fs::read_to_string(root.join("lib/systemd/system/formwork.service")).unwrap();
    let text = text
        .replace("/usr/bin/formwork", &root.join("usr/bin/formwork").display().to_string())
        .replace("/etc/formwork/config.yaml", &root.join("etc/formwork/config.yaml").display().to_string());
    let unit = tmp.path().join("formwork.service");
    std::fs::write(&unit, text).unwrap();
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    // A setting systemd cannot parse is only a warning ("ignoring"), exit status 0.
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "systemd-analyze verify warned");
    // The check is real: a misspelt value is reported.
    std::fs::write(&unit, std::fs::read_to_string(&unit).unwrap().replace("Type=notify", "Type=notfy")).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("notfy"), "{out:?}");
}

#[test]
fn the_unit_runs_the_server_hardened_as_the_issue_asks() {
    let unit = unit();
    let one = |key: &str| -> &str {
        let values = unit.get(&format!("[Service] {key}")).unwrap_or_else(|| panic!("{key} is not set"));
        assert_eq!(values.len(), 1, "{key} is set more than once");
        &values[0]
    };
    for (key, value) in [
        ("Type", "notify"),
        ("User", "formwork"),
        ("Group", "formwork"),
        ("ExecStart", "/usr/bin/formwork --config /etc/formwork/config.yaml serve"),
        ("ExecStartPre", "+/usr/bin/formwork --config /etc/formwork/config.yaml secrets init-key --owner formwork"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("StateDirectory", "formwork"),
        ("StateDirectoryMode", "0700"),
        ("LogsDirectory", "formwork"),
        ("LogsDirectoryMode", "0750"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictSUIDSGID", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("LockPersonality", "yes"),
        ("KillSignal", "SIGTERM"),
        ("KillMode", "mixed"),
        ("Restart", "on-failure"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    assert!(!unit.contains_key("[Service] MemoryDenyWriteExecute"), "children (Python's libffi) need W+X pages");
    // The stop timeout covers the server's own: DRAIN (api) 10 s + runtime shutdown 5 s + the
    // wait for its tools to stop.
    let stop: u64 = one("TimeoutStopSec").trim_end_matches('s').parse().unwrap();
    let own = 10 + 5 + formwork::service::TOOL_GRACE.as_secs();
    assert!(stop > own, "TimeoutStopSec={stop} must exceed the server's own stop, {own} s");
    assert_eq!(unit["[Install] WantedBy"], ["multi-user.target"]);

    let logrotate = std::fs::read_to_string(built().root.join("etc/logrotate.d/formwork")).unwrap();
    for line in ["/var/log/formwork/*.log {", "compress", "delaycompress", "missingok", "notifempty", "sharedscripts"] {
        assert!(logrotate.lines().any(|l| l.trim() == line), "logrotate: {line}");
    }
    assert!(logrotate.contains("su formwork formwork") && logrotate.contains("create 0600 formwork formwork"));
    assert!(logrotate.contains("systemctl kill --signal=HUP --kill-whom=main formwork.service"));
}

#[test]
fn the_units_key_step_creates_a_private_key_file_once_and_refuses_a_readable_one() {
    let root = &built().root;
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("etc/secret.key");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
    // ExecStartPre as the unit says, for this user instead of formwork.
    let pre = unit()["[Service] ExecStartPre"][0].clone();
    let argv: Vec<String> = pre
        .trim_start_matches('+')
        .replace("/etc/formwork/config.yaml", &root.join("etc/formwork/config.yaml").display().to_string())
        .replace("--owner formwork", &format!("--owner {me}"))
        .split(' ')
        .map(String::from)
        .collect();
    assert_eq!(argv[0], "/usr/bin/formwork");
    let init = || {
        let mut cmd = formwork(tmp.path(), &[("FORMWORK_SECRET_KEY_FILE", &key)]);
        cmd.args(&argv[1..]).output().unwrap()
    };
    let out = init();
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).starts_with(&format!("Created the key file {}", key.display())), "{out:?}");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read(&key).unwrap();
    let out = init();
    assert!(stdout(&out).contains("nothing changed") && out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&key).unwrap(), text, "a good key file is left as it was");
    let made: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(made, ["etc"], "nothing but the key file's directory is made (no data dir, no database)");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = init();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("others may read it (mode 644)") && err.contains("chmod 600"),
        "{err}"
    );
}

/// `formwork serve --listen 127.0.0.1:0` with NOTIFY_SOCKET, and the manager's end of it.
struct Served {
    child: std::process::Child,
    manager: UnixDatagram,
    stderr: Option<std::thread::JoinHandle<String>>,
    _tmp: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let tmp = tempfile::tempdir().unwrap();
        let socket_path = tmp.path().join("notify");
        let manager = UnixDatagram::bind(&socket_path).unwrap();
        manager.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let auth = tmp.path().join("one_auth");
        std::fs::write(&auth, "oneadmin:pw\n").unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_formwork"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(tmp.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", tmp.path())
            .env("FORMWORK_DATA_DIR", tmp.path().join("data"))
            .env("ONE_AUTH", &auth)
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Served { child, manager, stderr: Some(stderr), _tmp: tmp }
    }

    /// The next notification (bounded wait); on none, the server is killed and its log shown.
    fn notification(&mut self) -> String {
        let mut buf = [0u8; 1024];
        match self.manager.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                panic!("no notification within a minute ({e}; {status:?}); stderr:\n{}", self.log())
            }
        }
    }

    /// SIGTERM, then the exit status once it stopped.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let stopping = self.notification();
        assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
        self.child.wait().unwrap()
    }

    fn log(&mut self) -> String {
        self.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default()
    }
}

#[test]
fn serve_reports_ready_to_systemd_once_its_port_answers_and_stopping_on_sigterm() {
    let mut served = Served::start();
    let ready = served.notification();
    // The stdout line came first; the address it names answers now.
    let mut line = String::new();
    BufReader::new(served.child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("formwork listening on ").unwrap_or_else(|| panic!("{line:?}")).to_string();
    assert_eq!(ready, format!("READY=1\nSTATUS=formwork listening on {url}"));
    let mut http = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    http.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    http.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = served.terminate();
    assert!(status.success(), "a graceful stop exits 0: {status:?}\n{}", served.log());
}

#[test]
fn a_sigterm_the_moment_serve_is_ready_stops_it_gracefully() {
    // systemd may stop or restart a unit as soon as it is ready: SIGTERM must be hooked by then,
    // not killing the server with the default action.
    for _ in 0..3 {
        let mut served = Served::start();
        assert!(served.notification().starts_with("READY=1\n"));
        let status = served.terminate();
        assert!(status.success(), "a graceful stop exits 0: {status:?}\n{}", served.log());
    }
}
