//! OneForm's welcome line, and formwork's `/health` and `/metrics` (Prometheus text, read from
//! the database so the counts are true across restarts).
//!
//! `/health` is open (a load balancer's probe): 200 `{"status": "ok"}` when the database
//! answers. `/health?deep=true` runs every check of `formwork doctor` ([`crate::doctor`]) on the
//! server's installation, for an admin only: the route is outside the auth layer, so the handler
//! authenticates the caller with the layer's own [`Authenticator`](crate::service::auth::Authenticator)
//! (401 without or with wrong credentials, 403 outside the oneadmin group), then answers the
//! report, 200 when no check failed and 503 when one did. Neither is in the OpenAPI document,
//! which describes `/api/v1`.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::{ConnectInfo, Query, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiResult, State};

const WELCOME: &str = "Welcome to the OpenNebula Formation Server v1";

pub fn v1_routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(welcome)).routes(routes!(servers)).routes(routes!(forget_server))
}

/// The servers working on the database (several share a PostgreSQL database), what each runs
/// and when each last renewed its lease; an admin's.
#[utoipa::path(get, path = "/servers", tag = "system", responses(
    (status = 200, description = "The servers", body = [crate::service::ServerView]),
    (status = 403, description = "Not an admin"),
))]
async fn servers(
    st: axum::extract::State<State>,
    axum::Extension(caller): axum::Extension<crate::service::Caller>,
) -> ApiResult<Json<Vec<crate::service::ServerView>>> {
    let service = st.service.clone();
    Ok(Json(super::blocking(move || service.servers(&caller)).await?))
}

/// Gives up on a server that will not come back (`formwork servers forget`): removes it and the
/// marks of its Terraform runs that never recorded their end; refused while its lease lives. An
/// admin's.
#[utoipa::path(delete, path = "/servers/{id}", tag = "system", params(("id" = String, Path)), responses(
    (status = 200, description = "What was given up", body = crate::service::Forgotten),
    (status = 403, description = "Not an admin"),
    (status = 404, description = "No such server and no run of it"),
    (status = 409, description = "The server's lease is live"),
))]
async fn forget_server(
    st: axum::extract::State<State>,
    axum::Extension(caller): axum::Extension<crate::service::Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<crate::service::Forgotten>> {
    let service = st.service.clone();
    Ok(Json(super::blocking(move || service.forget_server(&caller, &id)).await?))
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

/// `/health`'s query: `deep=true` asks for every check.
#[derive(serde::Deserialize)]
struct Health {
    deep: Option<String>,
}

/// 200 when the database answers; with `deep=true`, the installation's checks (an admin's).
async fn health(st: axum::extract::State<State>, query: Query<Health>, req: Request) -> ApiResult<Response> {
    match query.deep.as_deref() {
        None | Some("false") => {
            let service = st.service.clone();
            super::blocking(move || service.queue_length()).await?;
            Ok(Json(json!({"status": "ok"})).into_response())
        }
        Some("true") => {
            // Read before any await: a request's body is not shared across threads.
            let client = req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
            let header = req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default().to_owned());
            Ok(deep_health(&st, client, header.as_deref()).await)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("deep={other} is neither true nor false; ask /health?deep=true for every check"),
        )),
    }
}

/// The doctor's report for a caller of the oneadmin group, authenticated as the auth layer
/// does it (failed logins slowing their address down included): 200 when no check failed, 503
/// with the same report when one did.
async fn deep_health(st: &State, client: std::net::IpAddr, authorization: Option<&str>) -> Response {
    let caller = match st.auth.authenticate_from(client, authorization).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = caller.must_be_admin() {
        return ApiError::from(e).into_response();
    }
    let report = crate::doctor::examine(st.service.settings()).await;
    if !report.ok {
        let failed: Vec<&str> = report.failed().map(|c| c.name).collect();
        tracing::warn!(?failed, user = %caller.uname, "deep health check found failures");
    }
    let status = if report.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report)).into_response()
}

async fn metrics(st: axum::extract::State<State>) -> ApiResult<impl IntoResponse> {
    let service = st.service.clone();
    let m = super::blocking(move || service.metrics()).await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP formwork_server_info The server that answered (several may share the database).");
    let _ = writeln!(out, "# TYPE formwork_server_info gauge");
    let me = st.service.me();
    let _ = writeln!(out, "formwork_server_info{{id=\"{}\",pid=\"{}\"}} 1", me.token, me.pid);
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
