//! What the server's acknowledgement means: every request it answered 2xx is a durable row that
//! runs, or is cancelled, exactly once, whatever happens to the server in between. With one
//! operation slot (`FORMWORK_MAX_OPERATIONS=1`) and the fake tools, a hanging scale-up holds the
//! slot while an undeploy and another scale-up wait in the queue; the server is killed (-9) and
//! started again, or the waiting undeploy is cancelled. No OpenNebula endpoint: credentials are
//! checked against the ONE_AUTH file.

// Tests spawn formwork and write the credentials file.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Home;
use common::check::cloud_hosts;
use common::server::{Client, Server};
use serde_json::{Value, json};

const PASSWORD: &str = "requests-pw-7";

/// A home with the fake tools, one operation slot and ONE_AUTH credentials.
fn home() -> Home {
    let mut home = Home::with_fakes();
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, format!("oneadmin:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    home.env.extend([("ONE_AUTH".into(), auth.display().to_string()), ("FORMWORK_MAX_OPERATIONS".into(), "1".into())]);
    home
}

fn id_of(doc: &Value) -> i64 {
    doc["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap()
}

fn body(admin: &Client, id: i64) -> Value {
    admin.get(&format!("/api/v1/provisions/{id}")).expect(200).json()["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"].clone()
}

fn operations(admin: &Client, id: i64) -> Vec<Value> {
    admin.get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json().as_array().unwrap().clone()
}

/// Polls until provision `id` is in `state` with no operation running or waiting (bounded).
fn wait_settled(server: &Server, admin: &Client, id: i64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = body(admin, id);
        let settled = operations(admin, id).iter().all(|op| op["status"] != "running");
        if now["state"] == state && settled {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "provision {id} is {} (operations {:?}), not settled in {state}\n{}",
            now["state"],
            operations(admin, id),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many times the fake tools recorded `terraform <first>`.
fn terraform_calls(home: &Home, first: &str) -> usize {
    home.calls().iter().filter(|c| c["tool"] == "terraform" && c["argv"][0] == first).count()
}

/// Waits (bounded) until the fake tools recorded `terraform <first>` at least `n` times.
fn wait_for_terraform(home: &Home, first: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while terraform_calls(home, first) < n {
        assert!(Instant::now() < deadline, "terraform {first} was not called {n} times: {:?}", home.calls());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three RUNNING provisions of one host each; their ids.
fn three_running(server: &Server, admin: &Client) -> Vec<i64> {
    let provider = admin
        .post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": "t"}}))
        .expect(201)
        .json();
    let provider = id_of(&provider);
    let ids: Vec<i64> = (0..3)
        .map(|i| {
            let request = json!({
                "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
                "name": format!("r{i}"), "user_inputs_values": {"oneform_hosts": 1},
            });
            id_of(&admin.post("/api/v1/provisions", &request).expect(201).json())
        })
        .collect();
    for id in &ids {
        wait_settled(server, admin, *id, "RUNNING");
    }
    ids
}

/// Provision 1's scale-up hangs in `terraform apply`, holding the only slot; provision 2's
/// undeploy and provision 3's scale-up are acknowledged and wait in the queue.
fn queue_behind_a_hanging_apply(home: &Home, admin: &Client, ids: &[i64]) {
    home.scenario(json!({"hang_apply": true}));
    let applies = terraform_calls(home, "apply");
    admin.post(&format!("/api/v1/provisions/{}/add-host", ids[0]), &json!({})).expect(204);
    wait_for_terraform(home, "apply", applies + 1);
    admin.post(&format!("/api/v1/provisions/{}/undeploy", ids[1]), &json!({})).expect(204);
    admin.post(&format!("/api/v1/provisions/{}/add-host", ids[2]), &json!({})).expect(204);
    for id in &ids[1..] {
        let waiting = operations(admin, *id);
        assert_eq!((waiting[0]["status"].as_str(), waiting[0]["queued"].as_bool()), (Some("running"), Some(true)));
    }
}

/// The kinds and end statuses of a provision's operations, oldest first.
fn ended(admin: &Client, id: i64) -> Vec<(String, String)> {
    let mut ops: Vec<(i64, String, String)> = operations(admin, id)
        .iter()
        .map(|op| {
            (op["id"].as_i64().unwrap(), op["kind"].as_str().unwrap().into(), op["status"].as_str().unwrap().into())
        })
        .collect();
    ops.sort();
    ops.into_iter().map(|(_, kind, status)| (kind, status)).collect()
}

#[test]
fn acknowledged_requests_waiting_in_the_queue_survive_a_kill_9_of_the_server() {
    let home = home();
    let mut server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);
    let ids = three_running(&server, &admin);
    queue_behind_a_hanging_apply(&home, &admin, &ids);

    server.kill9();
    home.scenario(json!({}));
    let server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);

    let first = wait_settled(&server, &admin, ids[0], "RUNNING");
    assert_eq!(first["user_inputs_values"]["oneform_hosts"], 2, "the interrupted scale-up was resumed");
    wait_settled(&server, &admin, ids[1], "DONE");
    let third = wait_settled(&server, &admin, ids[2], "RUNNING");
    assert_eq!(third["user_inputs_values"]["oneform_hosts"], 2, "the queued scale-up ran after the restart");
    assert_eq!(cloud_hosts(&home).len(), 4, "2 + 0 + 2 hosts in the cloud");
    let want = |kind: &str| vec![("create".to_string(), "succeeded".to_string()), (kind.into(), "succeeded".into())];
    assert_eq!(ended(&admin, ids[0]), want("scale-up"), "each request ended once");
    assert_eq!(ended(&admin, ids[1]), want("deprovision"));
    assert_eq!(ended(&admin, ids[2]), want("scale-up"));
}

#[test]
fn a_queued_operation_cancelled_runs_nothing() {
    let home = home();
    let server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);
    let ids = three_running(&server, &admin);
    queue_behind_a_hanging_apply(&home, &admin, &ids);
    let destroys_before = terraform_calls(&home, "destroy");

    admin.post(&format!("/api/v1/provisions/{}/cancel", ids[1]), &json!({})).expect(204);
    let cancelled = &operations(&admin, ids[1])[0];
    assert_eq!(cancelled["status"], "cancelled", "closed at once: {cancelled}");
    // Free the slot: the hanging scale-up is cancelled too, then the third request runs.
    home.scenario(json!({}));
    admin.post(&format!("/api/v1/provisions/{}/cancel", ids[0]), &json!({})).expect(204);
    wait_settled(&server, &admin, ids[2], "RUNNING");
    let second = wait_settled(&server, &admin, ids[1], "RUNNING");
    assert_eq!(second["user_inputs_values"]["oneform_hosts"], 1, "{second}");
    assert_eq!(terraform_calls(&home, "destroy"), destroys_before, "the cancelled undeploy ran no Terraform");
    let historic = second["historic"].as_array().map(Vec::len);
    let log = std::fs::read_to_string(home.data_dir().join(format!("logs/{}.log", ids[1]))).unwrap();
    assert!(!log.contains("DEPROVISIONING"), "a stage of the cancelled undeploy ran:\n{log}\n{historic:?}");
    assert_eq!(
        ended(&admin, ids[1]),
        vec![("create".to_string(), "succeeded".to_string()), ("deprovision".into(), "cancelled".into())]
    );
}

#[test]
fn a_deleted_provisions_id_and_log_never_come_back() {
    let home = home();
    let server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);
    let ids = three_running(&server, &admin);
    let last = *ids.iter().max().unwrap();
    admin.post(&format!("/api/v1/provisions/{last}/undeploy"), &json!({})).expect(204);
    wait_settled(&server, &admin, last, "DONE");
    admin.delete(&format!("/api/v1/provisions/{last}")).expect(204);
    let log = home.data_dir().join(format!("logs/{last}.log"));
    assert!(!log.exists(), "the deleted provision's log stayed at {}", log.display());

    let provider = body(&admin, ids[0])["provider_id"].clone();
    let request = json!({
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
        "name": "after", "user_inputs_values": {"oneform_hosts": 1},
    });
    let next = id_of(&admin.post("/api/v1/provisions", &request).expect(201).json());
    assert!(next > last, "provision id {next} handed out again after {last} was deleted");
    wait_settled(&server, &admin, next, "RUNNING");
    let lines = admin.get(&format!("/api/v1/provisions/{next}/logs")).expect(200).text();
    assert!(!lines.contains("r2"), "the new provision's log shows the deleted one's lines:\n{lines}");
}
