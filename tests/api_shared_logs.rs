//! Two `formwork serve` processes on one PostgreSQL database, each with its own data dir (the
//! same key file): a provision's log is in the database, so server B serves the log of an
//! operation server A ran — its pages, its polls and its live Server-Sent Events stream — line
//! for line as A does, and B's data dir holds no copy of it.
//!
//! Only A runs operations: which server owns an operation across servers is not what this tests.

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::postgres::{drop_database, fresh_database};
use common::server::{Client, Server};
use serde_json::{Value, json};

/// A home with the fake tools, onesim as OpenNebula, the database `url` and the key file `key`.
fn home(sim: &Onesim, url: &str, key: &Path) -> Home {
    let mut home = Home::with_fakes();
    use_endpoint(&mut home, sim);
    home.env.push(("FORMWORK_DATABASE".into(), url.to_string()));
    home.env.push(("FORMWORK_SECRET_KEY_FILE".into(), key.display().to_string()));
    home
}

fn texts(page: &Value) -> Vec<String> {
    let lines = page["lines"].as_array().unwrap_or_else(|| panic!("no lines: {page}"));
    lines.iter().map(|l| l["text"].as_str().unwrap().to_string()).collect()
}

fn state(client: &Client, id: i64) -> (String, bool) {
    let doc = client.get(&format!("/api/v1/provisions/{id}")).expect(200).json();
    let state = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].as_str().unwrap_or_default().to_string();
    let operations = client.get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
    (state, operations[0]["status"] != "running")
}

/// Waits (a minute at most) until provision `id` is RUNNING with no operation running.
fn wait_running(client: &Client, id: i64, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (now, settled) = state(client, id);
        if now == "RUNNING" && settled {
            return;
        }
        assert!(!now.ends_with("_FAILURE"), "provision {id} failed in {now}; server log:\n{}", server.log());
        assert!(Instant::now() < deadline, "provision {id} is {now} after a minute");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_log_written_on_one_server_is_served_and_streamed_by_another() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = Onesim::start(&tmp.path().join("onesim.json"));
    let url = fresh_database();
    let key = tmp.path().join("secret.key");
    let (home_a, home_b) = (home(&sim, &url, &key), home(&sim, &url, &key));
    let server_a = Server::start(&home_a);
    let server_b = Server::start(&home_b);
    let (a, b) = (server_a.client("oneadmin", "pw"), server_b.client("oneadmin", "pw"));

    let provider = json!({"driver": "sim", "name": "sim-a", "connection_values": {"api_token": "t"}});
    let provider = a.post("/api/v1/providers", &provider).expect(201).json()["DOCUMENT"]["ID"].clone();
    let request = json!({
        "driver": "sim", "deployment_type": "sim_cluster", "name": "shared",
        "provider_id": provider.as_str().unwrap().parse::<i64>().unwrap(),
        "user_inputs_values": {"oneform_hosts": 1},
    });
    let doc = a.post("/api/v1/provisions", &request).expect(201).json();
    let id: i64 = doc["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap();
    wait_running(&a, id, &server_a);

    // The whole log, a page and a poll from the start: B answers what A answers.
    let path = format!("/api/v1/provisions/{id}/logs");
    let all_a = texts(&a.get(&format!("{path}?all=true")).expect(200).json());
    let all_b = texts(&b.get(&format!("{path}?all=true")).expect(200).json());
    assert!(all_a.iter().any(|l| l.ends_with("State changed from CONFIGURING_PROVISION to RUNNING")), "{all_a:#?}");
    assert_eq!(all_b, all_a);
    let file = std::fs::read_to_string(home_a.data_dir().join(format!("logs/{id}.log"))).unwrap();
    assert_eq!(all_a, file.lines().collect::<Vec<_>>(), "A's file is the stored log");
    assert!(!home_b.data_dir().join(format!("logs/{id}.log")).exists(), "B serves it from the database");
    let page_b = b.get(&format!("{path}?page=1&per_page=3")).expect(200).json();
    assert_eq!(texts(&page_b), all_a[all_a.len() - 3..]);
    let (poll_a, poll_b) = (
        a.get(&format!("{path}/poll?pos=0")).expect(200).json(),
        b.get(&format!("{path}/poll?pos=0")).expect(200).json(),
    );
    assert_eq!(poll_b, poll_a);
    let end = b.get(&format!("{path}/poll")).expect(200).json()["pos"].clone();
    assert_eq!(end, file.len() as u64, "positions are the same bytes on both servers");

    // B's stream replays the log from the start, then follows what A writes while it scales.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut replay = b.events(&format!("{path}/stream?pos=0"));
    assert_eq!(replay.status, 200);
    for expected in &all_a {
        let event = replay.next(deadline).expect("the replay ended early");
        let line: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(line["text"], expected.as_str());
    }
    drop(replay);
    let mut live = b.events(&format!("{path}/stream?pos={end}"));
    assert_eq!(live.status, 200);
    a.post(&format!("/api/v1/provisions/{id}/add-host"), &json!({"amount": 1})).expect(204);
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t.contains("to RUNNING")) {
        let event = live.next(deadline).expect("B's stream ended before A's scale finished");
        let line: Value = serde_json::from_str(&event.data).unwrap();
        seen.push(line["text"].as_str().unwrap().to_string());
    }
    assert!(seen[0].ends_with("State changed from RUNNING to SCALING"), "{seen:#?}");
    wait_running(&a, id, &server_a);
    let file = std::fs::read_to_string(home_a.data_dir().join(format!("logs/{id}.log"))).unwrap();
    let written: Vec<&str> = file.lines().skip(all_a.len()).collect();
    assert_eq!(seen, written[..seen.len()], "B streamed what A wrote, in order");
    drop(live);
    drop((server_a, server_b));
    drop_database(&url);
}
