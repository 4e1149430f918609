//! `formwork serve` stopped (SIGTERM, as systemd and an upgrade stop it) while a tool runs: the
//! tool is told to stop and the server waits for it before exiting, so a Terraform writing its
//! last state is not cut short by the service manager killing what outlives the server. The
//! next start resumes the operation. Fake tools; no OpenNebula endpoint (ONE_AUTH's user).

// Tests spawn formwork and signal it.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Home;
use common::server::Server;
use serde_json::json;

const PASSWORD: &str = "stop-pw-7";

#[test]
fn a_stopped_server_waits_for_its_tools_to_stop_then_the_next_start_resumes() {
    let mut home = Home::with_fakes();
    let auth = home.tmp.path().join("one_auth");
    std::fs::write(&auth, format!("oneadmin:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    home.env.push(("ONE_AUTH".into(), auth.display().to_string()));
    // Terraform's apply blocks until told to stop, then takes 2 s to finish, as one writing
    // its state does.
    home.scenario(json!({"hang_apply": true, "slow_stop": 2}));
    let stopped = home.tmp.path().join("fake-stopped");

    let mut server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);
    let provider = admin
        .post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": "t"}}))
        .expect(201)
        .json();
    let provider: i64 = provider["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap();
    let body = json!({
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
        "user_inputs_values": {"oneform_hosts": 1},
    });
    admin.post("/api/v1/provisions", &body).expect(201);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.calls().iter().any(|c| c["argv"][0] == "apply") {
        assert!(Instant::now() < deadline, "apply never started:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let status = server.terminate(Duration::from_secs(60));
    assert!(status.success(), "a graceful stop exits 0: {status:?}\n{}", server.log());
    assert!(stopped.exists(), "the server exited before its Terraform finished stopping:\n{}", server.log());

    home.scenario(json!({}));
    let server = Server::start(&home);
    let admin = server.client("oneadmin", PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = admin.get("/api/v1/provisions/1").expect(200).json();
        let state = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].as_str().unwrap().to_owned();
        if state == "RUNNING" {
            break;
        }
        assert!(!state.ends_with("_FAILURE"), "the stopped operation failed instead of resuming: {state}");
        assert!(Instant::now() < deadline, "still {state} a minute after the restart:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
