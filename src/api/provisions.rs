//! `/api/v1/provisions`: OneForm's provision routes (§4.2), FireEdge's `add-host` and
//! `remove-host`, and formwork's `cancel`, `operations`, `events` (typed progress, polled or
//! streamed) and `logs/stream`. Handlers read the request and call the service; every rule is
//! the service's.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{Body, Id};
use super::document::schema::{Envelope, ErrorBody};
use super::document::wrap;
use super::error::ApiError;
use super::{ApiResult, State};
use crate::service::{
    Caller, Change, Events, Include, Kind, NewProvision, Operation, Request, State as ProvisionState, Update,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(unmanaged))
        .routes(routes!(undeploy))
        .routes(routes!(recover))
        .routes(routes!(retry))
        .routes(routes!(scale))
        .routes(routes!(add_host))
        .routes(routes!(remove_host))
        .routes(routes!(add_ip))
        .routes(routes!(remove_ip))
        .routes(routes!(cancel))
        .routes(routes!(chmod))
        .routes(routes!(chown))
        .routes(routes!(chgrp))
        .routes(routes!(logs))
        .routes(routes!(logs_poll))
        .routes(routes!(logs_stream))
        .routes(routes!(operations))
        .routes(routes!(events))
        .routes(routes!(events_stream))
}

/// `?all&include_provider&include_sensitive` (OneForm reads `=true`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Include DONE provisions (list only).
    #[serde(default)]
    all: Option<String>,
    /// Embed the provider's body as `provider`.
    #[serde(default)]
    include_provider: Option<String>,
    /// Sensitive values in clear (needs MANAGE).
    #[serde(default)]
    include_sensitive: Option<String>,
}

/// OneForm's query flags: only `true` sets one.
pub fn flag(v: &Option<String>) -> bool {
    v.as_deref() == Some("true")
}

impl ReadParams {
    fn include(&self) -> Include {
        Include { sensitive: flag(&self.include_sensitive), provider: flag(&self.include_provider) }
    }
}

/// `POST /provisions` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateProvision {
    driver: String,
    deployment_type: String,
    provider_id: i64,
    user_inputs_values: Option<serde_json::Map<String, Value>>,
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(get, path = "/provisions", tag = "provisions", params(ReadParams),
    responses((status = 200, description = "DOCUMENTs of the provisions the caller may use", body = [Envelope])))]
async fn list(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ReadParams>,
) -> ApiResult<axum::response::Response> {
    let service = st.service.clone();
    // Each document is written out as soon as it is built: a list of thousands holds their
    // JSON text, never their trees.
    let text = super::blocking(move || {
        let mut out = vec![b'['];
        service.each_provision_for(&caller, flag(&q.all), q.include(), |doc| {
            if out.len() > 1 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &wrap(&doc)).map_err(crate::service::Error::internal)
        })?;
        out.push(b']');
        Ok(out)
    })
    .await?;
    Ok(axum::response::IntoResponse::into_response(([(axum::http::header::CONTENT_TYPE, "application/json")], text)))
}

#[utoipa::path(post, path = "/provisions", tag = "provisions", request_body = CreateProvision,
    responses((status = 201, description = "The PENDING DOCUMENT; the work runs in the server", body = Envelope),
              (status = 400, description = "Bad input, named in `context`", body = ErrorBody)))]
async fn create(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new = NewProvision {
        driver: body.required_string("driver")?.to_lowercase(),
        deployment: Some(body.required_string("deployment_type")?.to_lowercase()),
        provider_id: Some(body.required("provider_id").and_then(|_| body.int("provider_id"))?.unwrap_or_default()),
        values: Value::Object(body.object("user_inputs_values")?),
        name: body.string("name")?,
        description: body.string("description")?,
    };
    let doc = st.service.submit_create(&caller, &new).await?;
    Ok((StatusCode::CREATED, Json(wrap(&doc))))
}

#[utoipa::path(get, path = "/provisions/{id}", tag = "provisions", params(("id" = i64, Path), ReadParams),
    responses((status = 200, description = "The DOCUMENT", body = Envelope), (status = 404, description = "No such provision", body = ErrorBody)))]
async fn show(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<ReadParams>,
) -> ApiResult<Json<Value>> {
    let service = st.service.clone();
    let doc = super::blocking(move || service.provision_for(&caller, id, q.include())).await?;
    Ok(Json(wrap(&doc)))
}

#[utoipa::path(patch, path = "/provisions/{id}", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 200, description = "The updated DOCUMENT", body = Envelope)))]
async fn update(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<Json<Value>> {
    let values = body.get("user_inputs_values").map(|_| body.object("user_inputs_values")).transpose()?;
    let change = Update {
        name: body.string("name")?,
        description: body.string("description")?,
        values: values.map(Value::Object),
        onedeploy_tags: body.string("onedeploy_tags")?,
    };
    Ok(Json(wrap(&st.service.update_provision(&caller, id, &change).await?)))
}

/// `DELETE ?force=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Force {
    #[serde(default)]
    force: Option<String>,
}

#[utoipa::path(delete, path = "/provisions/{id}", tag = "provisions", params(("id" = i64, Path), Force),
    responses((status = 204, description = "Deleted"), (status = 405, description = "Not in a state that can be deleted", body = ErrorBody)))]
async fn delete(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<Force>,
) -> ApiResult<StatusCode> {
    st.service.delete_provision(&caller, id, flag(&q.force)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/provisions/{id}/unmanaged", tag = "provisions", params(("id" = i64, Path)),
    responses((status = 200, description = "VMs and images formwork did not create on the provision's objects", body = Value)))]
async fn unmanaged(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.service.unmanaged(&caller, id).await?))
}

async fn submit(st: &State, caller: &Caller, id: i64, request: Request) -> ApiResult<StatusCode> {
    st.service.submit(caller, id, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/provisions/{id}/undeploy", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Deprovisioning queued")))]
async fn undeploy(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let resources = Body(body.object("resources")?);
    let request = Request::Deprovision {
        force: body.bool("force")?,
        hosts: resources.ids("hosts")?,
        networks: resources.ids("networks")?,
        datastores: resources.ids("datastores")?,
    };
    submit(&st, &caller, id, request).await
}

#[utoipa::path(post, path = "/provisions/{id}/recover", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Recovery queued")))]
async fn recover(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let name = body.required_string("recover_state")?;
    let target = ProvisionState::parse(&name.to_uppercase())
        .ok_or_else(|| ApiError::field("recover_state", format!("'{name}' is not a provision state")))?;
    submit(&st, &caller, id, Request::Recover { target }).await
}

#[utoipa::path(post, path = "/provisions/{id}/retry", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Retry queued")))]
async fn retry(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    _body: Body,
) -> ApiResult<StatusCode> {
    submit(&st, &caller, id, Request::Retry).await
}

#[utoipa::path(post, path = "/provisions/{id}/scale", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Scaling queued")))]
async fn scale(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let direction = body.required_string("direction")?;
    let nodes = body.required("nodes")?;
    let force = Body(body.object("opts")?).bool("force")?;
    // OneForm reads the direction case-blind (`direction.downcase`).
    let request = match (direction.to_lowercase().as_str(), nodes) {
        ("up", Value::Array(_)) => Request::AddHosts { ips: body.strings("nodes")? },
        ("up", _) => Request::ScaleUp { amount: body.count("nodes")?.unwrap_or_default() },
        ("down", Value::Array(_)) => Request::ScaleDown { ids: body.ids("nodes")?, amount: None, force },
        ("down", _) => Request::ScaleDown { ids: Vec::new(), amount: body.count("nodes")?, force },
        _ => return Err(ApiError::field("direction", format!("'{direction}' is neither \"up\" nor \"down\""))),
    };
    submit(&st, &caller, id, request).await
}

#[utoipa::path(post, path = "/provisions/{id}/add-host", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Scale-up queued (FireEdge's route)")))]
async fn add_host(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let request = match body.get("ips") {
        Some(_) => Request::AddHosts { ips: body.strings("ips")? },
        None => Request::ScaleUp { amount: body.count("amount")?.unwrap_or(1) },
    };
    submit(&st, &caller, id, request).await
}

#[utoipa::path(post, path = "/provisions/{id}/remove-host", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Scale-down queued (FireEdge's route)")))]
async fn remove_host(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let force = body.bool("force")?;
    let request = match body.get("ids") {
        Some(_) => Request::ScaleDown { ids: body.ids("ids")?, amount: None, force },
        None => Request::ScaleDown { ids: Vec::new(), amount: Some(body.count("amount")?.unwrap_or(1)), force },
    };
    submit(&st, &caller, id, request).await
}

#[utoipa::path(post, path = "/provisions/{id}/add-ip", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Public IPs queued")))]
async fn add_ip(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let amount = body.count("amount")?.unwrap_or(1);
    st.service.submit_public_ips(&caller, id, Change::Add { amount }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/provisions/{id}/remove-ip", tag = "provisions", params(("id" = i64, Path)), request_body = Value,
    responses((status = 204, description = "Removal queued")))]
async fn remove_ip(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    let ar_id = body.required("ar_id").and_then(|_| body.int("ar_id"))?.unwrap_or_default();
    st.service.submit_public_ips(&caller, id, Change::Remove { ar_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/provisions/{id}/cancel", tag = "provisions", params(("id" = i64, Path)),
    responses((status = 204, description = "The running operation was asked to stop"), (status = 405, description = "Nothing runs", body = ErrorBody)))]
async fn cancel(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    st.service.cancel(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/provisions/{id}/chmod", tag = "provisions", params(("id" = i64, Path)), request_body = super::providers::Chmod,
    responses((status = 204, description = "Permissions changed")))]
async fn chmod(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    super::providers::chmod_of(&st, &caller, Kind::Provision, id, &body)
}

#[utoipa::path(post, path = "/provisions/{id}/chown", tag = "provisions", params(("id" = i64, Path)), request_body = super::providers::Chown,
    responses((status = 204, description = "Owner changed")))]
async fn chown(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    super::providers::chown_of(&st, &caller, Kind::Provision, id, &body, "owner_id").await
}

#[utoipa::path(post, path = "/provisions/{id}/chgrp", tag = "provisions", params(("id" = i64, Path)), request_body = super::providers::Chgrp,
    responses((status = 204, description = "Group changed")))]
async fn chgrp(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    super::providers::chown_of(&st, &caller, Kind::Provision, id, &body, "group_id").await
}

/// `?page=1&per_page=100&all=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    per_page: Option<String>,
    #[serde(default)]
    all: Option<String>,
}

fn positive(name: &str, text: &Option<String>, default: usize) -> Result<usize, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::field(name, "must be a whole number, 1 or more")),
    }
}

/// A log line as the API serves it: `{level, text}`.
fn line(l: &crate::service::LogLine) -> Value {
    json!({"level": l.level.as_str(), "text": l.text})
}

fn lines(lines: &[crate::service::LogLine]) -> Value {
    Value::Array(lines.iter().map(line).collect())
}

#[utoipa::path(get, path = "/provisions/{id}/logs", tag = "provisions", params(("id" = i64, Path), Page),
    responses((status = 200, description = "A page of the log: page 1 holds the newest lines, in file order", body = Value)))]
async fn logs(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<Page>,
) -> ApiResult<Json<Value>> {
    let (page, per_page) = (positive("page", &q.page, 1)?, positive("per_page", &q.per_page, 100)?);
    let all = st.service.log_lines(&caller, id)?;
    let total = all.len();
    if flag(&q.all) {
        return Ok(Json(json!({"meta": {"mode": "all", "total_lines": total}, "lines": lines(&all)})));
    }
    let end = total.saturating_sub((page - 1).saturating_mul(per_page));
    let start = end.saturating_sub(per_page);
    let meta =
        json!({"page": page, "per_page": per_page, "total_pages": total.div_ceil(per_page), "total_lines": total});
    Ok(Json(json!({"meta": meta, "lines": lines(&all[start..end])})))
}

/// `?pos=<byte offset>`: absent, empty or negative starts at the end. OneForm's own client
/// (`oneprovision logs`) asks its first poll with `?pos` and no value.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pos {
    #[serde(default)]
    pos: Option<String>,
}

impl Pos {
    /// The offset asked for; `None` when none was given (a `pos` with no value is none).
    fn given(&self) -> Option<&str> {
        self.pos.as_deref().map(str::trim).filter(|p| !p.is_empty())
    }
}

#[utoipa::path(get, path = "/provisions/{id}/logs/poll", tag = "provisions", params(("id" = i64, Path), Pos),
    responses((status = 200, description = "Lines written after `pos` and the offset to poll from next", body = Value)))]
async fn logs_poll(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<Pos>,
) -> ApiResult<Json<Value>> {
    let pos = match q.given().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n < 0 => None,
        Some(Ok(n)) => Some(n as u64),
        Some(Err(_)) => return Err(ApiError::field("pos", "must be an integer byte offset")),
    };
    let pos = match pos {
        Some(p) => p,
        None => st.service.log_end(&caller, id)?,
    };
    let (new, next, _) = st.service.log_after(&caller, id, pos)?;
    Ok(Json(json!({"pos": next, "lines": lines(&new)})))
}

#[utoipa::path(get, path = "/provisions/{id}/logs/stream", tag = "provisions", params(("id" = i64, Path), Pos),
    responses((status = 200, description = "Server-Sent Events: each event's data is a log line `{level, text}`", content_type = "text/event-stream")))]
async fn logs_stream(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<Pos>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Checked before the stream starts, so a refusal is an answer, not an empty stream.
    st.service.log_end(&caller, id)?;
    let start = match q.given().map(str::parse::<u64>) {
        Some(Ok(p)) => p,
        _ => 0,
    };
    let service = st.service.clone();
    let stream = polled(start, move |pos| {
        let (lines, next, _) = service.log_after(&caller, id, pos)?;
        let events = lines.iter().map(|l| Event::default().data(line(l).to_string()));
        Ok((events.collect(), next))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A live stream over a source polled from a cursor: `fetch(cursor)` answers what came after it
/// and the next cursor; an empty answer is asked again after 250 ms, and the stream ends when
/// `fetch` fails (the provision was deleted, or the caller lost its right to it).
fn polled<C: Copy + Send + 'static>(
    start: C,
    fetch: impl Fn(C) -> Result<(Vec<Event>, C), crate::service::Error> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let fetch = std::sync::Arc::new(fetch);
    futures_util::stream::unfold((start, std::collections::VecDeque::<Event>::new()), move |(cursor, mut pending)| {
        let fetch = std::sync::Arc::clone(&fetch);
        async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (cursor, pending)));
                }
                match fetch(cursor) {
                    Ok((events, next)) if !events.is_empty() => {
                        pending.extend(events);
                        let first = pending.pop_front().expect("not empty");
                        return Some((Ok(first), (next, pending)));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Err(_) => return None,
                }
            }
        }
    })
}

#[utoipa::path(get, path = "/provisions/{id}/operations", tag = "provisions", params(("id" = i64, Path)),
    responses((status = 200, description = "The provision's operations, newest first", body = Vec<Operation>)))]
async fn operations(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
) -> ApiResult<Json<Vec<Operation>>> {
    Ok(Json(st.service.operations(&caller, id)?))
}

/// The most events one answer holds.
const EVENTS_PAGE: usize = 500;

/// `?operation=<id>&after=<event id>`: the events of one operation only, after a cursor
/// (absent: from the first).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Cursor {
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

impl Cursor {
    fn read(&self) -> Result<(Option<i64>, i64), ApiError> {
        let number = |name: &str, text: &Option<String>| -> Result<Option<i64>, ApiError> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => t.parse::<i64>().map(Some).map_err(|_| ApiError::field(name, "must be an integer id")),
            }
        };
        Ok((number("operation", &self.operation)?, number("after", &self.after)?.unwrap_or(0)))
    }
}

#[utoipa::path(get, path = "/provisions/{id}/events", tag = "provisions", params(("id" = i64, Path), Cursor),
    responses((status = 200, description = "The provision's progress events after the cursor (at most 500), oldest first, and the cursor to ask from next", body = Events)))]
async fn events(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<Cursor>,
) -> ApiResult<Json<Events>> {
    let (operation, after) = q.read()?;
    Ok(Json(st.service.events(&caller, id, operation, after, EVENTS_PAGE)?))
}

#[utoipa::path(get, path = "/provisions/{id}/events/stream", tag = "provisions", params(("id" = i64, Path), Cursor),
    responses((status = 200, description = "Server-Sent Events: each progress event as it is stored, named by its type (state_changed, step, warning, failed), its id the cursor; a reconnecting client's Last-Event-ID resumes after it when `after` is not given", content_type = "text/event-stream")))]
async fn events_stream(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    headers: axum::http::HeaderMap,
    Query(mut q): Query<Cursor>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // An EventSource that reconnects sends the id of the last event it got.
    if q.after.as_deref().is_none_or(|a| a.trim().is_empty()) {
        q.after = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    let (operation, after) = q.read()?;
    // Checked before the stream starts, so a refusal is an answer, not an empty stream.
    st.service.events(&caller, id, operation, after, 0)?;
    let service = st.service.clone();
    let stream = polled(after, move |cursor| {
        let page = service.events(&caller, id, operation, cursor, EVENTS_PAGE)?;
        let events = page.events.iter().map(|e| {
            Event::default()
                .event(e.event.name())
                .id(e.id.to_string())
                .data(serde_json::to_string(e).unwrap_or_default())
        });
        Ok((events.collect(), page.next))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
