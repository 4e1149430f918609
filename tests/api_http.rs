//! `formwork serve` over HTTP, route by route: every route of OneForm's REST API (spec §4.2) and
//! formwork's extensions, with the fake `terraform` and `ansible-playbook` and onesim (with a
//! plain user `alice` and `ops`, a member of the oneadmin group) as OpenNebula. Each test starts
//! its own onesim and server on free ports and checks statuses, OneForm's document shapes
//! (`DOCUMENT` with string ids, `PERMISSIONS`, `PROVISION_BODY`/`PROVIDER_BODY`), error bodies
//! (`err_code`, `message`, `context` naming the field), who may see and change what, redaction,
//! logs (pages, poll, Server-Sent Events) and the service routes (OpenAPI, metrics, health).

// Tests spawn formwork and onesim.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Response, Server};
use serde_json::{Value, json};

/// The provider's API token: sensitive, so served as `__redacted__`.
const TOKEN: &str = "provider-canary-7731";
/// A sensitive provision input's value.
const SECRET: &str = "provision-canary-5150";
const ALICE_PW: &str = "alice-pw-2f9";
const OPS_PW: &str = "ops-pw-8c1";
/// oneadmin's password in onesim (`use_endpoint` writes it into ONE_AUTH).
const ADMIN_PW: &str = "pw";

/// A server with fake tools and onesim as OpenNebula; its clients by user.
struct Api {
    server: Option<Server>,
    sim: Option<Onesim>,
    home: Home,
    admin: Client,
    alice: Client,
    ops: Client,
}

impl Api {
    fn start() -> Api {
        let mut home = home_with_sensitive_input();
        let sim = Onesim::with_faults(
            &home.tmp.path().join("onesim.json"),
            &["--user", &format!("alice:{ALICE_PW}"), "--user", &format!("ops:{OPS_PW}:oneadmin")],
        );
        use_endpoint(&mut home, &sim);
        let server = Server::start(&home);
        let admin = server.client("oneadmin", ADMIN_PW);
        let alice = server.client("alice", ALICE_PW);
        let ops = server.client("ops", OPS_PW);
        Api { server: Some(server), sim: Some(sim), home, admin, alice, ops }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// A sim provider made by oneadmin; its id.
    fn provider(&self, name: &str) -> i64 {
        let body = json!({"driver": "sim", "name": name, "connection_values": {"api_token": TOKEN}});
        let doc = self.admin.post("/api/v1/providers", &body).expect(201).json();
        id_of(&doc)
    }

    /// A sim provision of `hosts` hosts on `provider`, made by oneadmin; its id (not waited for).
    fn create(&self, provider: i64, hosts: u64) -> i64 {
        let doc = self.admin.post("/api/v1/provisions", &provision_request(provider, hosts)).expect(201).json();
        id_of(&doc)
    }

    /// A RUNNING sim provision of `hosts` hosts and its provider.
    fn running(&self, hosts: u64) -> (i64, i64) {
        let provider = self.provider("sim-a");
        let id = self.create(provider, hosts);
        self.wait(id, "RUNNING");
        (provider, id)
    }

    /// oneadmin's view of provision `id`.
    fn get(&self, id: i64) -> Value {
        self.admin.get(&format!("/api/v1/provisions/{id}")).expect(200).json()
    }

    /// Polls provision `id` until its state is `state`; fails on another failure state or after
    /// a minute. Returns the `PROVISION_BODY`.
    fn wait(&self, id: i64, state: &str) -> Value {
        self.wait_for(id, state, |_| true)
    }

    /// Polls until the provision is in `state`, `also` holds for its body and no operation of
    /// it runs or waits (a failure state is final only then).
    fn wait_for(&self, id: i64, state: &str, also: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = provision_body(&self.get(id)).clone();
            let now = body["state"].as_str().unwrap_or_default().to_string();
            let operations = self.admin.get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
            let settled = operations[0]["status"] != "running";
            if now == state && also(&body) && settled {
                return body;
            }
            assert!(
                !(now.ends_with("_FAILURE") && now != state && settled),
                "provision {id} failed in {now} while waiting for {state}:\n{}\nserver log:\n{}",
                self.log(id),
                self.server().log()
            );
            assert!(Instant::now() < deadline, "provision {id} is {now}, not {state}, after a minute: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The provision's log file as formwork wrote it.
    fn log(&self, id: i64) -> String {
        std::fs::read_to_string(self.home.data_dir().join(format!("logs/{id}.log"))).unwrap_or_default()
    }

    /// `formwork <args> --json` on the same data, for comparing shapes with the CLI.
    fn cli(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.home.run(&all).ok().json()
    }

    /// A user's id in onesim, asked with their own session (`one.user.info -1`).
    fn uid(&self, user: &str, password: &str) -> i64 {
        one_user_id(&self.sim.as_ref().unwrap().url, user, password)
    }

    /// Waits (bounded) until the fake tools recorded a call of `tool` whose first argument is
    /// `first`.
    fn wait_for_call(&self, tool: &str, first: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.home.calls().iter().any(|c| c["tool"] == tool && c["argv"][0] == first) {
            assert!(Instant::now() < deadline, "{tool} {first} was never called: {:?}", self.home.calls());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

/// Formwork's built-in drivers with fake tools, the sim driver given one more input,
/// `root_password`, which is sensitive.
fn home_with_sensitive_input() -> Home {
    let mut home = Home::empty();
    home.add_driver("onprem", "onprem");
    let sim = home.add_driver("sim", "sim");
    let variables = sim.join("terraform/variables.tf");
    let mut text = std::fs::read_to_string(&variables).unwrap();
    text.push_str(
        "\nvariable \"root_password\" {\n  description = \"Password of each host's root account\"\n  type        = string\n  sensitive   = true\n  default     = \"changeme\"\n}\n",
    );
    std::fs::write(&variables, text).unwrap();
    let fakes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
    home.env.push(("FORMWORK_TERRAFORM".into(), fakes.join("terraform").display().to_string()));
    home.env.push(("FORMWORK_ANSIBLE_PLAYBOOK".into(), fakes.join("ansible-playbook").display().to_string()));
    home
}

fn provision_request(provider: i64, hosts: u64) -> Value {
    json!({
        "driver": "sim",
        "deployment_type": "sim_cluster",
        "provider_id": provider,
        "name": "api-test",
        "user_inputs_values": {"oneform_hosts": hosts, "root_password": SECRET},
    })
}

/// `DOCUMENT.ID` as a number (it is served as a string).
fn id_of(doc: &Value) -> i64 {
    let id = doc["DOCUMENT"]["ID"].as_str().unwrap_or_else(|| panic!("DOCUMENT.ID is not a string: {doc}"));
    id.parse().unwrap_or_else(|_| panic!("DOCUMENT.ID {id:?} is not a number"))
}

fn provision_body(doc: &Value) -> &Value {
    &doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]
}

fn provider_body(doc: &Value) -> &Value {
    &doc["DOCUMENT"]["TEMPLATE"]["PROVIDER_BODY"]
}

/// The ids of a list of documents.
fn ids(list: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = list.as_array().unwrap_or_else(|| panic!("not a list: {list}")).iter().map(id_of).collect();
    ids.sort();
    ids
}

/// The keys of an error's `context`.
fn context_fields(error: &Value) -> Vec<String> {
    error["context"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default()
}

/// Asserts a 400 whose context names `field`.
#[track_caller]
fn assert_names_field(response: Response, field: &str) {
    let request = response.request.clone();
    let error = response.error(400);
    let fields = context_fields(&error);
    assert!(fields.iter().any(|f| f == field), "{request}: the context should name {field:?}: {error}");
    let messages = &error["context"][field];
    assert!(
        messages.as_array().is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string)),
        "{request}: context.{field} is a list of messages: {error}"
    );
}

/// The id of `user` in the OpenNebula at `endpoint`, from `one.user.info(-1)` with their own
/// session.
fn one_user_id(endpoint: &str, user: &str, password: &str) -> i64 {
    let answer = xmlrpc(endpoint, &format!("{user}:{password}"), "one.user.info", &["<i4>-1</i4>".into()]);
    let xml = answer.replace("&lt;", "<").replace("&gt;", ">");
    let start = xml.find("<USER><ID>").unwrap_or_else(|| panic!("one.user.info for {user}: {answer}")) + 10;
    xml[start..].split('<').next().unwrap().parse().unwrap()
}

/// Calls `method` on the OpenNebula at `endpoint` with `session` and the given XML-RPC values
/// (`<i4>1</i4>`, `<string>x</string>`…); returns the answer's text, which must be a success.
fn xmlrpc(endpoint: &str, session: &str, method: &str, params: &[String]) -> String {
    let url = endpoint.strip_prefix("http://").unwrap();
    let (addr, path) = url.split_once('/').unwrap();
    let mut call = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>\
         <param><value><string>{session}</string></value></param>"
    );
    for param in params {
        call.push_str(&format!("<param><value>{param}</value></param>"));
    }
    call.push_str("</params></methodCall>");
    let response =
        Client::new(addr).raw("POST", &format!("/{path}"), &[("Content-Type", "text/xml")], Some(call.as_bytes()));
    let text = response.expect(200).text();
    assert!(text.contains("<boolean>1</boolean>"), "{method} failed: {text}");
    text
}

/// The integer an OpenNebula call answered (an allocated id).
fn xmlrpc_id(answer: &str) -> i64 {
    let after = &answer[answer.find("<boolean>1</boolean>").unwrap()..];
    let start = after.find("<i4>").or_else(|| after.find("<int>")).unwrap_or_else(|| panic!("no id in {answer}"));
    let rest = &after[start..];
    rest[rest.find('>').unwrap() + 1..].split('<').next().unwrap().trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Service routes

#[test]
fn basic_credentials_are_base64_as_rfc_4648_says() {
    let vectors =
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
    for (plain, encoded) in vectors {
        assert_eq!(common::server::base64(plain.as_bytes()), encoded, "{plain:?}");
    }
}

#[test]
fn health_root_openapi_and_metrics() {
    let api = Api::start();
    let health = api.server().anonymous().get("/health").expect(200);
    assert_eq!(health.json(), json!({"status": "ok"}));

    for root in [api.server().anonymous().get("/"), api.admin.get("/api/v1")] {
        let root = root.expect(200);
        assert!(root.text().contains("Welcome to the OpenNebula Formation Server v1"), "{}", root.text());
    }
    api.server().anonymous().get("/api/v1").error(401);

    let spec = api.admin.get("/api/v1/openapi.json").expect(200).json();
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1: {}", spec["openapi"]);
    let listed = openapi_routes(&spec);
    let missing: Vec<&(&str, &str)> =
        ROUTES.iter().filter(|(m, p)| !listed.contains(&(m.to_string(), p.to_string()))).collect();
    assert!(missing.is_empty(), "routes missing from openapi.json: {missing:?}\nlisted: {listed:?}");

    // Counters and gauges follow the operations.
    let before = metrics(&api.server().anonymous().get("/metrics").expect(200));
    assert_eq!(before.value("formwork_operations_running", ""), Some(0.0), "nothing runs yet");
    assert_eq!(before.value("formwork_queue_length", ""), Some(0.0));
    let created =
        |m: &Metrics| m.value("formwork_operations_total", "kind=\"create\",result=\"succeeded\"").unwrap_or(0.0);
    assert_eq!(created(&before), 0.0);
    let (_, id) = api.running(1);
    let after = metrics(&api.server().anonymous().get("/metrics").expect(200));
    assert_eq!(created(&after), 1.0, "one create succeeded");
    assert_eq!(after.value("formwork_provisions", "state=\"RUNNING\""), Some(1.0));
    assert_eq!(after.value("formwork_operations_running", ""), Some(0.0));
    let types: Vec<(&str, &str)> = after.types.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    for declared in [
        ("formwork_operations_total", "counter"),
        ("formwork_operations_running", "gauge"),
        ("formwork_queue_length", "gauge"),
        ("formwork_provisions", "gauge"),
    ] {
        assert!(types.contains(&declared), "/metrics declares {declared:?}: {types:?}");
    }
    // Stage durations: one observation per stage the create ran.
    let applying = after.value("formwork_stage_duration_seconds_count", "stage=\"APPLYING\"");
    assert_eq!(applying, Some(1.0), "provision {id}'s apply is counted once");
}

/// Every route the server must serve, as (method, path) with `{}` for a parameter, relative to
/// `/api/v1`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/drivers"),
    ("get", "/drivers/{}"),
    ("post", "/drivers/sync"),
    ("post", "/drivers/{}/enable"),
    ("post", "/drivers/{}/disable"),
    ("get", "/drivers/{}/schema"),
    ("post", "/drivers/{}/validate"),
    ("get", "/providers"),
    ("post", "/providers"),
    ("get", "/providers/{}"),
    ("patch", "/providers/{}"),
    ("delete", "/providers/{}"),
    ("get", "/providers/{}/path"),
    ("post", "/providers/{}/chmod"),
    ("post", "/providers/{}/chown"),
    ("post", "/providers/{}/chgrp"),
    ("get", "/provisions"),
    ("post", "/provisions"),
    ("get", "/provisions/{}"),
    ("patch", "/provisions/{}"),
    ("delete", "/provisions/{}"),
    ("get", "/provisions/{}/unmanaged"),
    ("post", "/provisions/{}/undeploy"),
    ("post", "/provisions/{}/recover"),
    ("post", "/provisions/{}/retry"),
    ("post", "/provisions/{}/scale"),
    ("post", "/provisions/{}/add-host"),
    ("post", "/provisions/{}/remove-host"),
    ("post", "/provisions/{}/add-ip"),
    ("post", "/provisions/{}/remove-ip"),
    ("post", "/provisions/{}/chmod"),
    ("post", "/provisions/{}/chown"),
    ("post", "/provisions/{}/chgrp"),
    ("post", "/provisions/{}/cancel"),
    ("get", "/provisions/{}/operations"),
    ("get", "/provisions/{}/logs"),
    ("get", "/provisions/{}/logs/poll"),
    ("get", "/provisions/{}/logs/stream"),
    ("get", "/provisions/{}/events"),
    ("get", "/provisions/{}/events/stream"),
];

/// (method, path) of every operation in an OpenAPI document, paths relative to `/api/v1` with
/// parameters as `{}`.
fn openapi_routes(spec: &Value) -> Vec<(String, String)> {
    let base = spec["servers"][0]["url"].as_str().unwrap_or("");
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        let full = format!("{}{path}", base.trim_end_matches('/'));
        let relative = full.strip_prefix("/api/v1").unwrap_or(&full);
        let mut generic = String::new();
        let mut in_param = false;
        for c in relative.chars() {
            match c {
                '{' => {
                    in_param = true;
                    generic.push_str("{}");
                }
                '}' => in_param = false,
                _ if in_param => {}
                _ => generic.push(c),
            }
        }
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_lowercase(), generic.clone()));
        }
    }
    routes
}

/// Prometheus text: `# TYPE` declarations and samples (name, labels, value).
struct Metrics {
    types: Vec<(String, String)>,
    samples: Vec<(String, String, f64)>,
}

fn metrics(response: &Response) -> Metrics {
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "/metrics content type: {content_type}");
    let mut types = Vec::new();
    let mut samples = Vec::new();
    for line in response.text().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.push((name.to_string(), kind.trim().to_string()));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("metrics line {line:?}"));
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("metrics value in {line:?}"));
            samples.push((name.to_string(), labels.trim_end_matches('}').to_string(), value));
        }
    }
    assert!(!samples.is_empty(), "/metrics has no sample:\n{}", response.text());
    Metrics { types, samples }
}

impl Metrics {
    /// The value of the sample `name{labels}` (labels as written, `""` for none).
    fn value(&self, name: &str, labels: &str) -> Option<f64> {
        self.samples.iter().find(|(n, l, _)| n == name && l == labels).map(|(_, _, v)| *v)
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and authorisation

#[test]
fn credentials_are_required_and_checked_against_opennebula() {
    let api = Api::start();
    let none = api.server().anonymous().get("/api/v1/provisions").error(401);
    assert_eq!(none["message"], "A username and password must be provided");
    api.server().client("oneadmin", "wrong").get("/api/v1/provisions").error(401);
    api.server().client("alice", ADMIN_PW).get("/api/v1/provisions").error(401);
    api.server().client("nobody", "x").get("/api/v1/providers").error(401);
    api.server().anonymous().with_authorization("Basic !!not-base64!!").get("/api/v1/providers").error(401);
    api.server().anonymous().with_authorization("Bearer abc").get("/api/v1/providers").error(401);
    // A refused write changes nothing, and an unauthenticated one never reaches validation.
    api.server().anonymous().post("/api/v1/providers", &json!({})).error(401);
    api.alice.get("/api/v1/provisions").expect(200);
    api.ops.get("/api/v1/provisions").expect(200);
    assert!(!api.server().log().contains(ALICE_PW), "a password reached the server's log");
}

#[test]
fn only_the_oneadmin_group_may_change_things() {
    let api = Api::start();
    let before = api.admin.get("/api/v1/providers").expect(200).json();
    let refused =
        api.alice.post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": "t"}}));
    refused.error(403);
    assert_eq!(api.admin.get("/api/v1/providers").expect(200).json(), before, "a refused create made nothing");
    api.alice.post("/api/v1/drivers/sim/disable", &json!({})).error(403);
    api.alice.post("/api/v1/drivers/sync", &json!({})).error(403);
    // ops is in the oneadmin group without being oneadmin.
    let doc = api.ops.post("/api/v1/providers", &json!({"driver": "sim", "connection_values": {"api_token": TOKEN}}));
    let doc = doc.expect(201).json();
    assert_eq!(doc["DOCUMENT"]["UNAME"], "ops");
    assert_eq!(doc["DOCUMENT"]["GID"], "0");
    assert_eq!(doc["DOCUMENT"]["UID"], api.uid("ops", OPS_PW).to_string());
}

#[test]
fn a_plain_user_sees_only_what_permissions_give_them() {
    let api = Api::start();
    let (provider, id) = api.running(1);
    let alice_id = api.uid("alice", ALICE_PW);
    let path = format!("/api/v1/provisions/{id}");
    let provider_path = format!("/api/v1/providers/{provider}");

    // Default permissions (600, owner oneadmin): alice sees neither.
    assert_eq!(ids(&api.alice.get("/api/v1/provisions").expect(200).json()), Vec::<i64>::new());
    assert!(!ids(&api.alice.get("/api/v1/providers").expect(200).json()).contains(&provider));
    let hidden = api.alice.get(&path);
    assert!(matches!(hidden.status, 403 | 404), "alice gets {} on another user's provision", hidden.status);
    let status = hidden.status;
    hidden.error(status);
    let hidden = api.alice.get(&format!("{path}/logs"));
    assert!(matches!(hidden.status, 403 | 404), "alice reads another user's logs: {}", hidden.status);
    let hidden = api.alice.get(&provider_path);
    assert!(matches!(hidden.status, 403 | 404), "alice gets {} on another user's provider", hidden.status);

    // Others' USE bit.
    api.admin.post(&format!("{path}/chmod"), &json!({"octet": "604"})).expect(204);
    let doc = api.admin.get(&path).expect(200).json();
    assert_eq!(doc["DOCUMENT"]["PERMISSIONS"]["OTHER_U"], "1");
    assert_eq!(ids(&api.alice.get("/api/v1/provisions").expect(200).json()), vec![id]);
    let seen = api.alice.get(&path).expect(200).json();
    assert_eq!(id_of(&seen), id);
    assert_eq!(provision_body(&seen)["user_inputs_values"]["root_password"], "__redacted__");
    api.alice.get(&format!("{path}/logs")).expect(200);
    // Seeing is not changing: writes need the oneadmin group.
    api.alice.post(&format!("{path}/chmod"), &json!({"octet": "777"})).error(403);
    api.alice.post(&format!("{path}/undeploy"), &json!({})).error(403);
    api.alice.delete(&format!("{path}?force=true")).error(403);
    assert_eq!(api.wait(id, "RUNNING")["state"], "RUNNING");

    // Back to 600, then owned by alice.
    api.admin.post(&format!("{path}/chmod"), &json!({"octet": "600"})).expect(204);
    assert!(matches!(api.alice.get(&path).status, 403 | 404));
    api.admin.post(&format!("{path}/chown"), &json!({"owner_id": alice_id, "group_id": 1})).expect(204);
    let doc = api.alice.get(&path).expect(200).json();
    assert_eq!(doc["DOCUMENT"]["UID"], alice_id.to_string());
    assert_eq!(doc["DOCUMENT"]["UNAME"], "alice");
    assert_eq!(doc["DOCUMENT"]["GID"], "1");
    assert_eq!(doc["DOCUMENT"]["GNAME"], "users");
    assert_eq!(ids(&api.alice.get("/api/v1/provisions").expect(200).json()), vec![id]);

    // Back to oneadmin, then shared with the `users` group, alice's.
    api.admin.post(&format!("{path}/chown"), &json!({"owner_id": 0, "group_id": 0})).expect(204);
    assert!(matches!(api.alice.get(&path).status, 403 | 404), "oneadmin's again");
    api.admin.post(&format!("{path}/chgrp"), &json!({"group_id": 1})).expect(204);
    api.admin.post(&format!("{path}/chmod"), &json!({"octet": "640"})).expect(204);
    let doc = api.alice.get(&path).expect(200).json();
    assert_eq!((&doc["DOCUMENT"]["UNAME"], &doc["DOCUMENT"]["GNAME"]), (&json!("oneadmin"), &json!("users")));
    assert_eq!(permissions(&doc), "110100000");

    // The provider too, by group: alice is in `users`.
    api.admin.post(&format!("{provider_path}/chgrp"), &json!({"group_id": 1})).expect(204);
    api.admin.post(&format!("{provider_path}/chmod"), &json!({"octet": "640"})).expect(204);
    let doc = api.alice.get(&provider_path).expect(200).json();
    assert_eq!(doc["DOCUMENT"]["GID"], "1");
    assert_eq!(provider_body(&doc)["connection"]["api_token"], "__redacted__");
    assert!(ids(&api.alice.get("/api/v1/providers").expect(200).json()).contains(&provider));
    assert!(!api.server().log().contains(TOKEN), "the provider token reached the server's log");
}

/// A provider embedded in a provision (`include_provider`) is served as the provider itself
/// would be: left out without USE on it, its secrets only with MANAGE on it — owning the
/// provision gives neither.
#[test]
fn an_embedded_provider_is_served_only_as_its_own_permissions_allow() {
    let api = Api::start();
    let (provider, id) = api.running(1);
    let alice_id = api.uid("alice", ALICE_PW);
    let path = format!("/api/v1/provisions/{id}?include_provider=true&include_sensitive=true");
    let list = "/api/v1/provisions?include_provider=true&include_sensitive=true";
    api.admin.post(&format!("/api/v1/provisions/{id}/chown"), &json!({"owner_id": alice_id})).expect(204);

    // alice manages her provision, and has no right on its provider.
    let doc = api.alice.get(&path).expect(200).json();
    let body = provision_body(&doc);
    assert_eq!(body["user_inputs_values"]["root_password"], SECRET, "her own provision's secrets");
    assert_eq!((&body["provider_id"], body.get("provider")), (&json!(provider), None), "{body}");
    let listed = api.alice.get(list).expect(200).json();
    assert_eq!(ids(&listed), vec![id]);
    for served in [&doc, &listed] {
        assert!(!served.to_string().contains(TOKEN), "alice reads the provider's token: {served}");
    }

    // USE on the provider (its group, alice's): embedded, its token redacted.
    let provider_path = format!("/api/v1/providers/{provider}");
    api.admin.post(&format!("{provider_path}/chgrp"), &json!({"group_id": 1})).expect(204);
    api.admin.post(&format!("{provider_path}/chmod"), &json!({"octet": "640"})).expect(204);
    api.alice.get(&format!("{provider_path}?include_sensitive=true")).error(403);
    for served in [api.alice.get(&path).expect(200).json(), api.alice.get(list).expect(200).json()[0].clone()] {
        let embedded = &provision_body(&served)["provider"];
        assert_eq!(embedded["id"], provider, "{served}");
        assert_eq!(embedded["connection"]["api_token"], "__redacted__", "{served}");
    }

    // MANAGE on it (hers now): in clear, as the provider route serves it to her.
    api.admin.post(&format!("{provider_path}/chown"), &json!({"owner_id": alice_id})).expect(204);
    let served = api.alice.get(&path).expect(200).json();
    assert_eq!(provision_body(&served)["provider"]["connection"]["api_token"], TOKEN);
    let own = api.alice.get(&format!("{provider_path}?include_sensitive=true")).expect(200).json();
    assert_eq!(provider_body(&own)["connection"]["api_token"], TOKEN);
    assert!(!api.server().log().contains(TOKEN), "the provider token reached the server's log");
}

/// The session a playbook gets (`one_auth`) reads its own provision while its stage runs and
/// nothing else, changes nothing, and ends with the stage.
#[test]
fn a_playbook_session_reads_only_its_provision_and_ends_with_its_stage() {
    let api = Api::start();
    let (provider, first) = api.running(1);
    let ended = playbook_session(&api, first);
    api.home.scenario(json!({"hang_ansible": true}));
    let id = api.create(provider, 1);
    let (user, token) = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(session) = try_playbook_session(&api, id) {
                break session;
            }
            assert!(Instant::now() < deadline, "no playbook of provision {id} ran: {:?}", api.home.calls());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let playbook = api.server().client(&user, &token);
    let own = format!("/api/v1/provisions/{id}");
    let doc = playbook.get(&own).expect(200).json();
    assert_eq!(provision_body(&doc)["state"], "CONFIGURING_PROVISION");
    assert_eq!(ids(&playbook.get("/api/v1/provisions").expect(200).json()), vec![id], "the list holds its own only");
    playbook.get(&format!("{own}/logs")).expect(200);
    let embedded = playbook.get(&format!("{own}?include_provider=true")).expect(200).json();
    assert_eq!(provision_body(&embedded).get("provider"), None, "no provider: it reads its provision only");
    for refused in [
        format!("/api/v1/provisions/{first}"),
        format!("/api/v1/provisions/{first}/logs"),
        format!("/api/v1/providers/{provider}"),
        format!("{own}?include_sensitive=true"),
    ] {
        let answer = playbook.get(&refused);
        assert!(matches!(answer.status, 403 | 404), "{refused}: {} {}", answer.status, answer.text());
    }
    assert!(ids(&playbook.get("/api/v1/providers").expect(200).json()).is_empty());
    playbook.post(&format!("{own}/chmod"), &json!({"octet": "777"})).error(403);
    playbook.delete(&format!("/api/v1/provisions/{first}?force=true")).error(403);
    playbook.post("/api/v1/drivers/sim/disable", &json!({})).error(403);
    let audit = std::fs::read_to_string(api.home.data_dir().join("audit.log")).unwrap();
    let marked = format!(r#""playbook_of":{id}"#);
    assert_eq!(audit.lines().filter(|l| l.contains(&marked) && l.contains(r#""status":403"#)).count(), 3, "{audit}");

    api.admin.post(&format!("{own}/cancel"), &json!({})).expect(204);
    api.wait(id, "CONFIGURING_PROVISION_FAILURE");
    playbook.get(&own).error(401);
    let (user, token) = ended;
    api.server().client(&user, &token).get(&format!("/api/v1/provisions/{first}")).error(401);
}

/// The `one_auth` the playbook of provision `id` was given, as `(user, token)`.
fn try_playbook_session(api: &Api, id: i64) -> Option<(String, String)> {
    api.home.calls().iter().filter(|c| c["tool"] == "ansible-playbook").find_map(|call| {
        let extra = formwork::driver::deployment::yaml_to_json(call["extra_vars"].as_str()?).ok()?;
        let session = extra["one_auth"].as_str().filter(|_| extra["provision_id"] == id)?;
        let (user, token) = session.split_once(':')?;
        Some((user.to_string(), token.to_string()))
    })
}

fn playbook_session(api: &Api, id: i64) -> (String, String) {
    try_playbook_session(api, id).unwrap_or_else(|| panic!("provision {id}'s playbook got no session"))
}

// ---------------------------------------------------------------------------------------------
// Drivers

#[test]
fn drivers_list_show_enable_disable_sync_schema_and_validate() {
    let api = Api::start();
    let list = api.admin.get("/api/v1/drivers").expect(200).json();
    let names: Vec<String> = list.as_array().unwrap().iter().map(common::driver_id).collect();
    assert_eq!(names, ["onprem", "sim"], "{list}");
    let sim = api.admin.get("/api/v1/drivers/sim").expect(200).json();
    assert_eq!(common::driver_id(&sim), "sim");
    assert_eq!(sim["version"], "1.0.0");
    api.admin.get("/api/v1/drivers/nope").error(404);

    let sync = api.admin.post("/api/v1/drivers/sync", &json!({})).expect(200).json();
    assert!(sync["success"].as_array().is_some_and(|s| s.contains(&json!("sim"))), "{sync}");
    assert_eq!(sync["failed"], json!([]));

    api.admin.post("/api/v1/drivers/sim/disable", &json!({})).expect(200);
    let enabled = api.admin.get("/api/v1/drivers?enabled=true").expect(200).json();
    let names: Vec<String> = enabled.as_array().unwrap().iter().map(common::driver_id).collect();
    assert_eq!(names, ["onprem"]);
    api.admin.post("/api/v1/drivers/sim/enable", &json!({})).expect(200);
    let enabled = api.admin.get("/api/v1/drivers?enabled=true").expect(200).json();
    assert_eq!(enabled.as_array().unwrap().len(), 2);
    api.admin.post("/api/v1/drivers/nope/enable", &json!({})).error(404);

    let schema = api.admin.get("/api/v1/drivers/sim/schema?deployment=sim_cluster").expect(200).json();
    assert_eq!(schema, api.cli(&["driver", "schema", "sim", "--deployment", "sim_cluster"]));
    assert!(schema["properties"]["oneform_hosts"].is_object(), "{schema}");
    let connection = api.admin.get("/api/v1/drivers/sim/schema?connection=true").expect(200).json();
    assert_eq!(connection, api.cli(&["driver", "schema", "sim", "--connection"]));
    assert!(connection["properties"]["api_token"].is_object(), "{connection}");
    api.admin.get("/api/v1/drivers/sim/schema?deployment=nope").error(400);

    let values = json!({"oneform_hosts": 2});
    let valid = api
        .admin
        .post("/api/v1/drivers/sim/validate", &json!({"deployment_type": "sim_cluster", "user_inputs_values": values}))
        .expect(200)
        .json();
    let cli = api.home.run_with_stdin(
        &["--json", "provision", "validate", "sim", "--deployment", "sim_cluster", "--values", "-"],
        Some(&values.to_string()),
    );
    assert_eq!(valid, cli.ok().json());
    assert_eq!(valid["valid"], true);
    let wrong = json!({"deployment_type": "sim_cluster", "user_inputs_values": {"oneform_hosts": "many"}});
    assert_names_field(api.admin.post("/api/v1/drivers/sim/validate", &wrong), "oneform_hosts");
}

// ---------------------------------------------------------------------------------------------
// Providers

#[test]
fn providers_create_show_update_permissions_and_delete() {
    let api = Api::start();
    let doc = api
        .admin
        .post(
            "/api/v1/providers",
            &json!({"driver": "sim", "name": "sim-a", "description": "first", "connection_values": {"api_token": TOKEN}}),
        )
        .expect(201)
        .json();
    let id = id_of(&doc);
    let d = &doc["DOCUMENT"];
    assert_eq!(
        (&d["UID"], &d["GID"], &d["UNAME"], &d["GNAME"]),
        (&json!("0"), &json!("0"), &json!("oneadmin"), &json!("oneadmin"))
    );
    assert_eq!(d["TYPE"], "103");
    assert_eq!(d["NAME"], "sim-a");
    assert_eq!(permissions(&doc), "110000000", "OpenNebula's default 600");
    let body = provider_body(&doc);
    assert_eq!(body["driver"], "sim");
    assert_eq!(body["connection"]["api_token"], "__redacted__");
    assert_eq!(body["connection"]["endpoint"], "/tmp/formwork-sim-cloud", "defaults fill missing values");

    // The body is what the CLI prints; the path is the driver's folder.
    let shown = api.admin.get(&format!("/api/v1/providers/{id}")).expect(200).json();
    assert_eq!(provider_body(&shown), &api.cli(&["provider", "show", &id.to_string()]));
    let secret = api.admin.get(&format!("/api/v1/providers/{id}?include_sensitive=true")).expect(200).json();
    assert_eq!(provider_body(&secret)["connection"]["api_token"], TOKEN);
    let listed = api.admin.get("/api/v1/providers").expect(200).json();
    assert!(ids(&listed).contains(&id));
    assert!(!listed.to_string().contains(TOKEN), "a listed provider leaks its token");
    let listed = api.admin.get("/api/v1/providers?include_sensitive=true").expect(200).json();
    assert!(listed.to_string().contains(TOKEN), "include_sensitive shows the token in lists too");
    let path = api.admin.get(&format!("/api/v1/providers/{id}/path")).expect(200).json();
    assert_eq!(path, json!({"path": api.home.builtin.join("sim").display().to_string()}));

    // PATCH: rename, a redacted value is ignored, a new value replaces.
    let patch = json!({"name": "sim-b", "connection": {"api_token": "__redacted__", "endpoint": "/tmp/elsewhere"}});
    let patched = api.admin.patch(&format!("/api/v1/providers/{id}"), &patch).expect(200).json();
    assert_eq!(patched["DOCUMENT"]["NAME"], "sim-b");
    assert_eq!(provider_body(&patched)["connection"]["endpoint"], "/tmp/elsewhere");
    let secret = api.admin.get(&format!("/api/v1/providers/{id}?include_sensitive=true")).expect(200).json();
    assert_eq!(provider_body(&secret)["connection"]["api_token"], TOKEN, "__redacted__ kept the token");

    // chmod, chown, chgrp show in the document.
    api.admin.post(&format!("/api/v1/providers/{id}/chmod"), &json!({"octet": "640"})).expect(204);
    let doc = api.admin.get(&format!("/api/v1/providers/{id}")).expect(200).json();
    assert_eq!(permissions(&doc), "110100000");
    let alice = api.uid("alice", ALICE_PW);
    api.admin.post(&format!("/api/v1/providers/{id}/chown"), &json!({"owner_id": alice})).expect(204);
    let doc = api.admin.get(&format!("/api/v1/providers/{id}")).expect(200).json();
    assert_eq!((&doc["DOCUMENT"]["UID"], &doc["DOCUMENT"]["UNAME"]), (&json!(alice.to_string()), &json!("alice")));
    assert_eq!(doc["DOCUMENT"]["GID"], "0", "chown without group_id keeps the group");
    api.admin.post(&format!("/api/v1/providers/{id}/chgrp"), &json!({"group_id": 1})).expect(204);
    let doc = api.admin.get(&format!("/api/v1/providers/{id}")).expect(200).json();
    assert_eq!((&doc["DOCUMENT"]["GID"], &doc["DOCUMENT"]["GNAME"]), (&json!("1"), &json!("users")));

    api.admin.delete(&format!("/api/v1/providers/{id}")).expect(204);
    api.admin.get(&format!("/api/v1/providers/{id}")).error(404);
    api.admin.delete(&format!("/api/v1/providers/{id}")).error(404);
}

#[test]
fn provider_requests_that_are_refused() {
    let api = Api::start();
    let mut r = Refusals::default();
    let post = |body: Value| api.admin.post("/api/v1/providers", &body);
    r.check(post(json!({"name": "x"})), 400, Some("driver"));
    r.check(post(json!({"driver": 7})), 400, Some("driver"));
    r.check(post(json!({"driver": "nope"})), 404, None);
    // OneForm refuses a second onprem provider with 400 (spec §3.2).
    r.check(post(json!({"driver": "onprem"})), 400, None);
    // api_token is mandatory and has no default.
    r.check(post(json!({"driver": "sim"})), 400, Some("api_token"));
    r.check(post(json!({"driver": "sim", "connection_values": {"api_token": 5}})), 400, Some("api_token"));
    r.check(post(json!({"driver": "sim", "connection_values": "token"})), 400, Some("connection_values"));
    // A disabled driver is refused with 400 (spec §2.12 step 2, §3.2).
    api.admin.post("/api/v1/drivers/sim/disable", &json!({})).expect(200);
    r.check(post(json!({"driver": "sim", "connection_values": {"api_token": "t"}})), 400, None);
    api.admin.post("/api/v1/drivers/sim/enable", &json!({})).expect(200);

    let provider = api.provider("sim-a");
    let path = format!("/api/v1/providers/{provider}");
    r.check(api.admin.post(&format!("{path}/chmod"), &json!({"octet": "9x9"})), 400, Some("octet"));
    r.check(api.admin.post(&format!("{path}/chmod"), &json!({})), 400, Some("octet"));
    // Unknown users and groups are OpenNebula's ENO_EXISTS: 404, not a gateway failure.
    r.check(api.admin.post(&format!("{path}/chown"), &json!({"owner_id": 4242})), 404, None);
    r.check(api.admin.post(&format!("{path}/chgrp"), &json!({"group_id": 4242})), 404, None);
    r.check(api.admin.post(&format!("{path}/chown"), &json!({"owner_id": 396712810415_i64})), 400, Some("owner_id"));
    r.check(api.admin.post(&format!("{path}/chgrp"), &json!({"group_id": "users"})), 400, Some("group_id"));
    r.check(api.admin.patch(&path, &json!({"name": 12})), 400, Some("name"));
    r.check(api.admin.patch("/api/v1/providers/999", &json!({"name": "x"})), 404, None);
    r.check(api.admin.get("/api/v1/providers/999"), 404, None);
    r.check(api.admin.get("/api/v1/providers/999/path"), 404, None);
    r.check(api.admin.delete("/api/v1/providers/999"), 404, None);
    // An id that is not a number is bad input, answered as OneForm errors are.
    r.check(api.admin.get("/api/v1/providers/abc"), 400, None);
    // The onprem provider cannot be deleted (400); a provider in use is refused (405).
    let onprem = api.admin.get("/api/v1/providers").expect(200).json();
    let onprem = onprem.as_array().unwrap().iter().find(|p| provider_body(p)["driver"] == "onprem");
    let onprem = id_of(onprem.expect("the server ensures an onprem provider"));
    r.check(api.admin.delete(&format!("/api/v1/providers/{onprem}")), 400, None);
    let id = api.create(provider, 1);
    api.wait(id, "RUNNING");
    r.check(api.admin.delete(&path), 405, None);
    api.admin.get(&path).expect(200);
    r.done();
}

/// Refused requests checked against the status, OneForm's error body and the field its context
/// should name; every mismatch is kept so one run reports them all.
#[derive(Default)]
struct Refusals(Vec<String>);

impl Refusals {
    fn check(&mut self, response: Response, status: u16, field: Option<&str>) -> Option<Value> {
        let text: String = response.text().chars().take(400).collect();
        let what = format!("{} -> {} {text}", response.request, response.status);
        if response.status != status {
            self.0.push(format!("expected {status}: {what}"));
            return None;
        }
        if status < 400 {
            return Some(response.json());
        }
        let Ok(body) = serde_json::from_slice::<Value>(&response.body) else {
            self.0.push(format!("not a JSON error body: {what}"));
            return None;
        };
        let message_ok = body["message"].as_str().is_some_and(|m| !m.is_empty());
        if body["err_code"] != status || !message_ok {
            self.0.push(format!("not OneForm's {{err_code, message}}: {what}"));
        }
        if let Some(field) = field {
            let named =
                body["context"][field].as_array().is_some_and(|m| !m.is_empty() && m.iter().all(Value::is_string));
            if !named {
                self.0.push(format!("context should name {field:?}: {what}"));
            }
        }
        Some(body)
    }

    /// A refusal whose message must be exactly `message`.
    fn message(&mut self, response: Response, status: u16, message: &str) {
        if let Some(body) = self.check(response, status, None)
            && body["message"] != message
        {
            self.0.push(format!("message should be {message:?}: {body}"));
        }
    }

    #[track_caller]
    fn done(self) {
        assert!(self.0.is_empty(), "{} refusals answered wrongly:\n{}", self.0.len(), self.0.join("\n"));
    }
}

/// The nine permission bits as a string of 0/1, OWNER_U first.
fn permissions(doc: &Value) -> String {
    let p = &doc["DOCUMENT"]["PERMISSIONS"];
    let mut out = String::new();
    for who in ["OWNER", "GROUP", "OTHER"] {
        for right in ["U", "M", "A"] {
            let bit = p[format!("{who}_{right}")].as_str().unwrap_or_else(|| panic!("PERMISSIONS.{who}_{right}: {p}"));
            assert!(bit == "0" || bit == "1", "{p}");
            out.push_str(bit);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Provisions

#[test]
fn provision_create_answers_pending_then_runs_to_running_with_oneforms_shape() {
    let api = Api::start();
    let provider = api.provider("sim-a");
    let created = api.admin.post("/api/v1/provisions", &provision_request(provider, 2)).expect(201).json();
    let id = id_of(&created);
    let d = &created["DOCUMENT"];
    assert_eq!(d["TYPE"], "104");
    assert_eq!(d["NAME"], "api-test");
    assert_eq!(
        (&d["UID"], &d["GID"], &d["UNAME"], &d["GNAME"]),
        (&json!("0"), &json!("0"), &json!("oneadmin"), &json!("oneadmin"))
    );
    assert_eq!(permissions(&created), "110000000");
    let body = provision_body(&created);
    assert_eq!(body["state"], "PENDING", "201 answers the document as allocated");
    assert_eq!(body["provider_id"], provider);
    assert_eq!(body["cloud_provider"], "sim");
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["user_inputs_values"]["root_password"], "__redacted__");
    assert!(body.get("tfstate").is_none(), "tfstate is never served: {body}");

    let running = api.wait(id, "RUNNING");
    assert_eq!(running["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    // PROVISION_BODY is what `formwork provision show --json` prints (cloud_provider and version
    // may be the server's additions).
    let mut served = running.clone();
    assert_eq!(served.as_object_mut().unwrap().remove("cloud_provider"), Some(json!("sim")));
    assert_eq!(served.as_object_mut().unwrap().remove("version"), Some(json!("1.0.0")));
    let mut shown = api.cli(&["provision", "show", &id.to_string()]);
    shown.as_object_mut().unwrap().retain(|k, _| k != "cloud_provider" && k != "version");
    assert_eq!(served, shown);

    // Lists: by default without DONE; sensitive values only when asked.
    let listed = api.admin.get("/api/v1/provisions").expect(200).json();
    assert_eq!(ids(&listed), vec![id]);
    assert!(!listed.to_string().contains(SECRET), "a listed provision leaks a sensitive input");
    let secret = api.admin.get(&format!("/api/v1/provisions/{id}?include_sensitive=true")).expect(200).json();
    assert_eq!(provision_body(&secret)["user_inputs_values"]["root_password"], SECRET);
    let listed = api.admin.get("/api/v1/provisions?include_sensitive=true").expect(200).json();
    assert!(listed.to_string().contains(SECRET));

    // The provider embedded on request.
    let with = api.admin.get(&format!("/api/v1/provisions/{id}?include_provider=true")).expect(200).json();
    let body = provision_body(&with);
    assert_eq!(body["provider"]["driver"], "sim", "{body}");
    assert_eq!(body["provider"]["name"], "sim-a");
    assert!(body.get("provider_id").is_none(), "include_provider replaces provider_id: {body}");
    assert!(!with.to_string().contains(TOKEN), "the embedded provider leaks its token without include_sensitive");
    let listed = api.admin.get("/api/v1/provisions?include_provider=true").expect(200).json();
    assert_eq!(provision_body(&listed[0])["provider"]["name"], "sim-a");
    for text in [api.server().log(), api.log(id)] {
        assert!(!text.contains(TOKEN) && !text.contains(SECRET), "a secret reached a log:\n{text}");
    }
}

#[test]
fn provision_requests_that_are_refused() {
    let api = Api::start();
    let provider = api.provider("sim-a");
    let mut r = Refusals::default();
    let post = |body: &Value| api.admin.post("/api/v1/provisions", body);
    let with = |key: &str, value: Value| {
        let mut body = provision_request(provider, 1);
        match value {
            Value::Null => {
                body.as_object_mut().unwrap().remove(key);
            }
            value => body[key] = value,
        }
        body
    };
    for key in ["driver", "deployment_type", "provider_id"] {
        r.check(post(&with(key, Value::Null)), 400, Some(key));
    }
    r.check(post(&with("provider_id", json!("one"))), 400, Some("provider_id"));
    r.check(post(&with("driver", json!(["sim"]))), 400, Some("driver"));
    r.check(post(&with("name", json!(5))), 400, Some("name"));
    r.check(post(&with("user_inputs_values", json!([1]))), 400, Some("user_inputs_values"));
    r.check(post(&with("user_inputs_values", json!({"oneform_hosts": "many"}))), 400, Some("oneform_hosts"));
    r.check(post(&with("user_inputs_values", json!({"oneform_hosts": 1, "region": 3}))), 400, Some("region"));
    r.check(post(&with("driver", json!("nope"))), 404, None);
    r.check(post(&with("provider_id", json!(999))), 404, None);
    // No deployment of that inventory: OneForm's 400 (spec §2.12 step 4).
    r.check(post(&with("deployment_type", json!("nope"))), 400, None);
    // A provider of another driver (spec §2.12 step 5).
    let onprem = api.admin.get("/api/v1/providers").expect(200).json();
    let onprem = id_of(onprem.as_array().unwrap().iter().find(|p| provider_body(p)["driver"] == "onprem").unwrap());
    r.check(post(&with("provider_id", json!(onprem))), 400, None);
    api.admin.post("/api/v1/drivers/sim/disable", &json!({})).expect(200);
    r.check(post(&provision_request(provider, 1)), 400, None);
    api.admin.post("/api/v1/drivers/sim/enable", &json!({})).expect(200);

    // Bodies: empty, absent, not JSON, not an object, too large.
    let json_type = [("Content-Type", "application/json")];
    r.message(api.admin.raw("POST", "/api/v1/provisions", &json_type, Some(b"")), 400, "Missing request body");
    r.message(api.admin.raw("POST", "/api/v1/provisions", &json_type, None), 400, "Missing request body");
    r.message(api.admin.raw("POST", "/api/v1/provisions", &[], Some(b"  \n")), 400, "Missing request body");
    r.check(api.admin.raw("POST", "/api/v1/provisions", &json_type, Some(b"{\"driver\": ")), 400, None);
    r.check(api.admin.raw("POST", "/api/v1/provisions", &json_type, Some(b"[1, 2]")), 400, None);
    r.check(api.admin.raw("POST", "/api/v1/provisions", &json_type, Some(b"\xff\xfe{}")), 400, None);
    let mut huge = provision_request(provider, 1);
    huge["description"] = json!("x".repeat(2 * 1024 * 1024));
    r.check(api.admin.post("/api/v1/provisions", &huge), 413, None);
    // Just under the limit (1 MiB) is read, then judged on its content.
    huge["description"] = json!("x".repeat(1000 * 1024));
    r.check(api.admin.post("/api/v1/provisions", &huge), 201, None).map(|doc| api.wait(id_of(&doc), "RUNNING"));

    r.check(api.admin.get("/api/v1/provisions/999"), 404, None);
    r.check(api.admin.get("/api/v1/provisions/x1"), 400, None);
    r.check(api.admin.get("/api/v1/provisions/1/logs/poll?pos=abc"), 400, Some("pos"));
    r.check(api.admin.get("/api/v1/nowhere"), 404, None);
    // Another method on a known path: 405 (axum answers it without a body).
    let put = api.admin.raw("PUT", "/api/v1/provisions", &json_type, Some(b"{}"));
    assert_eq!(put.status, 405, "PUT /provisions: {}", put.text());
    r.done();
    let made = ids(&api.admin.get("/api/v1/provisions?all=true").expect(200).json());
    assert_eq!(made.len(), 1, "only the request under the size limit made a provision: {made:?}");
}

#[test]
fn answers_are_plain_text_when_the_request_is_not_json() {
    let api = Api::start();
    let (_, id) = api.running(1);
    let json_doc = api.admin.get(&format!("/api/v1/provisions/{id}")).expect(200);
    assert!(json_doc.header("content-type").is_some_and(|t| t.starts_with("application/json")));
    let text = api.admin.raw("GET", &format!("/api/v1/provisions/{id}"), &[("Content-Type", "text/plain")], None);
    let text = text.expect(200);
    let content_type = text.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "content type {content_type}");
    assert!(text.text().contains("api-test"), "the plain answer carries the provision: {}", text.text());
    let missing = api.admin.raw("GET", "/api/v1/provisions/999", &[("Content-Type", "text/plain")], None).expect(404);
    assert!(missing.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let error = api.admin.raw("GET", "/api/v1/provisions/999", &[], None).error(404);
    assert_eq!(missing.text(), error["message"].as_str().unwrap(), "a plain error is its message");
}

#[test]
fn scale_up_and_down_public_ips_unmanaged_and_undeploy_to_done() {
    let api = Api::start();
    let (provider, id) = api.running(1);
    let path = format!("/api/v1/provisions/{id}");
    let hosts = |body: &Value| body["one_objects"]["hosts"].as_array().unwrap().len();

    // OneForm's scale, then formwork's add-host / remove-host.
    api.admin.post(&format!("{path}/scale"), &json!({"direction": "up", "nodes": 1})).expect(204);
    let two = api.wait_for(id, "RUNNING", |b| hosts(b) == 2);
    api.admin.post(&format!("{path}/add-host"), &json!({"amount": 1})).expect(204);
    let three = api.wait_for(id, "RUNNING", |b| hosts(b) == 3);
    assert!(
        two["one_objects"]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| three["one_objects"]["hosts"].as_array().unwrap().contains(h))
    );
    let victim = three["one_objects"]["hosts"][1]["id"].as_i64().unwrap();
    api.admin.post(&format!("{path}/remove-host"), &json!({"ids": [victim]})).expect(204);
    let after = api.wait_for(id, "RUNNING", |b| hosts(b) == 2);
    assert!(after["one_objects"]["hosts"].as_array().unwrap().iter().all(|h| h["id"] != victim));
    assert_eq!(after["user_inputs_values"]["oneform_hosts"], 2);
    api.admin.post(&format!("{path}/scale"), &json!({"direction": "down", "nodes": 1})).expect(204);
    api.wait_for(id, "RUNNING", |b| hosts(b) == 1);
    assert_names_field(
        api.admin.post(&format!("{path}/scale"), &json!({"direction": "sideways", "nodes": 1})),
        "direction",
    );
    assert_names_field(api.admin.post(&format!("{path}/scale"), &json!({"direction": "up", "nodes": "two"})), "nodes");
    assert_names_field(api.admin.post(&format!("{path}/add-host"), &json!({"amount": "two"})), "amount");
    api.admin.post(&format!("{path}/remove-host"), &json!({"ids": [9999]})).error(400);
    api.admin.post("/api/v1/provisions/999/add-host", &json!({"amount": 1})).error(404);

    // Public IPs.
    api.admin.post(&format!("{path}/add-ip"), &json!({"amount": 2})).expect(204);
    let with_ips = api.wait_for(id, "RUNNING", |b| b["user_inputs_values"]["oneform_public_ips"] == 2);
    let ars = elastic_ars(&with_ips);
    assert_eq!(ars.len(), 2, "{with_ips}");
    api.admin.post(&format!("{path}/remove-ip"), &json!({"ar_id": ars[0]})).expect(204);
    let fewer = api.wait_for(id, "RUNNING", |b| b["user_inputs_values"]["oneform_public_ips"] == 1);
    assert_eq!(elastic_ars(&fewer), ars[1..].to_vec());
    assert_names_field(api.admin.post(&format!("{path}/remove-ip"), &json!({})), "ar_id");

    // Unmanaged: a VM someone started on the provision's host is reported, and it stops a
    // deprovision that is not forced.
    let host_id = fewer["one_objects"]["hosts"][0]["id"].as_i64().unwrap();
    let quiet = api.admin.get(&format!("{path}/unmanaged")).expect(200).json();
    assert!(!quiet.to_string().contains("\"vm\":[0"), "no VM yet: {quiet}");
    let endpoint = api.sim.as_ref().unwrap().url.clone();
    let session = format!("oneadmin:{ADMIN_PW}");
    let vm = xmlrpc_id(&xmlrpc(
        &endpoint,
        &session,
        "one.vm.allocate",
        &["<string>NAME = intruder</string>".into(), "<boolean>0</boolean>".into()],
    ));
    xmlrpc(
        &endpoint,
        &session,
        "one.vm.deploy",
        &[format!("<i4>{vm}</i4>"), format!("<i4>{host_id}</i4>"), "<boolean>0</boolean>".into(), "<i4>-1</i4>".into()],
    );
    let unmanaged = api.admin.get(&format!("{path}/unmanaged")).expect(200).json();
    assert_eq!(unmanaged["hosts"][host_id.to_string()]["vm"], json!([vm]), "{unmanaged}");
    let refused = api.admin.post(&format!("{path}/undeploy"), &json!({})).error(405);
    assert_eq!(
        refused["context"]["hosts"][host_id.to_string()]["vm"],
        json!([vm]),
        "the context is the unmanaged map: {refused}"
    );
    assert_eq!(api.wait(id, "RUNNING")["state"], "RUNNING", "a refused deprovision changes nothing");

    // PATCH the body.
    let patched = api.admin.patch(&path, &json!({"name": "renamed", "description": "d2"})).expect(200).json();
    assert_eq!(patched["DOCUMENT"]["NAME"], "renamed");
    assert_eq!(provision_body(&patched)["description"], "d2");
    assert_names_field(api.admin.patch(&path, &json!({"description": 5})), "description");

    // A RUNNING provision cannot be retried nor deleted without force.
    api.admin.post(&format!("{path}/retry"), &json!({})).error(405);
    api.admin.delete(&path).error(405);
    // A forced undeploy deletes the VM with the rest: DONE, then hidden from the default list,
    // deletable, gone.
    api.admin.post(&format!("{path}/undeploy"), &json!({"force": true})).expect(204);
    api.wait(id, "DONE");
    assert_eq!(ids(&api.admin.get("/api/v1/provisions").expect(200).json()), Vec::<i64>::new());
    assert_eq!(ids(&api.admin.get("/api/v1/provisions?all=true").expect(200).json()), vec![id]);
    api.admin.post(&format!("{path}/scale"), &json!({"direction": "up", "nodes": 1})).error(405);
    let provider_doc = api.admin.get(&format!("/api/v1/providers/{provider}")).expect(200).json();
    assert_eq!(provider_body(&provider_doc)["provision_ids"], json!([]), "DONE leaves the provider");
    api.admin.delete(&path).expect(204);
    api.admin.get(&path).error(404);
    api.admin.delete(&format!("/api/v1/providers/{provider}")).expect(204);
}

fn elastic_ars(body: &Value) -> Vec<i64> {
    let networks = body["one_objects"]["networks"].as_array().unwrap();
    let elastic = networks.iter().find(|n| n["template"]["vn_mad"] == "elastic").expect("an elastic network");
    elastic["template"]["ar"].as_array().into_iter().flatten().map(|a| a["ar_id"].as_i64().unwrap()).collect()
}

#[test]
fn a_busy_provision_refuses_operations_cancel_stops_it_and_retry_or_recover_finish_it() {
    let api = Api::start();
    api.home.scenario(json!({"hang_plan": true}));
    let provider = api.provider("sim-a");
    let id = api.create(provider, 1);
    api.wait_for_call("terraform", "plan");
    let path = format!("/api/v1/provisions/{id}");
    assert_eq!(provision_body(&api.get(id))["state"], "PLANNING");
    let operations = api.admin.get(&format!("{path}/operations")).expect(200).json();
    assert_eq!(operations[0]["status"], "running", "{operations}");
    assert_eq!(operations[0]["kind"], "create");
    assert_eq!(operations[0]["provision_id"], id);

    for (route, body) in [
        ("retry", json!({})),
        ("undeploy", json!({})),
        ("scale", json!({"direction": "up", "nodes": 1})),
        ("recover", json!({"recover_state": "PLANNING"})),
    ] {
        api.admin.post(&format!("{path}/{route}"), &body).error(405);
    }
    api.admin.delete(&path).error(405);
    // Documents may change while work runs.
    api.admin.post(&format!("{path}/chmod"), &json!({"octet": "660"})).expect(204);

    api.admin.post(&format!("{path}/cancel"), &json!({})).expect(204);
    api.wait(id, "PLANNING_FAILURE");
    let operations = api.admin.get(&format!("{path}/operations")).expect(200).json();
    assert_eq!(operations[0]["status"], "cancelled", "{operations}");
    api.admin.post(&format!("{path}/cancel"), &json!({})).error(405);

    // recover names the state to go back to: only the failed one.
    api.home.scenario(json!({}));
    api.admin.post(&format!("{path}/recover"), &json!({"recover_state": "RUNNING"})).error(405);
    assert_names_field(api.admin.post(&format!("{path}/recover"), &json!({})), "recover_state");
    api.admin.post(&format!("{path}/recover"), &json!({"recover_state": "PLANNING"})).expect(204);
    api.wait(id, "RUNNING");
    let operations = api.admin.get(&format!("{path}/operations")).expect(200).json();
    let kinds: Vec<&str> = operations.as_array().unwrap().iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["recover", "create"], "newest first: {operations}");
    assert_eq!(operations[0]["status"], "succeeded");
    assert!(operations[0]["id"].as_i64() > operations[1]["id"].as_i64());

    // A failure answered by retry.
    api.home.scenario(json!({"fail_apply": "Error: quota exceeded"}));
    api.admin.post(&format!("{path}/add-host"), &json!({"amount": 1})).expect(204);
    // A scale-up runs the whole chain again (SCALING, INIT, ... as OneForm does): the apply fails.
    let failed = api.wait(id, "APPLYING_FAILURE");
    assert!(failed["historic"].to_string().contains("State changed from RUNNING to SCALING"), "{failed}");
    api.admin.post(&format!("{path}/retry"), &json!({})).expect(204);
    api.wait_for(id, "RUNNING", |b| b["one_objects"]["hosts"].as_array().unwrap().len() == 2);
    api.admin.get("/api/v1/provisions/999/operations").error(404);
}

#[test]
fn a_request_made_as_soon_as_the_state_allows_it_is_accepted() {
    // OneForm's clients (the CLIs, FireEdge, scripts) poll the state and act when it allows:
    // the state they read must mean the work is over, not that it is about to be.
    let api = Api::start();
    let provider = api.provider("sim-a");
    let id = api.create(provider, 1);
    let path = format!("/api/v1/provisions/{id}");
    let settled_on = |state: &str, hosts: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = provision_body(&api.get(id)).clone();
            let count = body["one_objects"]["hosts"].as_array().map_or(0, Vec::len);
            if body["state"] == state && (state == "DONE" || count == hosts) {
                return;
            }
            assert!(Instant::now() < deadline, "not {state} with {hosts} hosts: {body}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut hosts = 1;
    settled_on("RUNNING", hosts);
    for round in 0..8 {
        let (route, step): (&str, i64) = if round % 2 == 0 { ("add-host", 1) } else { ("remove-host", -1) };
        let answer = api.admin.post(&format!("{path}/{route}"), &json!({"amount": 1}));
        assert_eq!(answer.status, 204, "round {round}: {route} right after RUNNING: {}", answer.text());
        hosts = (hosts as i64 + step) as usize;
        settled_on("RUNNING", hosts);
    }
    api.admin.post(&format!("{path}/undeploy"), &json!({})).expect(204);
    settled_on("DONE", 0);
    let deleted = api.admin.delete(&path);
    assert_eq!(deleted.status, 204, "DELETE right after DONE: {}", deleted.text());
}

// ---------------------------------------------------------------------------------------------
// Logs

#[test]
fn logs_pages_poll_and_stream() {
    let api = Api::start();
    let (_, id) = api.running(1);
    let path = format!("/api/v1/provisions/{id}");
    let file: Vec<String> = api.log(id).lines().map(str::to_owned).collect();
    assert!(file.len() > 10, "the log has lines: {file:?}");

    // Page 1 is the newest lines, in file order.
    let page = api.admin.get(&format!("{path}/logs?page=1&per_page=4")).expect(200).json();
    let total = file.len();
    assert_eq!(page["meta"]["page"], 1);
    assert_eq!(page["meta"]["per_page"], 4);
    assert_eq!(page["meta"]["total_lines"], total);
    assert_eq!(page["meta"]["total_pages"], total.div_ceil(4));
    let texts = |v: &Value| -> Vec<String> {
        v["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap().to_owned()).collect()
    };
    let last4: Vec<String> = file[total - 4..].to_vec();
    assert_lines_match(&texts(&page), &last4);
    let page2 = api.admin.get(&format!("{path}/logs?page=2&per_page=4")).expect(200).json();
    assert_lines_match(&texts(&page2), &file[total - 8..total - 4]);
    let all = api.admin.get(&format!("{path}/logs?all=true")).expect(200).json();
    assert_eq!(all["meta"]["mode"], "all");
    assert_eq!(all["meta"]["total_lines"], total);
    assert_lines_match(&texts(&all), &file);
    for line in all["lines"].as_array().unwrap() {
        assert_eq!(line["level"], level_of(line["text"].as_str().unwrap()), "{line}");
    }
    assert_names_field(api.admin.get(&format!("{path}/logs?page=0")), "page");
    api.admin.get("/api/v1/provisions/999/logs").error(404);

    // Poll: no pos starts at the end; pos=0 from the start; the returned pos continues.
    let end = api.admin.get(&format!("{path}/logs/poll")).expect(200).json();
    assert_eq!(end["lines"], json!([]), "{end}");
    let size = std::fs::metadata(api.home.data_dir().join(format!("logs/{id}.log"))).unwrap().len();
    assert_eq!(end["pos"], size);
    let from0 = api.admin.get(&format!("{path}/logs/poll?pos=0")).expect(200).json();
    assert_lines_match(&texts(&from0), &file);
    assert_eq!(from0["pos"], size);

    // The stream from the start replays the file; from `pos` it follows what comes next.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut replay = api.admin.events(&format!("{path}/logs/stream"));
    assert_eq!(replay.status, 200);
    assert!(replay.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")));
    let first = replay.next(deadline).expect("an event");
    let first: Value = serde_json::from_str(&first.data).unwrap();
    assert_lines_match(&[first["text"].as_str().unwrap().to_owned()], &file[..1]);
    drop(replay);
    let mut events = api.admin.events(&format!("{path}/logs/stream?pos={size}"));
    assert_eq!(events.status, 200);
    api.admin.post(&format!("{path}/add-host"), &json!({"amount": 1})).expect(204);
    let mut seen: Vec<String> = Vec::new();
    while !seen.iter().any(|t| t.contains("to RUNNING")) {
        let event = events.next(deadline).expect("the stream ended before the scale finished");
        let line: Value =
            serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("event data {:?}: {e}", event.data));
        let text = line["text"].as_str().unwrap().to_owned();
        assert_eq!(line["level"], level_of(&text), "{line}");
        seen.push(text);
    }
    assert!(seen[0].contains("State changed from RUNNING to SCALING"), "the stream starts at pos: {seen:#?}");
    api.wait(id, "RUNNING");
    // The earlier position now returns exactly what the scale wrote, and so did the stream.
    let more = api.admin.get(&format!("{path}/logs/poll?pos={size}")).expect(200).json();
    let file: Vec<String> = api.log(id).lines().map(str::to_owned).collect();
    assert_lines_match(&texts(&more), &file[total..]);
    assert_lines_match(&seen, &file[total..total + seen.len()]);
}

// ---------------------------------------------------------------------------------------------
// Typed progress and operation records

#[test]
fn progress_events_and_operation_records_are_typed_data() {
    let api = Api::start();
    let (_, id) = api.running(1);
    let path = format!("/api/v1/provisions/{id}");
    let operations = api.admin.get(&format!("{path}/operations")).expect(200).json();
    let create = &operations[0];
    let keys: Vec<&str> = create.as_object().unwrap().keys().map(String::as_str).collect();
    for private in ["owner_token", "params", "event"] {
        assert!(!keys.contains(&private), "{private} is the server's business: {create}");
    }
    assert_eq!(
        (create["kind"].as_str(), create["status"].as_str(), create["started"].as_bool()),
        (Some("create"), Some("succeeded"), Some(true))
    );

    // Every state change of the create, in order, tied to its operation.
    let page = api.admin.get(&format!("{path}/events")).expect(200).json();
    let events = page["events"].as_array().unwrap();
    let changes: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "state_changed")
        .map(|e| (e["from"].as_str().unwrap().to_owned(), e["to"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(changes.first().map(|c| c.0.as_str()), Some("PENDING"), "{page}");
    assert_eq!(changes.last().map(|c| c.1.as_str()), Some("RUNNING"), "{page}");
    assert!(changes.windows(2).all(|w| w[0].1 == w[1].0), "a chain of states: {changes:?}");
    assert!(events.iter().all(|e| e["operation_id"] == create["id"]), "{page}");
    let next = page["next"].as_i64().unwrap();
    assert_eq!(Some(next), events.last().and_then(|e| e["id"].as_i64()));
    let rest = api.admin.get(&format!("{path}/events?after={next}")).expect(200).json();
    assert_eq!(rest, json!({"events": [], "next": next}), "nothing after the cursor yet");
    assert_names_field(api.admin.get(&format!("{path}/events?after=x")), "after");
    api.admin.get("/api/v1/provisions/999/events").error(404);

    // Live: the stream from the cursor carries the scale's events, named by their type.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = api.admin.events(&format!("{path}/events/stream?after={next}"));
    assert_eq!(stream.status, 200);
    api.admin.post(&format!("{path}/add-host"), &json!({"amount": 1})).expect(204);
    let mut seen = Vec::new();
    while !seen.iter().any(|(name, data): &(Option<String>, Value)| {
        name.as_deref() == Some("state_changed") && data["to"] == "RUNNING"
    }) {
        let event = stream.next(deadline).expect("the stream ended before the scale finished");
        let data: Value =
            serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("event data {:?}: {e}", event.data));
        assert_eq!(event.name.as_deref(), data["type"].as_str(), "the SSE name is the event's type: {data}");
        seen.push((event.name, data));
    }
    assert_eq!((seen[0].1["from"].as_str(), seen[0].1["to"].as_str()), (Some("RUNNING"), Some("SCALING")), "{seen:?}");
    let scale = api.admin.get(&format!("{path}/operations")).expect(200).json()[0].clone();
    assert!(seen.iter().all(|(_, data)| data["operation_id"] == scale["id"]), "{seen:?}");
    let only_scale = api.admin.get(&format!("{path}/events?operation={}", scale["id"])).expect(200).json();
    assert_eq!(only_scale["events"].as_array().unwrap().len(), seen.len(), "{only_scale}");

    // A reconnecting EventSource sends the id of the last event it got and resumes after it.
    let second = seen[1].1["id"].as_i64().unwrap();
    let mut resumed =
        api.admin.events_with(&format!("{path}/events/stream"), &[("Last-Event-ID", &second.to_string())]);
    let next = resumed.next(deadline).expect("an event after the one named");
    let next: Value = serde_json::from_str(&next.data).unwrap();
    assert_eq!(next, seen[2].1, "the stream resumes right after Last-Event-ID");
}

/// OneForm's level of a log line: its first `[D]`, `[I]`, `[W]` or `[E]` marker; debug if none.
fn level_of(text: &str) -> &'static str {
    let bytes = text.as_bytes();
    for at in 0..bytes.len().saturating_sub(2) {
        if bytes[at] == b'[' && bytes[at + 2] == b']' {
            match bytes[at + 1] {
                b'D' => return "debug",
                b'I' => return "info",
                b'W' => return "warning",
                b'E' => return "error",
                _ => {}
            }
        }
    }
    "debug"
}

/// Served log lines are the file's lines (the text may drop the date prefix, never more).
#[track_caller]
fn assert_lines_match(served: &[String], file: &[String]) {
    assert_eq!(served.len(), file.len(), "served {served:#?}\nfile {file:#?}");
    for (s, f) in served.iter().zip(file) {
        assert!(!s.is_empty() && f.ends_with(s.as_str()), "served {s:?} for file line {f:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// OneForm's clients and the OpenAPI document, judged by Python tools from `.tools/venv`

fn venv(tool: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin").join(tool);
    assert!(path.exists(), "{} is missing: run scripts/setup, which installs it", path.display());
    path
}

#[test]
fn a_oneform_python_client_runs_a_whole_lifecycle() {
    let api = Api::start();
    // The CLIs' credentials come from a one_auth file.
    let auth = api.home.tmp.path().join("client_one_auth");
    std::fs::write(&auth, format!("oneadmin:{ADMIN_PW}\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/oneform_client.py");
    let output = std::process::Command::new(venv("python"))
        .arg(&script)
        .arg(format!("http://{}", api.server().addr))
        .arg(&auth)
        .env_clear()
        .output()
        .expect("python runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "oneform_client.py failed ({}):\n{stdout}\n{stderr}\nserver:\n{}",
        output.status,
        api.server().log()
    );
    assert!(stdout.contains("oneform_client: all steps passed"), "{stdout}");
    assert!(stdout.contains("ids are never reused"), "the step after a delete ran: {stdout}");
}

#[test]
fn schemathesis_finds_no_server_error_and_answers_match_the_openapi_document() {
    let api = Api::start();
    venv("schemathesis");
    // Something to find: a provider and a running provision.
    api.running(1);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/schemathesis_run.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg(format!("http://{}", api.server().addr))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FORMWORK_API_USER", "oneadmin")
        .env("FORMWORK_API_PASSWORD", ADMIN_PW)
        .output()
        .expect("bash runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis failed ({}):\n{stdout}\n{stderr}", output.status);
    // It must have tested the routes, not an empty document ("Tested: N" in its summary).
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested:").and_then(|n| n.trim().parse::<usize>().ok()))
        .unwrap_or(0);
    let streams = ROUTES.iter().filter(|(_, path)| path.ends_with("/stream")).count();
    assert!(
        tested >= ROUTES.len() - streams,
        "schemathesis tested {tested} operations (all but the streams):\n{stdout}"
    );
}
