//! `/api/v1/drivers`: OneForm's driver routes (§1.9, §4.2), and formwork's `schema` and
//! `validate` (what `formwork driver schema` and `provision validate` print).

use axum::extract::{Path, Query};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::Body;
use super::document::schema::ErrorBody;
use super::provisions::flag;
use super::{ApiResult, State};
use crate::service::{Caller, Error};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(sync))
        .routes(routes!(show))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(schema))
        .routes(routes!(validate))
}

/// `?enabled=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Enabled {
    #[serde(default)]
    enabled: Option<String>,
}

fn to_value(v: impl serde::Serialize) -> Result<Value, Error> {
    Ok(serde_json::to_value(v)?)
}

#[utoipa::path(get, path = "/drivers", tag = "drivers", params(Enabled),
    responses((status = 200, description = "The drivers, as OneForm serves them", body = Value)))]
async fn list(st: axum::extract::State<State>, Query(q): Query<Enabled>) -> ApiResult<Json<Value>> {
    Ok(Json(to_value(st.drivers.list(flag(&q.enabled))?)?))
}

#[utoipa::path(get, path = "/drivers/{name}", tag = "drivers", params(("name" = String, Path)),
    responses((status = 200, description = "The driver", body = Value), (status = 404, description = "No such driver", body = ErrorBody)))]
async fn show(st: axum::extract::State<State>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(to_value(st.drivers.show(&name)?)?))
}

#[utoipa::path(post, path = "/drivers/sync", tag = "drivers",
    responses((status = 200, description = "`{success: [names], failed: [{name, error}]}`", body = Value)))]
async fn sync(st: axum::extract::State<State>, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let (report, _) = st.drivers.sync(&caller)?;
    Ok(Json(json!({"success": report.success, "failed": report.failed, "shadowed": report.shadowed})))
}

#[utoipa::path(post, path = "/drivers/{name}/enable", tag = "drivers", params(("name" = String, Path)),
    responses((status = 200, description = "Enabled"), (status = 400, description = "Already enabled, or in ERROR", body = ErrorBody)))]
async fn enable(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    st.drivers.set_enabled(&caller, &name, true)?;
    Ok(())
}

#[utoipa::path(post, path = "/drivers/{name}/disable", tag = "drivers", params(("name" = String, Path)),
    responses((status = 200, description = "Disabled"), (status = 400, description = "Already disabled, or in ERROR", body = ErrorBody)))]
async fn disable(
    st: axum::extract::State<State>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    st.drivers.set_enabled(&caller, &name, false)?;
    Ok(())
}

/// `?deployment=D` or `?connection=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SchemaParams {
    #[serde(default)]
    deployment: Option<String>,
    #[serde(default)]
    connection: Option<String>,
}

#[utoipa::path(get, path = "/drivers/{name}/schema", tag = "drivers", params(("name" = String, Path), SchemaParams),
    responses((status = 200, description = "JSON Schema (draft 2020-12) of the inputs", body = Value)))]
async fn schema(
    st: axum::extract::State<State>,
    Path(name): Path<String>,
    Query(q): Query<SchemaParams>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.drivers.schema(&name, q.deployment.as_deref(), flag(&q.connection))?))
}

#[utoipa::path(post, path = "/drivers/{name}/validate", tag = "drivers", params(("name" = String, Path)), request_body = Value,
    responses((status = 200, description = "The values with defaults filled (sensitive ones redacted)", body = Value),
              (status = 400, description = "Every wrong value, named in `context`", body = ErrorBody)))]
async fn validate(st: axum::extract::State<State>, Path(name): Path<String>, body: Body) -> ApiResult<Json<Value>> {
    let deployment = body.string("deployment_type")?;
    let values = Value::Object(body.object("user_inputs_values")?);
    Ok(Json(to_value(st.drivers.validate(&name, deployment.as_deref(), &values)?)?))
}
