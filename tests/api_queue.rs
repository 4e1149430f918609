//! The server's operation queue: 50 provisions created at once over HTTP with
//! `FORMWORK_MAX_OPERATIONS=4` all reach RUNNING, each with its tools run exactly once, and never
//! more than 4 operations work at the same moment. The limit is observed from outside the
//! server: the fake `terraform` and `ansible-playbook` are wrapped in a script that writes a
//! timestamped start and end line (with the provision's working directory) for every call, and
//! each provision's span runs from its first tool call's start to its last one's end — a span is
//! inside its operation, so more than 4 overlapping spans means more than 4 operations ran.
//! No OpenNebula endpoint: the server checks credentials against its ONE_AUTH file.

// Tests spawn formwork and write executable wrappers.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Home;
use common::check::{cloud_hosts, tool_counts};
use common::server::{Client, Server};
use serde_json::{Value, json};

const PROVISIONS: usize = 50;
const LIMIT: usize = 4;
const PASSWORD: &str = "queue-pw-31";

/// Writes `<home>/wrappers/<name>`: records `start|end <ns> <cwd>` in `<home>/tool-spans` around
/// the real fake, which it runs after a short pause so that spans last long enough to overlap.
fn wrapper(home: &Home, name: &str) -> PathBuf {
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes").join(name);
    let dir = home.tmp.path().join("wrappers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let spans = home.tmp.path().join("tool-spans");
    let script = format!(
        "#!/bin/sh\necho \"start $(date +%s%N) $PWD\" >> '{spans}'\nsleep 0.1\n'{fake}' \"$@\"\nrc=$?\necho \"end $(date +%s%N) $PWD\" >> '{spans}'\nexit $rc\n",
        spans = spans.display(),
        fake = fake.display(),
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Each provision's span (first start, last end), in nanoseconds, from the wrappers' records.
fn spans(home: &Home) -> BTreeMap<i64, (u128, u128)> {
    let text = std::fs::read_to_string(home.tmp.path().join("tool-spans")).unwrap();
    let mut spans: BTreeMap<i64, (u128, u128)> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (kind, time, cwd) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let time: u128 = time.parse().unwrap_or_else(|_| panic!("a span line {line:?}"));
        let id: i64 = cwd
            .split("/work/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("a tool ran outside a provision's working directory: {line:?}"));
        let span = spans.entry(id).or_insert((u128::MAX, 0));
        match kind {
            "start" => span.0 = span.0.min(time),
            "end" => span.1 = span.1.max(time),
            _ => panic!("a span line {line:?}"),
        }
    }
    spans
}

/// The largest number of spans open at one instant.
fn max_overlap(spans: &BTreeMap<i64, (u128, u128)>) -> usize {
    let mut edges: Vec<(u128, i32)> = spans.values().flat_map(|(s, e)| [(*s, 1), (*e, -1)]).collect();
    // At equal times an end comes before a start: touching spans do not overlap.
    edges.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        open += step;
        most = most.max(open);
    }
    most as usize
}

#[test]
fn overlap_counts_open_spans_at_one_instant() {
    let spans = |list: &[(u128, u128)]| -> BTreeMap<i64, (u128, u128)> { (0..).zip(list.iter().copied()).collect() };
    assert_eq!(max_overlap(&spans(&[(0, 10), (10, 20), (20, 30)])), 1);
    assert_eq!(max_overlap(&spans(&[(0, 10), (5, 20), (6, 9), (8, 30)])), 4);
    assert_eq!(max_overlap(&spans(&[(0, 10), (11, 20)])), 1);
}

#[test]
fn fifty_creates_at_once_all_run_and_never_more_than_four_work_together() {
    let mut home = Home::with_builtin();
    let terraform = wrapper(&home, "terraform");
    let ansible = wrapper(&home, "ansible-playbook");
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, format!("oneadmin:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    home.env.extend([
        ("FORMWORK_TERRAFORM".into(), terraform.display().to_string()),
        ("FORMWORK_ANSIBLE_PLAYBOOK".into(), ansible.display().to_string()),
        ("ONE_AUTH".into(), auth.display().to_string()),
        ("FORMWORK_MAX_OPERATIONS".into(), LIMIT.to_string()),
    ]);
    let server = Server::start(&home);
    // Without an OpenNebula endpoint only ONE_AUTH's credentials are accepted.
    server.client("oneadmin", "wrong").get("/api/v1/provisions").error(401);
    server.client("alice", PASSWORD).get("/api/v1/provisions").error(401);
    let admin = server.client("oneadmin", PASSWORD);
    let provider = admin
        .post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": "t"}}))
        .expect(201)
        .json();
    let provider: i64 = provider["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap();

    // All at once, one connection each.
    let posts: Vec<std::thread::JoinHandle<(u16, Value)>> = (0..PROVISIONS)
        .map(|i| {
            let client: Client = admin.clone();
            std::thread::spawn(move || {
                let body = json!({
                    "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
                    "name": format!("q{i}"), "user_inputs_values": {"oneform_hosts": 1},
                });
                let response = client.post("/api/v1/provisions", &body);
                (response.status, serde_json::from_slice(&response.body).unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut ids = Vec::new();
    for post in posts {
        let (status, doc) = post.join().unwrap();
        assert_eq!(status, 201, "a create was refused: {doc}");
        let body = &doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"];
        assert_eq!(body["state"], "PENDING", "{doc}");
        ids.push(doc["DOCUMENT"]["ID"].as_str().unwrap().parse::<i64>().unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PROVISIONS, "every create got its own id");

    // Sample the states while the queue drains: never more than LIMIT in a working state.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut most_working = 0;
    let mut most_queued = 0;
    let mut first_sample = true;
    loop {
        let list = admin.get("/api/v1/provisions?all=true").expect(200).json();
        let states: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(states.len(), PROVISIONS);
        assert!(!states.iter().any(|s| s.ends_with("_FAILURE")), "a provision failed: {states:?}\n{}", server.log());
        let working = states.iter().filter(|s| !matches!(s.as_str(), "PENDING" | "RUNNING")).count();
        most_working = most_working.max(working);
        assert!(working <= LIMIT, "{working} provisions in working states at once: {states:?}");
        // The server's own gauges agree.
        let metrics = server.anonymous().get("/metrics").expect(200).text();
        let gauge = |name: &str| -> usize {
            let line = metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name}: {metrics}"));
            line[name.len() + 1..].trim().parse().unwrap()
        };
        let (slots, queued) = (gauge("formwork_operations_running"), gauge("formwork_queue_length"));
        assert!(slots <= LIMIT, "/metrics: {slots} operations hold a slot (limit {LIMIT})");
        most_queued = most_queued.max(queued);
        let running = states.iter().filter(|s| *s == "RUNNING").count();
        // The creates were answered before their work: 50 queued operations take far longer.
        assert!(!first_sample || running < PROVISIONS, "all {running} were RUNNING when the last create was answered");
        first_sample = false;
        if running == PROVISIONS {
            break;
        }
        assert!(Instant::now() < deadline, "not all RUNNING after 5 minutes: {states:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let spans = spans(&home);
    assert_eq!(spans.keys().copied().collect::<Vec<i64>>(), ids, "every provision ran its tools");
    let overlap = max_overlap(&spans);
    assert!(overlap <= LIMIT, "{overlap} operations ran tools at the same time (limit {LIMIT})");
    assert!(overlap >= 2, "operations never overlapped ({overlap}): the queue ran them one by one");
    assert!(most_working >= 1, "no working state was ever seen");
    assert!(most_queued >= 1, "/metrics never showed an operation waiting for a slot");
    let each = |n: usize| -> BTreeMap<String, usize> {
        [("ansible-playbook", n), ("terraform apply", n), ("terraform init", n), ("terraform plan", n)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    };
    assert_eq!(tool_counts(&home), each(PROVISIONS), "each provision ran each tool once");
    assert_eq!(cloud_hosts(&home).len(), PROVISIONS, "one host each in the cloud");
    for id in &ids {
        let doc = admin.get(&format!("/api/v1/provisions/{id}")).expect(200).json();
        let hosts = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["one_objects"]["hosts"].as_array().unwrap().len();
        assert_eq!(hosts, 1, "provision {id}");
    }
}
