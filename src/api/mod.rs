//! The REST API: OneForm's routes (§4.2 of the spec) over the service layer, for OpenNebula's
//! users, plus formwork's own (`/logs/stream`, `/operations`, `/cancel`, driver `schema` and
//! `validate`), `/api/v1/openapi.json` (OpenAPI 3.1 generated from the route code), `/metrics`
//! and `/health`.
//!
//! Every `/api/v1` request is authenticated first ([`crate::service::auth`]), but for the
//! OpenAPI document, which with `/health`, `/metrics` and `/` is routed outside the auth layer;
//! a change needs the oneadmin group (OneForm's rule), and what a caller sees follows the
//! objects' permission bits. Both are checked by the service, whose every method takes the
//! [`crate::service::Caller`]: handlers parse the request, call the service with the caller
//! and map the answer; the statuses come from the service's typed errors ([`error`]).
//!
//! Map: [`serve`] (start-up, graceful stop) → [`listen`] (TLS, connection limits) →
//! [`router`] (layers: [`audit`], authentication, request time limit) → [`drivers`],
//! [`providers`], [`provisions`], [`system`].

mod audit;
mod body;
mod document;
mod drivers;
mod error;
mod listen;
mod providers;
mod provisions;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

use crate::service::auth::{self, Authenticator};
use crate::service::{Drivers, Error, Service};
use audit::{Audit, Who};

/// What handlers share.
#[derive(Clone)]
pub struct State {
    pub service: Arc<Service>,
    pub drivers: Arc<Drivers>,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<Audit>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Runs blocking service work (database reads of many rows) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(Error::internal)?
}

#[derive(OpenApi)]
#[openapi(
    info(title = "formwork", description = "OneForm's REST API, served by formwork", license(name = "Apache-2.0")),
    tags((name = "drivers"), (name = "providers"), (name = "provisions"), (name = "system")),
    modifiers(&BasicAuth, &CommonErrors),
    security(("basic" = []))
)]
struct ApiDoc;

/// Declares HTTP Basic as the API's security scheme.
struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
    }
}

/// Every operation can answer each of the common errors (bad input, credentials, permission,
/// unknown object, time limit, failed-login slowdown, failures, connection limit), each with
/// the error body.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |text: &str| {
            ResponseBuilder::new()
                .description(text)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        let common = [
            ("400", "Bad input: `context` names each wrong field"),
            ("401", "No or wrong credentials"),
            ("403", "Not in the oneadmin group, or the permission bits do not allow it"),
            ("404", "No such object"),
            ("408", "Not answered within `request_timeout`"),
            ("429", "Too many failed logins for this user from this address; wait `Retry-After` seconds"),
            ("500", "formwork's own failure"),
            ("502", "OpenNebula, Terraform or Ansible failed"),
            ("503", "Over `max_connections`; retry after `Retry-After` seconds"),
        ];
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten() {
                for (code, text) in common {
                    op.responses.responses.entry(code.to_string()).or_insert_with(|| error(text).into());
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .entry("ErrorBody".into())
            .or_insert_with(<document::schema::ErrorBody as utoipa::PartialSchema>::schema);
    }
}

/// The whole application: `/api/v1` (authenticated), and outside the auth layer the OpenAPI
/// document, `/metrics`, `/health` and the welcome line. Open routes are a router of their
/// own merged beside the authenticated one, so no path can reach a handler unauthenticated
/// by resembling an open one.
pub fn router(state: State) -> axum::Router {
    let (v1, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(drivers::routes())
        .merge(providers::routes())
        .merge(provisions::routes())
        .merge(system::v1_routes())
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    let doc = Arc::new(doc);
    let limit = state.service.settings().server.request_timeout;
    let v1 = v1
        .layer(axum::middleware::from_fn_with_state(limit, time_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(axum::middleware::from_fn_with_state(state.audit.clone(), audit::record));
    let openapi = move || async move { axum::Json(doc.as_ref().clone()) };
    let open = system::open_routes().route("/api/v1/openapi.json", axum::routing::get(openapi));
    axum::Router::new()
        .nest("/api/v1", v1)
        .merge(open)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(text_when_asked))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("no route {}; see /api/v1/openapi.json", uri.path()))
}

/// Every `/api/v1` request names its caller (failed logins slow their client down); a change
/// needs the oneadmin group (OneForm's before-filter; the service checks it again). The
/// answer carries who it was for ([`Who`]), for the audit log.
async fn authenticate(
    axum::extract::State(state): axum::extract::State<State>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
    let header = req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default());
    let caller = match state.auth.authenticate_from(client, header).await {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(error = %e, %client, "request refused: not authenticated");
            let mut response = e.into_response();
            response.extensions_mut().insert(Who::Refused(auth::claimed_user(header)));
            return response;
        }
    };
    let mut response = match caller.must_be_admin() {
        Err(e) if req.method() != Method::GET => ApiError::from(e).into_response(),
        _ => {
            req.extensions_mut().insert(caller.clone());
            next.run(req).await
        }
    };
    response.extensions_mut().insert(Who::Caller(caller));
    response
}

/// A request that has not been answered in `request_timeout` is answered 408. What it asked
/// for may still have been done (a change is recorded before it is answered): the message says
/// to look before retrying.
async fn time_limit(axum::extract::State(limit): axum::extract::State<Duration>, req: Request, next: Next) -> Response {
    let path = req.extensions().get::<axum::extract::OriginalUri>().map_or(req.uri().path(), |u| u.path());
    let what = format!("{} {path}", req.method());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(request = %what, "request timed out");
            let message = format!(
                "{what} took longer than {} (request_timeout) and was abandoned; \
                 read the object before retrying a change, it may have been made",
                crate::units::duration(limit)
            );
            ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, message).into_response()
        }
    }
}

/// OneForm answers in JSON when the request's Content-Type is JSON or absent, else in plain
/// text: an error is its message, a success its JSON as text.
async fn text_when_asked(req: Request, next: Next) -> Response {
    let wants_text = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| !t.to_ascii_lowercase().starts_with("application/json"));
    let response = next.run(req).await;
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !wants_text || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let text = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if !parts.status.is_success() => v["message"].as_str().unwrap_or_default().to_string(),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(text))
}

/// How long in-flight requests may take to finish once a stop was asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// What `formwork serve` checks and opens before it touches the data: the listening socket and
/// TLS files, who may log in, the audit log.
pub struct Prepared {
    front: listen::Front,
    auth: Arc<Authenticator>,
    audit: Arc<Audit>,
}

/// Binds the address, reads the TLS files and the credentials, opens the audit log: every
/// mistake in the server's settings is reported before the database is opened.
pub async fn prepare(settings: &crate::settings::Settings) -> Result<Prepared, Error> {
    let front = listen::Front::bind(&settings.server).await?;
    let auth = Arc::new(Authenticator::new(auth_mode(settings)?, auth::Limits::default()).map_err(Error::internal)?);
    let audit = Arc::new(Audit::open(&settings.server.audit_log)?);
    Ok(Prepared { front, auth, audit })
}

/// `formwork serve` on what [`prepare`] made ready: takes over interrupted operations, listens until
/// SIGTERM or SIGINT, then stops accepting (calling `stopping`), lets in-flight requests finish
/// (at most [`DRAIN`]) and returns. Operations still running are left to the next start, which
/// resumes them from their last checkpoint; their tools get SIGTERM when the process's tasks are
/// dropped.
pub async fn serve(
    prepared: Prepared,
    service: Arc<Service>,
    drivers: Drivers,
    ready: impl FnOnce(std::net::SocketAddr, &str),
    stopping: impl FnOnce(),
) -> Result<(), Error> {
    let Prepared { front, auth, audit } = prepared;
    let (addr, url) = (front.local_addr()?, front.url()?);
    service.serve_as(crate::service::FormApi { url: url.clone(), sessions: auth.clone() });
    let (report, _) = drivers.sync(&crate::service::Caller::local())?;
    for failed in &report.failed {
        tracing::warn!(driver = %failed.name, error = %failed.error, "driver failed verification");
    }
    let role = service.settings().server.role;
    let address = if role == crate::settings::Role::Worker { "" } else { url.as_str() };
    service.announce(role.name(), address)?;
    if service.runs_operations() {
        let queued = service.recover_queue()?;
        if !queued.is_empty() {
            tracing::info!(?queued, "resuming interrupted operations");
        }
        if service.shares_database() {
            tokio::spawn(service.clone().keep_taking_over());
        }
    }
    // The signals are hooked before readiness is told: a SIGTERM or SIGHUP right after the
    // listening line (systemd's restart or reload) is handled, not the default action's death.
    tokio::spawn(reopen_on_hangup(audit.clone()));
    let stop_signal = stop_signal();
    let state = State { service: service.clone(), drivers: Arc::new(drivers), auth, audit };
    if role == crate::settings::Role::Worker {
        // A worker answers no request: it runs operations until told to stop.
        drop(front);
        ready(addr, "");
        stop_signal.await;
        stopping();
        return Ok(());
    }
    ready(addr, &url);
    let stop = async {
        stop_signal.await;
        stopping();
        tracing::info!("stopping: no new connections; in-flight requests get {}", crate::units::duration(DRAIN));
    };
    front.run(router(state), stop, DRAIN).await;
    Ok(())
}

/// Reopens the audit log on every SIGHUP, for log rotation; the server goes on (SIGHUP's
/// default would end it). SIGHUP is hooked when this is called, not when the task first runs.
fn reopen_on_hangup(audit: Arc<Audit>) -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let hooked = signal(SignalKind::hangup());
    async move {
        let Ok(mut hangup) = hooked else { return };
        while hangup.recv().await.is_some() {
            audit.reopen();
        }
    }
}

/// SIGTERM or SIGINT (whatever the shell that started formwork did to SIGINT: tokio's
/// handler replaces an inherited ignore), both hooked when this is called.
fn stop_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let hooked = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    async move {
        let (Ok(mut term), Ok(mut int)) = hooked else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// Users are checked by OpenNebula when formwork has an endpoint; otherwise only the
/// `user:password` in the ONE_AUTH file is accepted.
fn auth_mode(settings: &crate::settings::Settings) -> Result<auth::Mode, Error> {
    if let Some(endpoint) = &settings.one_xmlrpc {
        return Ok(auth::Mode::OpenNebula { endpoint: endpoint.clone() });
    }
    let path = settings.one_auth.as_ref().ok_or_else(|| {
        Error::invalid(
            "formwork serve needs users: set ONE_XMLRPC (OpenNebula checks them) or ONE_AUTH (a user:password file)",
        )
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read the credentials file {} (ONE_AUTH): {e}", path.display())))?;
    let (user, password) = text.trim().split_once(':').ok_or_else(|| {
        Error::invalid(format!("the credentials file {} (ONE_AUTH) must hold user:password", path.display()))
    })?;
    Ok(auth::Mode::Single { user: user.to_string(), password: password.to_string() })
}
