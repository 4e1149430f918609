//! Every command through a server: `formwork serve` (fake Terraform and Ansible, onesim as
//! OpenNebula) driven by `formwork --server URL`, compared with the same commands run locally
//! (same tables, same `--json` modulo times, same exit codes), a whole lifecycle followed over
//! the API, refused credentials, a busy provision (exit 3) and a server that is down.

mod common;

use common::Home;
use common::onesim::{Onesim, objects};
use serde_json::{Value, json};

/// A running `formwork serve` with its own home (data, fake tools' records, onesim's state).
struct Served {
    home: Home,
    server: common::server::Server,
    url: String,
    sim: Option<Onesim>,
}

impl Served {
    /// Serves a home with the fake tools, OpenNebula being onesim with `oneadmin:pw` and
    /// `alice:apw` (group users).
    fn start() -> Served {
        let mut home = Home::with_fakes();
        let sim = Onesim::with_faults(&home.tmp.path().join("onesim.json"), &["--user", "alice:apw"]);
        common::onesim::use_endpoint(&mut home, &sim);
        let server = common::server::Server::start(&home);
        let url = format!("http://{}", server.addr);
        Served { home, server, url, sim: Some(sim) }
    }

    /// A client home whose commands go to this server as `user`.
    fn client(&self, user: &str, password: &str) -> Home {
        let mut client = Home::with_builtin();
        client.env.push(("ONEFORM_URL".into(), self.url.clone()));
        client.env.push(("ONEFORM_USER".into(), user.into()));
        client.env.push(("ONEFORM_PASSWORD".into(), password.into()));
        client
    }

    /// Stops the server and returns its URL (nothing listens there any more).
    fn stop(mut self) -> String {
        self.server.kill9();
        std::mem::take(&mut self.url)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

/// Times zeroed (they differ between two runs), recursively.
fn timeless(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                *v = if key.ends_with("time") { json!(0) } else { timeless(v.take()) };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| *v = timeless(v.take())),
        _ => {}
    }
    value
}

/// Where two JSON values differ, as JSON pointers with both sides.
fn differences(at: &str, a: &Value, b: &Value) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            let null = Value::Null;
            let pairs = keys.into_iter().map(|k| (k, x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null)));
            pairs.flat_map(|(k, x, y)| differences(&format!("{at}/{k}"), x, y)).collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().flat_map(|(i, (x, y))| differences(&format!("{at}/{i}"), x, y)).collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![format!("{at}: local {a} remote {b}")],
    }
}

/// Dates in tables masked.
fn dateless(text: &str) -> String {
    regex::Regex::new(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").unwrap().replace_all(text, "DATE").into_owned()
}

fn sim_values() -> String {
    json!({"api_token": "canary-remote-7"}).to_string()
}

#[test]
fn every_command_prints_what_it_prints_locally() {
    let server = Served::start();
    let remote = server.client("oneadmin", "pw");
    let mut local = Home::with_fakes();
    let local_sim = Onesim::start(&local.tmp.path().join("onesim.json"));
    common::onesim::use_endpoint(&mut local, &local_sim);

    let both = |args: &[&str], stdin: Option<&str>| {
        let (l, r) = (local.run_with_stdin(args, stdin), remote.run_with_stdin(args, stdin));
        assert_eq!(l.code(), r.code(), "{args:?}: exit codes differ\nlocal: {}\nremote: {}", l.stderr(), r.stderr());
        (l, r)
    };
    let same_json = |args: &[&str], stdin: Option<&str>| {
        let (l, r) = both(args, stdin);
        let (l, r) = (timeless(l.ok().json()), timeless(r.ok().json()));
        assert_eq!(differences("", &l, &r), Vec::<String>::new(), "{args:?}");
    };
    let same_text = |args: &[&str]| {
        let (l, r) = both(args, None);
        assert_eq!(dateless(&l.ok().stdout()), dateless(&r.ok().stdout()), "{args:?}");
    };

    same_text(&["driver", "list"]);
    same_text(&["driver", "show", "sim"]);
    same_json(&["--json", "driver", "schema", "sim", "--connection"], None);
    same_json(&["--json", "provider", "create", "sim", "--values", "-"], Some(&sim_values()));
    same_text(&["provider", "list"]);
    same_text(&["provider", "show", "2"]);
    let values = json!({"oneform_hosts": 2}).to_string();
    same_json(&["--json", "provision", "validate", "sim", "--values", "-"], Some(&values));
    let (l, r) = both(&["provision", "create", "sim", "--values", "-"], Some(&values));
    let (l, r) = (l.ok(), r.ok());
    assert_eq!(l.stdout(), "provision 1 is RUNNING\n");
    assert_eq!(r.stdout(), "provision 1 is RUNNING\n");
    // Steps inside a stage (`[provision 1]   configured n1`) are not told apart from other log
    // lines over the API: the creation and each state change are.
    let state_lines = |stderr: String| -> Vec<String> {
        let lines =
            stderr.lines().filter(|l| l.starts_with("provision ") || (l.contains(" → ") && !l.contains("]   ")));
        lines.map(|l| l.split(" (").next().unwrap().to_string()).collect()
    };
    assert_eq!(state_lines(l.stderr()).len(), 7, "{}", l.stderr());
    assert_eq!(state_lines(l.stderr()), state_lines(r.stderr()), "the same progress lines, times aside");
    assert!(r.stderr().contains("[provision 1] CONFIGURING_PROVISION → RUNNING"), "{}", r.stderr());
    same_json(&["--json", "provision", "show", "1"], None);
    same_json(&["--json", "provision", "list"], None);
    same_text(&["provision", "list"]);
    same_text(&["provision", "show", "1"]);
    same_text(&["provision", "list", "--format", "{{id}} {{name}} {{state}}"]);

    // Refusals exit alike with the same message.
    for args in [
        &["provision", "show", "9"][..],
        &["provision", "recover", "1", "--state", "APPLYING"],
        &["provision", "delete", "1"],
        &["provider", "delete", "2"],
        &["driver", "show", "nope"],
    ] {
        let (l, r) = both(args, None);
        assert_eq!(l.code(), 1, "{args:?}");
        assert_eq!(l.stderr(), r.stderr(), "{args:?}");
    }
    let bad = json!({"oneform_hosts": "many"}).to_string();
    let (l, r) = both(&["--json", "provision", "validate", "sim", "--values", "-"], Some(&bad));
    assert_eq!((l.code(), l.json()), (1, r.json()), "field errors come back as they were");

    assert!(!remote.data_dir().exists(), "nothing ran on the client's own data");
    for text in [r.stdout(), server.home.run(&["--json", "provider", "list"]).stdout()] {
        assert!(!text.contains("canary-remote-7"), "a secret was served: {text}");
    }
    drop(server);
    local_sim.stop();
}

#[test]
fn a_lifecycle_runs_over_the_server_with_progress_and_exit_codes() {
    let server = Served::start();
    let client = server.client("oneadmin", "pw");
    let sim_state = server.home.tmp.path().join("onesim.json");
    client.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&sim_values())).ok();
    let created = client
        .run_with_stdin(
            &["--json", "provision", "create", "sim", "--values", "-"],
            Some(&json!({"oneform_hosts": 1}).to_string()),
        )
        .ok();
    let p = created.json();
    let during = objects(&sim_state);
    assert!(during.iter().any(|n| n.starts_with("clusters:Sim (provision_1)")), "{during:?}");
    let before: Vec<String> =
        during.into_iter().filter(|n| !n.contains("(provision_1)") && !n.starts_with("hosts:")).collect();
    assert_eq!((p["id"].as_i64(), p["state"].as_str()), (Some(1), Some("RUNNING")));
    assert!(created.stderr().is_empty(), "--json keeps stderr quiet: {}", created.stderr());

    let up = client.run(&["provision", "add-host", "1", "--amount", "2"]).ok();
    assert_eq!(up.stdout(), "provision 1 is RUNNING\n");
    assert!(up.stderr().contains("[provision 1] RUNNING → SCALING"), "{}", up.stderr());
    let hosts = |p: &Value| p["one_objects"]["hosts"].as_array().unwrap().len();
    assert_eq!(hosts(&client.run(&["--json", "provision", "show", "1"]).ok().json()), 3);
    let down = client.run(&["--json", "provision", "del-host", "1", "--amount", "1"]).ok().json();
    assert_eq!((down["state"].as_str(), hosts(&down)), (Some("RUNNING"), 2));

    let logs = client.run(&["provision", "logs", "1", "--all"]).ok().stdout();
    assert!(logs.contains("[info]") && logs.contains("State changed from SCALING to INIT"), "{logs}");

    let gone = client.run(&["provision", "deprovision", "1"]).ok();
    assert_eq!(gone.stdout(), "provision 1 is DONE\n");
    assert!(gone.stderr().contains("DEPROVISIONING → DONE"), "{}", gone.stderr());
    assert_eq!(objects(&sim_state), before, "OpenNebula holds nothing of it");
    let tf: Vec<String> = server
        .home
        .calls()
        .iter()
        .filter(|c| c["tool"] == "terraform")
        .map(|c| c["argv"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tf.last().map(String::as_str), Some("destroy"), "{tf:?}");
    assert!(client.run(&["provision", "list"]).ok().stdout().lines().count() == 1, "DONE ones are hidden");
    client.run(&["provision", "delete", "1"]).ok();
    client.run(&["provision", "show", "1"]).fails_with("provision 1 does not exist");
}

#[test]
fn credentials_permissions_busy_and_local_only_commands_are_refused_clearly() {
    let server = Served::start();
    server.client("oneadmin", "wrong").run(&["provider", "list"]).fails_with("Invalid credentials");
    let mut nobody = server.client("x", "y");
    nobody.env.retain(|(k, _)| !k.starts_with("ONEFORM_USER") && !k.starts_with("ONEFORM_PASSWORD"));
    let none = nobody.run(&["provider", "list"]);
    for name in ["no credentials for the formwork server", "ONEFORM_USER", "ONEFORM_PASSWORD", "ONE_AUTH"] {
        assert!(none.stderr().contains(name), "{}", none.stderr());
    }
    assert_eq!(none.code(), 1);
    let alice = server.client("alice", "apw");
    alice.run(&["provider", "list"]).ok();
    alice
        .run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&sim_values()))
        .fails_with("user 'alice' is not in the oneadmin group");

    let admin = server.client("oneadmin", "pw");
    admin.run(&["provision", "resume"]).fails_with("does not run through a server");
    admin.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&sim_values())).ok();
    server.home.scenario(json!({"hang_apply": true}));
    let detached = admin.run_with_stdin(
        &["provision", "create", "sim", "--detach", "--values", "-"],
        Some(&json!({"oneform_hosts": 1}).to_string()),
    );
    assert!(detached.ok().stdout().starts_with("ID: 1\n"));
    // The detached create may still be queued for an instant: then retry is refused by state.
    let busy = (0..100)
        .map(|_| admin.run(&["provision", "retry", "1"]))
        .find(|run| {
            assert!(run.code() == 3 || run.stderr().contains("can only be"), "not busy, not refused: {}", run.stderr());
            run.code() == 3
        })
        .expect("the provision is busy while its apply hangs");
    assert!(busy.stderr().contains("provision 1 is busy: operation"), "{}", busy.stderr());
    let shown = admin.run(&["provision", "show", "1"]).ok().stdout();
    assert!(shown.contains("OPERATION") && shown.contains("(create) running"), "{shown}");
    admin.run(&["provision", "cancel", "1"]).ok();
    let url = server.stop();
    let down = admin.run(&["provision", "list"]);
    assert_eq!(down.code(), 1);
    let expected = format!("cannot reach the formwork server at {url}: ");
    assert!(
        down.stderr().contains(&expected) && down.stderr().contains("is `formwork serve` running?"),
        "{}",
        down.stderr()
    );
}
