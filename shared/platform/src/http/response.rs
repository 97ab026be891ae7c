//! Building JSON responses.

use super::problem::ApiError;
use super::ApiResponse;
use anyhow::Context;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

/// A JSON response with `status` and `body`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<ApiResponse, ApiError> {
    let bytes = serde_json::to_vec(body).context("serialising a response body")?;
    let mut response = http::Response::new(bytes::Bytes::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Sets a header from a value we built ourselves (an id, an ETag); such values are always valid.
pub fn set_header(response: &mut ApiResponse, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
