//! OneForm's welcome line, and formwork's `/health` and `/metrics` (Prometheus text, read from
//! the database so the counts are true across restarts).

use std::fmt::Write as _;

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, State};

const WELCOME: &str = "Welcome to the OpenNebula Formation Server v1";

pub fn v1_routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(welcome))
}

/// Routes outside `/api/v1`, without authentication.
pub fn open_routes() -> axum::Router<State> {
    axum::Router::new()
        .route("/", axum::routing::get(welcome))
        .route("/api/v1/", axum::routing::get(welcome))
        .route("/health", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics))
}

#[utoipa::path(get, path = "/", tag = "system", responses((status = 200, description = "OneForm's welcome line", body = String)))]
async fn welcome() -> &'static str {
    WELCOME
}

/// 200 when the database answers.
async fn health(st: axum::extract::State<State>) -> ApiResult<Json<Value>> {
    let service = st.service.clone();
    super::blocking(move || service.queue_length()).await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn metrics(st: axum::extract::State<State>) -> ApiResult<impl IntoResponse> {
    let service = st.service.clone();
    let m = super::blocking(move || service.metrics()).await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP formwork_operations_total Operations by kind and result.");
    let _ = writeln!(out, "# TYPE formwork_operations_total counter");
    for (kind, status, n) in &m.operations {
        let _ = writeln!(out, "formwork_operations_total{{kind=\"{kind}\",result=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP formwork_provisions Provisions by state.");
    let _ = writeln!(out, "# TYPE formwork_provisions gauge");
    for (state, n) in &m.provisions {
        let _ = writeln!(out, "formwork_provisions{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP formwork_queue_length Operations waiting for a slot.");
    let _ = writeln!(out, "# TYPE formwork_queue_length gauge");
    let _ = writeln!(out, "formwork_queue_length {}", m.queued);
    let _ = writeln!(out, "# HELP formwork_operations_running Operations holding a slot.");
    let _ = writeln!(out, "# TYPE formwork_operations_running gauge");
    let _ = writeln!(out, "formwork_operations_running {}", m.running);
    let _ = writeln!(out, "# HELP formwork_stage_duration_seconds Finished stage attempts by stage.");
    let _ = writeln!(out, "# TYPE formwork_stage_duration_seconds histogram");
    for stage in &m.stages {
        let s = &stage.stage;
        for (le, n) in &stage.buckets {
            let _ = writeln!(out, "formwork_stage_duration_seconds_bucket{{stage=\"{s}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "formwork_stage_duration_seconds_bucket{{stage=\"{s}\",le=\"+Inf\"}} {}", stage.count);
        let _ = writeln!(out, "formwork_stage_duration_seconds_sum{{stage=\"{s}\"}} {}", stage.sum);
        let _ = writeln!(out, "formwork_stage_duration_seconds_count{{stage=\"{s}\"}} {}", stage.count);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
