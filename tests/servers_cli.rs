//! `formwork servers` and `formwork servers forget` on this machine's database: a server whose
//! Terraform run never recorded its end is shown with the provision waiting for it, and an admin
//! can give up on it once its lease ended (never while it lives); the same through a server
//! (`--server`: `GET` and `DELETE /api/v1/servers`), for admins only. The database is SQLite
//! here; the store behaves the same on PostgreSQL (the store suite runs on both).

mod common;

use std::time::Duration;

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use formwork::engine::Params;
use formwork::store::{Begun, NewServer, NewToolRun, Owner, Store};
use serde_json::{Value, json};

fn server(id: &str) -> NewServer {
    NewServer {
        id: id.into(),
        host: "elsewhere".into(),
        pid: 4242,
        role: "all".into(),
        version: "test".into(),
        address: String::new(),
        started_time: 1,
    }
}

/// A home whose database has a live server, and a gone one whose Terraform run on provision
/// `id` never recorded its end; returns the store and `id`.
fn with_an_unfinished_run(home: &Home) -> (Store, i64) {
    home.run(&["provider", "list"]).ok();
    let store = Store::open(&home.data_dir().join("formwork.db")).unwrap();
    store.register_server(&server("live/1:1/0"), Duration::from_secs(600)).unwrap();
    store.register_server(&server("gone/2:2/0"), Duration::from_millis(1)).unwrap();
    // A command that ended, owning nothing: no server to show.
    store.register_server(&NewServer { role: "cli".into(), ..server("cmd/3:3/0") }, Duration::from_millis(1)).unwrap();
    // A server that stopped a moment ago, owning nothing: shown for a while.
    store.register_server(&server("stopped/4:4/0"), Duration::from_millis(1)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let provider = store.insert_provider("sim", "sim", &json!({"connection": {}}), 1).unwrap();
    let body = serde_json::from_value(json!({"name": "p"})).unwrap();
    let id = store.insert_provision("p", "sim", provider, &body, 2).unwrap();
    let gone = Owner { pid: 2, token: "gone/2:2/0".into() };
    let op = store.begin_operation(id, "create", &Params::None, None, &gone, 3).unwrap();
    let run = NewToolRun {
        host: "elsewhere".into(),
        guard: "77:7".into(),
        state_path: "/work/1/terraform/terraform.tfstate".into(),
        left_path: "/data/left-states/provision-1-guard-77-7.sealed".into(),
    };
    assert_eq!(store.begin_tool_run(id, store.operation(op).unwrap().fence(), Some(run), 4).unwrap(), Begun::Started);
    (store, id)
}

#[test]
fn a_gone_servers_unfinished_run_is_shown_and_forgotten_only_once_its_lease_ended() {
    let home = Home::with_fakes();
    let (store, id) = with_an_unfinished_run(&home);

    let listed = home.run(&["servers"]);
    assert_eq!(listed.code(), 0, "{}", listed.stderr());
    let text = listed.stdout();
    assert!(text.contains("gone/2:2/0") && text.contains(&format!("{id} (state not saved)")), "{text}");
    assert!(text.contains("formwork servers forget"), "the way out is named: {text}");
    assert!(text.contains("stopped/4:4/0") && !text.contains("cmd/3:3/0"), "{text}");
    let json: Value = serde_json::from_str(&home.run(&["servers", "--json"]).stdout()).unwrap();
    let gone = json.as_array().unwrap().iter().find(|s| s["id"] == "gone/2:2/0").expect("the gone server is listed");
    assert_eq!(gone["unsaved"], json!([id]));
    assert_eq!(gone["alive"], false);

    // A live server is never forgotten; an unknown one is named as such. Nothing changes.
    let refused = home.run(&["servers", "forget", "live/1:1/0"]);
    assert_eq!(refused.code(), 1, "{}", refused.stdout());
    assert!(refused.stderr().contains("is alive"), "{}", refused.stderr());
    let unknown = home.run(&["servers", "forget", "nobody"]);
    assert_eq!(unknown.code(), 1);
    assert!(unknown.stderr().contains("no server nobody"), "{}", unknown.stderr());
    assert_eq!(store.tool_runs().unwrap().len(), 1, "the mark stands");

    let forgot = home.run(&["servers", "forget", "gone/2:2/0"]);
    assert_eq!(forgot.code(), 0, "{}", forgot.stderr());
    assert!(forgot.stdout().contains(&format!("Provision {id} no longer waits")), "{}", forgot.stdout());
    assert!(forgot.stdout().contains("on elsewhere, its state may be in /data/left-states/"), "{}", forgot.stdout());
    assert_eq!(store.tool_runs().unwrap(), vec![], "the mark is gone");
    assert!(store.servers().unwrap().iter().all(|s| s.server.id != "gone/2:2/0"), "and the server");
    assert!(store.servers().unwrap().iter().any(|s| s.server.id == "live/1:1/0"), "the live one stays");
}

#[test]
fn servers_are_listed_and_forgotten_through_a_server_by_admins_only() {
    let mut home = Home::with_fakes();
    let sim = Onesim::with_faults(&home.tmp.path().join("onesim.json"), &["--user", "alice:apw"]);
    use_endpoint(&mut home, &sim);
    let (store, id) = with_an_unfinished_run(&home);
    let server = common::server::Server::start(&home);
    let client = |user: &str, password: &str| {
        let mut client = Home::with_builtin();
        client.env.push(("ONEFORM_URL".into(), format!("http://{}", server.addr)));
        client.env.push(("ONEFORM_USER".into(), user.into()));
        client.env.push(("ONEFORM_PASSWORD".into(), password.into()));
        client
    };
    let (admin, alice) = (client("oneadmin", "pw"), client("alice", "apw"));

    let listed = admin.run(&["--json", "servers"]);
    assert_eq!(listed.code(), 0, "{}", listed.stderr());
    let servers: Value = serde_json::from_str(&listed.stdout()).unwrap();
    let answering = servers.as_array().unwrap().iter().find(|s| s["this"] == true).expect("the answering server");
    assert_eq!(answering["role"], "all");
    let gone = servers.as_array().unwrap().iter().find(|s| s["id"] == "gone/2:2/0").expect("the gone server");
    assert_eq!(gone["unsaved"], json!([id]));
    assert!(admin.run(&["servers"]).stdout().contains(&format!("{id} (state not saved)")));

    let denied = alice.run(&["servers", "forget", "gone/2:2/0"]);
    assert_ne!(denied.code(), 0, "{}", denied.stdout());
    assert_eq!(alice.run(&["servers"]).code(), 1, "listing is an admin's too");
    let refused = admin.run(&["servers", "forget", "live/1:1/0"]);
    assert_eq!(refused.code(), 1);
    assert!(refused.stderr().contains("is alive"), "{}", refused.stderr());
    assert_eq!(store.tool_runs().unwrap().len(), 1, "nothing changed");

    let forgot = admin.run(&["--json", "servers", "forget", "gone/2:2/0"]);
    assert_eq!(forgot.code(), 0, "{}", forgot.stderr());
    let forgotten: Value = serde_json::from_str(&forgot.stdout()).unwrap();
    assert_eq!(forgotten["runs"][0]["provision"], json!(id), "{forgotten:#}");
    assert_eq!(forgotten["runs"][0]["host"], "elsewhere");
    assert_eq!(store.tool_runs().unwrap(), vec![]);
    drop(server);
}
