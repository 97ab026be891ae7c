//! Operational routes: liveness, readiness and the OpenAPI document.

use crate::http::pipeline::RequestContext;
use crate::http::response::json;
use crate::http::router::{Access, Router};
use crate::http::ApiResponse;
use crate::ApiError;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::json;

/// The OpenAPI 3.1 document of the whole API.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

/// `/healthz`, `/readyz` and `/api/v1/openapi.json`. Served by the contacts component on Spin and by
/// the native server.
pub fn routes() -> Router {
    Router::new()
        .route(Method::GET, "/healthz", Access::Public, |ctx| {
            Box::pin(healthz(ctx))
        })
        .route(Method::GET, "/readyz", Access::Public, |ctx| {
            Box::pin(readyz(ctx))
        })
        .route(Method::GET, "/api/v1/openapi.json", Access::Public, |ctx| {
            Box::pin(openapi(ctx))
        })
}

/// Liveness: the process answers. Touches nothing else.
async fn healthz(_: RequestContext) -> Result<ApiResponse, ApiError> {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Readiness: the database answers. Runs no migration; a flood of probes costs one connection.
async fn readyz(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ctx.app
        .db
        .ready()
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    json(StatusCode::OK, &json!({"status": "ready"}))
}

async fn openapi(_: RequestContext) -> Result<ApiResponse, ApiError> {
    let mut response =
        http::Response::new(bytes::Bytes::from_static(OPENAPI_JSON.as_bytes()).into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
