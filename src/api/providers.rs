//! `/api/v1/providers`: OneForm's provider routes (§4.2), and the chmod/chown/chgrp bodies
//! shared with provisions.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{Body, Id};
use super::document::schema::{Envelope, ErrorBody};
use super::document::{wrap, wrap_all};
use super::error::ApiError;
use super::provisions::flag;
use super::{ApiResult, State};
use crate::service::{Caller, Kind, NewProvider};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(path))
        .routes(routes!(chmod))
        .routes(routes!(chown))
        .routes(routes!(chgrp))
}

/// `?enabled=true&include_sensitive=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Only providers whose driver is enabled.
    #[serde(default)]
    enabled: Option<String>,
    /// Connection values in clear (needs MANAGE).
    #[serde(default)]
    include_sensitive: Option<String>,
}

/// `chmod` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Chmod {
    /// Three octal digits, e.g. "640".
    octet: String,
}

/// `chown` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Chown {
    owner_id: i64,
    group_id: Option<i64>,
}

/// `chgrp` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct Chgrp {
    group_id: i64,
}

/// `POST /providers` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateProvider {
    driver: String,
    connection_values: Option<serde_json::Map<String, Value>>,
    name: Option<String>,
    description: Option<String>,
}

#[utoipa::path(get, path = "/providers", tag = "providers", params(ReadParams),
    responses((status = 200, description = "DOCUMENTs of the providers the caller may use", body = [Envelope])))]
async fn list(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ReadParams>,
) -> ApiResult<Json<Value>> {
    let mut docs = st.service.providers_for(&caller, flag(&q.include_sensitive))?;
    if flag(&q.enabled) {
        let enabled = st.drivers.list(true)?.iter().map(|d| d.id().to_string()).collect::<Vec<_>>();
        docs.retain(|d| d.body["driver"].as_str().is_some_and(|driver| enabled.iter().any(|e| e == driver)));
    }
    Ok(Json(wrap_all(&docs)))
}

#[utoipa::path(post, path = "/providers", tag = "providers", request_body = CreateProvider,
    responses((status = 201, description = "The new DOCUMENT", body = Envelope), (status = 400, description = "Bad input, named in `context`", body = ErrorBody)))]
async fn create(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new = NewProvider {
        driver: body.required_string("driver")?.to_lowercase(),
        name: body.string("name")?,
        description: body.string("description")?,
        connection: Value::Object(body.object("connection_values")?),
    };
    let doc = st.service.create_provider_for(&caller, &new)?;
    Ok((StatusCode::CREATED, Json(wrap(&doc))))
}

#[utoipa::path(get, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path), ReadParams),
    responses((status = 200, description = "The DOCUMENT", body = Envelope), (status = 404, description = "No such provider", body = ErrorBody)))]
async fn show(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    Query(q): Query<ReadParams>,
) -> ApiResult<Json<Value>> {
    Ok(Json(wrap(&st.service.provider_for(&caller, id, flag(&q.include_sensitive))?)))
}

#[utoipa::path(get, path = "/providers/{id}/path", tag = "providers", params(("id" = i64, Path)),
    responses((status = 200, description = "`{\"path\": <driver folder>}`", body = Value)))]
async fn path(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"path": st.service.provider_path(&caller, id)?})))
}

#[utoipa::path(patch, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)), request_body = Value,
    responses((status = 200, description = "The updated DOCUMENT", body = Envelope)))]
async fn update(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<Json<Value>> {
    let (name, description) = (body.string("name")?, body.string("description")?);
    let connection = Value::Object(body.object("connection")?);
    let doc = st.service.update_provider(&caller, id, name.as_deref(), description.as_deref(), &connection)?;
    Ok(Json(wrap(&doc)))
}

#[utoipa::path(delete, path = "/providers/{id}", tag = "providers", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 405, description = "Provisions still use it, or it is the onprem provider", body = ErrorBody)))]
async fn delete(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
) -> ApiResult<StatusCode> {
    st.service.delete_provider(&caller, id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/providers/{id}/chmod", tag = "providers", params(("id" = i64, Path)), request_body = Chmod,
    responses((status = 204, description = "Permissions changed")))]
async fn chmod(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    chmod_of(&st, &caller, Kind::Provider, id, &body)
}

#[utoipa::path(post, path = "/providers/{id}/chown", tag = "providers", params(("id" = i64, Path)), request_body = Chown,
    responses((status = 204, description = "Owner changed")))]
async fn chown(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    chown_of(&st, &caller, Kind::Provider, id, &body, "owner_id").await
}

#[utoipa::path(post, path = "/providers/{id}/chgrp", tag = "providers", params(("id" = i64, Path)), request_body = Chgrp,
    responses((status = 204, description = "Group changed")))]
async fn chgrp(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Id(id): Id,
    body: Body,
) -> ApiResult<StatusCode> {
    chown_of(&st, &caller, Kind::Provider, id, &body, "group_id").await
}

pub fn chmod_of(st: &State, caller: &Caller, kind: Kind, id: i64, body: &Body) -> ApiResult<StatusCode> {
    let octet = match body.required("octet")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(ApiError::field("octet", "must be three octal digits such as \"640\"")),
    };
    st.service.chmod(caller, kind, id, &octet)?;
    Ok(StatusCode::NO_CONTENT)
}

/// chown (`owner_id`, optional `group_id`) or chgrp (`group_id`), by which field is required.
pub async fn chown_of(
    st: &State,
    caller: &Caller,
    kind: Kind,
    id: i64,
    body: &Body,
    required: &str,
) -> ApiResult<StatusCode> {
    body.required(required)?;
    let uid = if required == "owner_id" { body.int("owner_id")? } else { None };
    let gid = body.int("group_id")?;
    // OpenNebula's ids are 32-bit (XML-RPC i4).
    for (field, value) in [("owner_id", uid), ("group_id", gid)] {
        if value.is_some_and(|v| !(0..=i64::from(i32::MAX)).contains(&v)) {
            return Err(ApiError::field(field, format!("must be an OpenNebula id, 0 to {}", i32::MAX)));
        }
    }
    st.service.chown(caller, kind, id, uid, gid).await?;
    Ok(StatusCode::NO_CONTENT)
}
