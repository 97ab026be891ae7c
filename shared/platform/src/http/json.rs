//! JSON request bodies: the media type checked, then decoded by [`crate::document`].

use super::ApiRequest;
use crate::document::parse_json;
use crate::ApiError;
use http::header;
use serde::de::DeserializeOwned;

/// Reads the body of `request` as `T`.
///
/// - not JSON (`Content-Type`) → 415
/// - malformed JSON → 400, with line and column
/// - a wrong type, a missing or an unknown field → 422 naming the field as a JSON pointer
pub fn parse_body<T: DeserializeOwned>(request: &ApiRequest) -> Result<T, ApiError> {
    let is_json = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| {
            let media = media.trim().to_ascii_lowercase();
            media == "application/json" || media.ends_with("+json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(&request.body)
}

/// Reads a JSON Merge Patch body: a JSON object (anything else is a 422 at the document's root).
pub fn parse_merge_patch(request: &ApiRequest) -> Result<serde_json::Value, ApiError> {
    let patch: serde_json::Value = parse_body(request)?;
    if !patch.is_object() {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "a merge patch must be a JSON object",
        ));
    }
    Ok(patch)
}
