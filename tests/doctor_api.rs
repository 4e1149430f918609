//! `GET /health?deep=true` on `formwork serve` with the real Terraform and ansible-playbook and
//! onesim (oneadmin, and `alice`, a plain user): plain `/health` stays open and unchanged; the
//! deep one needs credentials (401), the oneadmin group (403), and answers `formwork doctor`'s
//! report, 200 when every check passes and 503 with the failing check when one fails.

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::Server;
use serde_json::json;

const ALICE_PW: &str = "alice-pw-71c";

#[test]
fn deep_health_is_the_doctors_report_for_admins_only() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
    let mut home = Home::with_builtin();
    home.env.push(("FORMWORK_TERRAFORM".into(), tools.join("bin/terraform").display().to_string()));
    home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), tools.join("venv/bin/ansible-playbook").display().to_string()));
    let sim = Onesim::with_faults(&home.tmp.path().join("onesim.json"), &["--user", &format!("alice:{ALICE_PW}")]);
    use_endpoint(&mut home, &sim);
    let server = Server::start(&home);
    let (anonymous, admin) = (server.anonymous(), server.client("oneadmin", "pw"));

    assert_eq!(anonymous.get("/health").expect(200).json(), json!({"status": "ok"}), "plain /health is unchanged");
    assert_eq!(anonymous.get("/health?deep=false").expect(200).json(), json!({"status": "ok"}));
    anonymous.get("/health?deep=true").error(401);
    server.client("oneadmin", "wrong").get("/health?deep=true").error(401);
    server.client("alice", ALICE_PW).get("/health?deep=true").error(403);
    let odd = admin.get("/health?deep=yes").error(400);
    assert!(odd["message"].as_str().unwrap().contains("deep=true"), "{odd}");

    let report = admin.get("/health?deep=true").expect(200).json();
    assert_eq!(report["ok"], true, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["terraform", "ansible", "opennebula", "data_dir", "secret_key", "database", "drivers", "plugin_cache", "disk"]
    );
    for check in checks.iter().filter(|c| c["name"] != "disk") {
        assert_eq!(check["status"], "ok", "{report:#}");
    }
    let one = checks[2]["detail"].as_str().unwrap();
    assert!(one.contains(&sim.url), "the server's own OpenNebula: {one}");

    // A failing check: 503 with the same report, naming it and its fix.
    let data = home.data_dir();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let failing = admin.get("/health?deep=true").expect(503).json();
    assert_eq!(failing["ok"], false);
    let data_dir = &failing["checks"][3];
    assert_eq!((&data_dir["name"], &data_dir["status"]), (&json!("data_dir"), &json!("fail")), "{failing:#}");
    assert_eq!(data_dir["fix"], format!("chmod 700 {}", data.display()));
    assert_eq!(anonymous.get("/health").expect(200).json(), json!({"status": "ok"}), "plain /health does not run it");
    drop(server);
    sim.stop();
}
