//! The RFC 9457 `application/problem+json` rendering of [`ApiError`].

use super::ApiResponse;
use crate::ApiError;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::json;

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::TenantSuspended => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Merged { .. } | ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BatchNotApplied { status, .. } => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type slug: `/problems/{slug}` is this error's `type`.
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => ("bad-request", "The request could not be read"),
            ApiError::Unauthorized { .. } => ("unauthorized", "Authentication is required"),
            ApiError::Forbidden { .. } => ("forbidden", "The token lacks a required scope"),
            ApiError::TenantSuspended => ("tenant-suspended", "The tenant is suspended"),
            ApiError::NotFound => ("not-found", "No such resource"),
            ApiError::Merged { .. } => ("contact-merged", "The contact was merged into another"),
            ApiError::Gone { .. } => ("gone", "The resource is gone"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict { .. } => ("conflict", "The request conflicts with existing data"),
            ApiError::IdempotencyKeyInFlight => (
                "idempotency-key-in-flight",
                "A request with this Idempotency-Key is still being processed",
            ),
            ApiError::PreconditionFailed => ("precondition-failed", "The resource has changed"),
            ApiError::PreconditionRequired => ("precondition-required", "If-Match is required"),
            ApiError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "The body is too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Send application/json"),
            ApiError::Validation(_) => ("validation-error", "The request has invalid fields"),
            ApiError::IdempotencyKeyReused => (
                "idempotency-key-reused",
                "This Idempotency-Key was used with a different request",
            ),
            ApiError::BatchNotApplied { .. } => (
                "batch-not-applied",
                "No operation of the atomic batch was applied",
            ),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::BadRequest { detail }
            | ApiError::Gone { detail }
            | ApiError::Unauthorized { detail }
            | ApiError::Conflict { detail, .. }
            | ApiError::BatchNotApplied { detail, .. } => detail.clone(),
            ApiError::Forbidden { scope } => format!("this route needs the scope `{scope}`"),
            ApiError::TenantSuspended => {
                "the tenant is suspended; its operator can make it active again".into()
            }
            ApiError::NotFound => "the resource does not exist".into(),
            ApiError::Merged { into } => format!(
                "this contact was merged into {into}, which holds its data now; the merge can be undone (POST /api/v1/merges/{{id}}/undo)"
            ),
            ApiError::MethodNotAllowed { allowed } => format!(
                "allowed: {}",
                allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ApiError::IdempotencyKeyInFlight => "retry once the first request has finished".into(),
            ApiError::PreconditionFailed => {
                "If-Match does not name the current version; fetch the resource and retry".into()
            }
            ApiError::PreconditionRequired => {
                "this tenant requires If-Match with the resource's ETag on every change".into()
            }
            ApiError::RateLimited { retry_after } => {
                format!(
                    "a rate limit is exhausted; retry in {retry_after} s (see RateLimit headers)"
                )
            }
            ApiError::PayloadTooLarge { limit } => format!("bodies are limited to {limit} bytes"),
            ApiError::UnsupportedMediaType => {
                "the body must be JSON (Content-Type: application/json)".into()
            }
            ApiError::Validation(errors) => format!("{} field(s) are invalid", errors.0.len()),
            ApiError::IdempotencyKeyReused => {
                "send a new Idempotency-Key for a different request body or route".into()
            }
            // 5xx bodies are generic: the cause goes to the log with the request id.
            ApiError::Unavailable(_) => "a dependency is unavailable; retry later".into(),
            ApiError::Internal(_) => "something went wrong on our side".into(),
        }
    }

    /// The problem document (RFC 9457) of this error, stamped with the request id when given (one
    /// operation's problem inside a batch's results has none of its own).
    pub fn to_problem(&self, request_id: Option<&str>) -> serde_json::Value {
        let (slug, title) = self.slug_and_title();
        let mut body = json!({
            "type": format!("/problems/{slug}"),
            "title": title,
            "status": self.status().as_u16(),
            "detail": self.detail(),
        });
        let members = body.as_object_mut().expect("a json! object");
        if let Some(request_id) = request_id {
            members.insert("request_id".into(), json!(request_id));
        }
        match self {
            ApiError::Validation(errors) => {
                members.insert("errors".into(), json!(errors.0));
            }
            ApiError::Conflict { errors, extra, .. } => {
                if !errors.is_empty() {
                    members.insert("errors".into(), json!(errors));
                }
                members.extend(extra.clone());
            }
            ApiError::Merged { into } => {
                members.insert("merged_into".into(), json!(into));
            }
            ApiError::BatchNotApplied {
                errors, results, ..
            } => {
                members.insert("errors".into(), json!(errors));
                members.insert("results".into(), results.clone());
            }
            _ => {}
        }
        body
    }

    /// Renders the problem+json response, stamped with the request id.
    pub fn to_response(&self, request_id: &str) -> ApiResponse {
        let body = self.to_problem(Some(request_id));
        let mut response = http::Response::new(body.to_string().into());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            ApiError::Unauthorized { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="crm", error="invalid_token""#),
                );
            }
            ApiError::Forbidden { scope } => {
                if let Ok(value) = HeaderValue::from_str(&format!(
                    r#"Bearer realm="crm", error="insufficient_scope", scope="{scope}""#
                )) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            // A lost connection or a restarting database: worth retrying at once.
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::MethodNotAllowed { allowed } => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_domain::{FieldError, ValidationErrors};
    use serde_json::Value;

    fn body(response: &ApiResponse) -> Value {
        serde_json::from_slice(response.body().as_bytes()).unwrap()
    }

    #[test]
    fn validation_problems_list_every_field() {
        let error = ApiError::Validation(ValidationErrors(vec![
            FieldError::new("/a", "required", "must be set"),
            FieldError::new("/b/0", "too_long", "too long"),
        ]));
        let response = error.to_response("req-1");
        assert_eq!(response.status(), 422);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body(&response);
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["errors"][1]["field"], "/b/0");
        assert_eq!(body["type"], "/problems/validation-error");
    }

    #[test]
    fn internal_errors_never_leak_their_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("password=hunter2 connection refused"));
        let response = error.to_response("req-2");
        let text = String::from_utf8(response.body().as_bytes().to_vec()).unwrap();
        assert!(!text.contains("hunter2"));
        assert_eq!(response.status(), 500);
    }

    #[test]
    fn unauthorized_carries_a_bearer_challenge() {
        let response = ApiError::unauthorized("expired").to_response("r");
        assert!(response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
}
