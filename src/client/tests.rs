//! The client against a tiny axum stand-in for `formwork serve` that answers OneForm-shaped
//! documents, errors and operation records, and checks the Basic credentials it is sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Client, Config, Credentials};
use crate::service::{Error, NewProvider, NewProvision, Observer, Progress, Request, Started, State};

/// `Basic base64(admin:pw)`.
const AUTH: &str = "Basic YWRtaW46cHc=";

/// What the stand-in serves, and what it saw.
#[derive(Default)]
struct Stub {
    /// How the operation the stand-in runs ends: `succeeded` or `failed`.
    ending: Mutex<String>,
    /// Reads of the operation list since the last operation started: it runs for two.
    operation_reads: AtomicUsize,
    /// Operations started so far.
    started: AtomicUsize,
    /// Whether the provision was created in this test (then it has no older operation).
    created: std::sync::atomic::AtomicBool,
    /// Bodies of the POSTs it was sent, by path.
    posts: Mutex<Vec<(String, Value)>>,
}

fn document(kind: &str, body: Value) -> Value {
    let id = body["id"].to_string();
    json!({"DOCUMENT": {"ID": id, "UID": "0", "GID": "0", "UNAME": "oneadmin", "GNAME": "oneadmin", "NAME": body["name"], "TYPE": "104", "TEMPLATE": {kind: body}}})
}

fn provision(state: &str) -> Value {
    json!({"id": 7, "driver": "sim", "name": "p", "state": state, "cloud_provider": "sim", "version": "1.0",
           "user_inputs_values": {"oneform_public_ips": 2}, "historic": []})
}

fn failure(status: StatusCode, message: &str, context: Value) -> Response {
    (status, Json(json!({"err_code": status.as_u16(), "message": message, "context": context}))).into_response()
}

/// The refusal of a request without the right credentials, if it has not.
fn refused(headers: &HeaderMap) -> Option<Response> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(AUTH) => None,
        Some(_) => Some(failure(StatusCode::UNAUTHORIZED, "Invalid credentials", Value::Null)),
        None => Some(failure(StatusCode::UNAUTHORIZED, "A username and password must be provided", Value::Null)),
    }
}

async fn providers(headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    Json(json!([document("PROVIDER_BODY", json!({"id": 1, "name": "sim", "driver": "sim", "provision_ids": []}))]))
        .into_response()
}

async fn driver(Path(name): Path<String>) -> Json<Value> {
    Json(json!({"name": name, "system_path": format!("/drivers/{name}"), "deployment_confs": [{"inventory": "only"}]}))
}

async fn create_provider(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    let context = json!({"api_token": ["is missing"]});
    if body["connection_values"].get("api_token").is_none() {
        return failure(StatusCode::BAD_REQUEST, "1 input of sim is wrong:\n  api_token: is missing", context);
    }
    (StatusCode::CREATED, Json(document("PROVIDER_BODY", json!({"id": 2, "name": "sim", "driver": "sim"}))))
        .into_response()
}

async fn show(headers: HeaderMap, Path(id): Path<i64>, Shared(stub): Shared<Arc<Stub>>) -> Response {
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    if id != 7 {
        return failure(StatusCode::NOT_FOUND, &format!("provision {id} does not exist"), Value::Null);
    }
    let reads = stub.operation_reads.load(Ordering::SeqCst);
    let ending = stub.ending.lock().unwrap().clone();
    let state = match (reads, ending.as_str()) {
        (0..=1, _) => "APPLYING",
        (_, "failed") => "APPLYING_FAILURE",
        _ => "RUNNING",
    };
    Json(document("PROVISION_BODY", provision(state))).into_response()
}

async fn create(Shared(stub): Shared<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    stub.created.store(true, Ordering::SeqCst);
    stub.begin("/provisions", body);
    (StatusCode::CREATED, Json(document("PROVISION_BODY", provision("PENDING")))).into_response()
}

async fn action(Shared(stub): Shared<Arc<Stub>>, Path((id, action)): Path<(i64, String)>, body: String) -> Response {
    if action == "retry" && id == 8 {
        // The message is for people and says nothing a client could parse; the context says it all.
        let context = json!({"error": "busy", "provision_id": 8, "operation": record(3, "running", Value::Null)});
        return failure(StatusCode::METHOD_NOT_ALLOWED, "occupé, revenez plus tard", context);
    }
    stub.begin(&format!("/provisions/{id}/{action}"), serde_json::from_str(&body).unwrap_or(Value::Null));
    StatusCode::NO_CONTENT.into_response()
}

impl Stub {
    /// Records a POST that starts an operation.
    fn begin(&self, path: &str, body: Value) {
        self.posts.lock().unwrap().push((path.to_string(), body));
        self.started.fetch_add(1, Ordering::SeqCst);
        self.operation_reads.store(0, Ordering::SeqCst);
    }
}

/// An operation record as the server serves it.
fn record(id: i64, status: &str, error: Value) -> Value {
    let failed = status == "failed";
    json!({"id": id, "provision_id": 7, "kind": "create", "status": status, "queued": false, "cancel_requested": false,
           "started": true, "owner_pid": 42, "created_time": 1, "heartbeat_time": 2, "finished_time": null,
           "error": error, "stage": if failed { json!("APPLYING") } else { Value::Null },
           "system": if failed { json!("terraform") } else { Value::Null }})
}

/// The id of the operation started last.
fn newest(stub: &Stub) -> i64 {
    5 + stub.started.load(Ordering::SeqCst) as i64
}

/// Newest first: the operation started last, then (on a provision not just created) an older
/// one that succeeded.
async fn operations(Shared(stub): Shared<Arc<Stub>>) -> Json<Value> {
    let reads = stub.operation_reads.fetch_add(1, Ordering::SeqCst);
    let ending = stub.ending.lock().unwrap().clone();
    let (status, error) = match reads {
        0..=1 => ("running", Value::Null),
        // Words a client could not read a stage or a system from.
        _ if ending == "failed" => ("failed", json!("ça n'a pas marché")),
        _ => (ending.as_str(), Value::Null),
    };
    let mut records = vec![record(newest(&stub), status, error)];
    if !stub.created.load(Ordering::SeqCst) {
        records.push(json!({"id": 1, "provision_id": 7, "kind": "create", "status": "succeeded", "queued": false,
                            "cancel_requested": false, "started": true, "owner_pid": 41, "created_time": 0,
                            "heartbeat_time": 0, "finished_time": 1, "error": null, "stage": null, "system": null}));
    }
    Json(Value::Array(records))
}

/// The progress events of the newest operation: two state changes and a step (events of
/// older operations are not served for it), after the `after` cursor.
async fn events(
    Shared(stub): Shared<Arc<Stub>>,
    Query(query): Query<std::collections::HashMap<String, i64>>,
) -> Json<Value> {
    let op = newest(&stub);
    let all = [
        json!({"id": 10, "operation_id": op, "time": 1, "type": "state_changed", "from": "PENDING", "to": "INIT", "took_ms": 5}),
        json!({"id": 11, "operation_id": op, "time": 1, "type": "step", "text": "sim_host.h[0]: created"}),
        json!({"id": 12, "operation_id": op, "time": 2, "type": "state_changed", "from": "INIT", "to": "PLANNING", "took_ms": 7}),
    ];
    let after = query.get("after").copied().unwrap_or(0);
    let asked = query.get("operation").copied();
    let events: Vec<Value> = all.into_iter().filter(|e| e["id"].as_i64() > Some(after) && asked == Some(op)).collect();
    let next = events.last().and_then(|e| e["id"].as_i64()).unwrap_or(after);
    Json(json!({"events": events, "next": next}))
}

/// The log: four lines, 400 bytes; `pos` absent means "from the end".
async fn poll(Query(query): Query<std::collections::HashMap<String, u64>>) -> Json<Value> {
    let lines = [
        ("info", "Mon Feb 03 06:02:30 2025 [I] Provision 'p' allocated"),
        ("info", "Mon Feb 03 06:02:30 2025 [I] State changed from PENDING to INIT"),
        ("debug", "Mon Feb 03 06:02:31 2025 [D] terraform says hello"),
        ("info", "Mon Feb 03 06:02:32 2025 [I] State changed from INIT to PLANNING"),
    ];
    let from = query.get("pos").copied().unwrap_or(400) as usize / 100;
    let lines: Vec<Value> =
        lines.iter().skip(from).map(|(level, text)| json!({"level": level, "text": text})).collect();
    Json(json!({"pos": 400, "lines": lines}))
}

async fn serve(stub: Arc<Stub>) -> String {
    let app = Router::new()
        .route("/api/v1/providers", get(providers).post(create_provider))
        .route("/api/v1/drivers/{name}", get(driver))
        .route("/api/v1/provisions", post(create))
        .route("/api/v1/provisions/{id}", get(show))
        .route("/api/v1/provisions/{id}/operations", get(operations))
        .route("/api/v1/provisions/{id}/logs/poll", get(poll))
        .route("/api/v1/provisions/{id}/events", get(events))
        .route("/api/v1/provisions/{id}/{action}", post(action))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn client(url: &str, password: &str) -> Client {
    let mut config = Config::new(url, Credentials::new("admin", password)).unwrap();
    config.poll = Duration::from_millis(5);
    Client::new(&config).unwrap()
}

#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<Progress>>>);

impl Observer for Heard {
    fn observe(&mut self, id: i64, progress: Progress) {
        assert_eq!(id, 7);
        self.0.lock().unwrap().push(progress);
    }
}

#[tokio::test]
async fn documents_are_unwrapped_and_refusals_keep_their_variant() {
    let url = serve(Arc::default()).await;
    let client = client(&url, "pw");
    let providers = client.providers().await.unwrap();
    assert_eq!(providers, [json!({"id": 1, "name": "sim", "driver": "sim", "provision_ids": []})]);
    let shown = client.provision(7, false).await.unwrap();
    assert_eq!(shown.provision["state"], "APPLYING");
    assert_eq!(shown.provision, provision("APPLYING"), "the body, unwrapped from its document");
    assert_eq!(shown.running.map(|op| (op.id, op.owner_pid)), Some((5, 42)), "the running one of two");

    let missing = client.provision(9, false).await.unwrap_err();
    assert!(matches!(&missing, Error::NotFound { message } if message == "provision 9 does not exist"), "{missing:?}");
    let new = NewProvider { driver: "sim".into(), name: None, description: None, connection: json!({}) };
    let invalid = client.create_provider(&new).await.unwrap_err();
    let Error::Invalid { fields, .. } = &invalid else { panic!("{invalid:?}") };
    assert_eq!(
        (fields[0].field.as_str(), fields[0].messages.as_slice()),
        ("api_token", &["is missing".to_string()][..])
    );
    let busy = client.request(8, &Request::Retry, Box::new(Heard::default())).await.unwrap_err();
    assert!(matches!(&busy, Error::Busy { provision_id: 8, operation } if operation.id == 3), "{busy:?}");
    assert_eq!(busy.exit_code(), crate::service::exit::BUSY);

    let denied = self::client(&url, "wrong").providers().await.unwrap_err();
    assert!(matches!(&denied, Error::Forbidden { message } if message == "Invalid credentials"), "{denied:?}");
}

#[tokio::test]
async fn a_create_is_followed_to_its_end_with_each_state_change() {
    let stub = Arc::new(Stub::default());
    *stub.ending.lock().unwrap() = "succeeded".into();
    let url = serve(stub.clone()).await;
    let heard = Heard::default();
    let new = NewProvision { driver: "sim".into(), values: json!({"oneform_hosts": 1}), ..Default::default() };
    let Started::Ran(ran) = client(&url, "pw").create(&new, false, Box::new(heard.clone())).await.unwrap() else {
        panic!("not followed")
    };
    assert_eq!(ran.result.unwrap(), State::Running);
    assert_eq!(ran.provision["state"], "RUNNING");
    let heard = heard.0.lock().unwrap().clone();
    assert_eq!(heard[0], Progress::Created { name: "p".into(), driver: "sim".into() });
    let changes: Vec<(State, State)> = heard
        .iter()
        .filter_map(|p| match p {
            Progress::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [(State::Pending, State::Init), (State::Init, State::Planning)], "{heard:?}");
    assert!(heard.contains(&Progress::Step("sim_host.h[0]: created".into())), "steps reach the caller: {heard:?}");
    let posts = stub.posts.lock().unwrap().clone();
    let body = json!({"driver": "sim", "deployment_type": "only", "provider_id": 1, "user_inputs_values": {"oneform_hosts": 1}});
    assert_eq!(posts, [("/provisions".to_string(), body)], "the only deployment and provider are named");
}

#[tokio::test]
async fn a_failed_operation_is_the_error_the_server_recorded_with_its_typed_system() {
    let stub = Arc::new(Stub::default());
    *stub.ending.lock().unwrap() = "failed".into();
    let url = serve(stub.clone()).await;
    let ran = client(&url, "pw").request(7, &Request::ScaleUp { amount: 2 }, Box::new(Heard::default())).await.unwrap();
    let error = ran.result.unwrap_err();
    assert_eq!(error.to_string(), "ça n'a pas marché", "shown as the server recorded it");
    assert!(matches!(error, Error::Upstream { system: crate::service::System::Terraform, .. }), "from `system`");
    assert_eq!(ran.provision["state"], "APPLYING_FAILURE");
    let posts = stub.posts.lock().unwrap().clone();
    assert_eq!(posts, [("/provisions/7/add-host".to_string(), json!({"amount": 2}))]);
}

#[tokio::test]
async fn a_server_that_is_down_is_named_with_what_to_do() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = client(&url, "pw").providers().await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot reach the formwork server at {url}: ")), "{error}");
    assert!(error.contains("refused") && error.ends_with("is `formwork serve` running?"), "{error}");
}
