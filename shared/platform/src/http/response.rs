//! Building JSON responses.

use super::ApiResponse;
use crate::ApiError;
use anyhow::Context;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

/// A JSON response with `status` and `body`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<ApiResponse, ApiError> {
    let bytes = serde_json::to_vec(body).context("serialising a response body")?;
    let mut response = http::Response::new(bytes.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// A resource just written, at `version`: its JSON with `ETag`, and `Location` when it was created.
pub fn entity<T: Serialize>(
    status: StatusCode,
    body: &T,
    version: i64,
    location: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let mut response = json(status, body)?;
    set_header(
        &mut response,
        header::ETAG,
        &super::etag::for_version(version),
    );
    if let Some(location) = location {
        set_header(&mut response, header::LOCATION, location);
    }
    Ok(response)
}

/// A resource at `version` as a GET answers it: 200 with the JSON body, or 304 when `If-None-Match`
/// names the version; with its `ETag`, and `Cache-Status` when the cache was consulted.
pub fn versioned<T: Serialize>(
    request_headers: &http::HeaderMap,
    body: &T,
    version: i64,
    cache_status: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let mut response = if super::etag::if_none_match_hits(request_headers, version) {
        let mut not_modified = ApiResponse::new(Default::default());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified
    } else {
        json(StatusCode::OK, body)?
    };
    set_header(
        &mut response,
        header::ETAG,
        &super::etag::for_version(version),
    );
    if let Some(status) = cache_status {
        set_header(
            &mut response,
            header::HeaderName::from_static("cache-status"),
            status,
        );
    }
    Ok(response)
}

/// An empty `204 No Content`.
pub fn no_content() -> ApiResponse {
    let mut response = ApiResponse::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Top-level fields of a response's JSON body that are shown once, such as a signing secret: the
/// response stored for `Idempotency-Key` replays holds `null` in their place, so they are never
/// kept at rest outside their own table.
#[derive(Clone, Copy, Debug)]
pub struct ShownOnce(pub &'static [&'static str]);

/// `response`, whose JSON `fields` are shown once ([`ShownOnce`]).
pub fn shown_once(mut response: ApiResponse, fields: &'static [&'static str]) -> ApiResponse {
    response.extensions_mut().insert(ShownOnce(fields));
    response
}

/// Sets a header from a value we built ourselves (an id, an ETag); such values are always valid.
pub fn set_header(response: &mut ApiResponse, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
