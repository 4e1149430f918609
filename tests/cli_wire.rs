//! The CLI through a server reads only the typed wire contract: a stand-in server answers every
//! request with messages in words no client could parse (French, here), and the typed fields
//! formwork serves — an error's `context`, an operation record's `status`/`started`/`system`,
//! progress events — and `formwork --server` still prints the same outcome and exits with the
//! same code as it does against `formwork serve`.

// Tests spawn formwork.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// What the stand-in has been asked so far: provision 7's retry and provision 9's cancel.
#[derive(Default)]
struct Asked {
    retried: AtomicBool,
    cancelled: AtomicBool,
}

fn record(id: i64, provision: i64, kind: &str, status: &str, extra: Value) -> Value {
    let mut record = json!({"id": id, "provision_id": provision, "kind": kind, "status": status, "queued": false,
                            "cancel_requested": false, "started": true, "owner_pid": 4242, "created_time": 1,
                            "heartbeat_time": 2, "finished_time": null, "error": null, "stage": null, "system": null});
    for (key, value) in extra.as_object().into_iter().flatten() {
        record[key] = value.clone();
    }
    record
}

async fn operations(State(asked): State<Arc<Asked>>, Path(id): Path<i64>) -> Json<Value> {
    let old = record(1, id, "create", "succeeded", json!({}));
    Json(match id {
        7 if asked.retried.load(Ordering::SeqCst) => json!([
            record(
                6,
                7,
                "retry",
                "failed",
                json!({"error": "rien ne va plus", "stage": "CONFIGURING_PROVISION", "system": "ansible"})
            ),
            old
        ]),
        9 if asked.cancelled.load(Ordering::SeqCst) => {
            json!([record(6, 9, "scale", "cancelled", json!({"started": false, "error": "annulée"})), old])
        }
        9 => json!([record(6, 9, "scale", "running", json!({"queued": true, "started": false})), old]),
        _ => json!([old]),
    })
}

async fn events(Path(id): Path<i64>) -> Json<Value> {
    let events = if id == 7 {
        json!([
            {"id": 3, "operation_id": 6, "time": 1, "type": "state_changed", "from": "CONFIGURING_PROVISION_FAILURE", "to": "CONFIGURING_PROVISION", "took_ms": 2},
            {"id": 4, "operation_id": 6, "time": 2, "type": "failed", "text": "la recette a échoué"},
            {"id": 5, "operation_id": 6, "time": 2, "type": "state_changed", "from": "CONFIGURING_PROVISION", "to": "CONFIGURING_PROVISION_FAILURE", "took_ms": 900}
        ])
    } else {
        json!([])
    };
    Json(json!({"events": events, "next": 5}))
}

async fn show(Path(id): Path<i64>) -> Json<Value> {
    let body = json!({"id": id, "name": "p", "driver": "sim", "state": "CONFIGURING_PROVISION_FAILURE",
                      "user_inputs_values": {}, "historic": []});
    Json(json!({"DOCUMENT": {"ID": id.to_string(), "NAME": "p", "TEMPLATE": {"PROVISION_BODY": body}}}))
}

async fn action(State(asked): State<Arc<Asked>>, Path((id, action)): Path<(i64, String)>) -> Response {
    match (id, action.as_str()) {
        (8, _) => {
            let context =
                json!({"error": "busy", "provision_id": 8, "operation": record(3, 8, "create", "running", json!({}))});
            let body = json!({"err_code": 405, "message": "occupée, revenez plus tard", "context": context});
            (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
        }
        (7, "retry") => {
            asked.retried.store(true, Ordering::SeqCst);
            StatusCode::NO_CONTENT.into_response()
        }
        (9, "cancel") => {
            asked.cancelled.store(true, Ordering::SeqCst);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"err_code": 404, "message": "introuvable", "context": {"error": "not_found"}})),
        )
            .into_response(),
    }
}

/// Serves the stand-in on a free port from a thread of its own; returns its URL.
fn serve() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route("/api/v1/provisions/{id}", get(show))
                .route("/api/v1/provisions/{id}/operations", get(operations))
                .route("/api/v1/provisions/{id}/events", get(events))
                .route("/api/v1/provisions/{id}/{action}", post(action))
                .with_state(Arc::new(Asked::default()));
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

/// Runs `formwork --server URL ARGS` as `oneadmin`; returns (exit code, stdout, stderr).
fn formwork(url: &str, args: &[&str]) -> (i32, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_formwork"))
        .args(["--server", url])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("ONEFORM_USER", "oneadmin")
        .env("ONEFORM_PASSWORD", "pw")
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_busy_answer_exits_3_from_its_context_whatever_its_message() {
    let url = serve();
    let (code, _, stderr) = formwork(&url, &["provision", "retry", "8"]);
    assert_eq!(code, 3, "busy is exit 3: {stderr}");
    assert!(
        stderr.contains("error: provision 8 is busy: operation 3 (create) is running in process 4242"),
        "said as locally, from the context's operation: {stderr}"
    );
    assert!(stderr.contains("`formwork provision cancel 8`"), "and the CLI's hint: {stderr}");
}

#[test]
fn a_followed_operation_reports_typed_progress_and_ends_as_its_record_says() {
    let url = serve();
    let (code, stdout, stderr) = formwork(&url, &["provision", "retry", "7"]);
    assert_eq!(code, 1, "a failed operation fails the command: {stderr}");
    assert!(stdout.is_empty(), "nothing on stdout for a failure: {stdout}");
    assert!(
        stderr.contains("[provision 7] CONFIGURING_PROVISION_FAILURE → CONFIGURING_PROVISION"),
        "state changes come from typed events: {stderr}"
    );
    assert!(stderr.contains("[provision 7] la recette a échoué"), "failures too: {stderr}");
    assert!(stderr.contains("error: rien ne va plus"), "the outcome is the record's error: {stderr}");
    assert!(stderr.contains("`formwork provision retry 7`"), "the CLI's hint, from the record's stage: {stderr}");
}

#[test]
fn a_cancel_of_a_queued_operation_is_read_from_started_not_from_its_error_text() {
    let url = serve();
    let (code, stdout, stderr) = formwork(&url, &["provision", "cancel", "9"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("was waiting in the queue: cancelled, nothing ran"), "{stdout}");
    let (code, stdout, _) = formwork(&url, &["--json", "provision", "cancel", "9"]);
    assert_eq!((code, serde_json::from_str::<Value>(&stdout).ok()), (1, None), "no running operation any more");
}
