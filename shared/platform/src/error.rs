//! The one error type of the API: what any request, change or read can fail with. Rendered as
//! RFC 9457 `application/problem+json` by [`crate::http::problem`].

use crm_domain::{FieldError, ValidationErrors};
use http::Method;
use serde_json::{Map, Value};

/// Everything a request can fail with. Each variant documents its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (malformed JSON, a bad query parameter).
    #[error("bad request: {detail}")]
    BadRequest { detail: String },
    /// 401 with `WWW-Authenticate`: no token, or one that does not verify.
    #[error("unauthorized: {detail}")]
    Unauthorized { detail: String },
    /// 403: a valid token without the scope the route needs.
    #[error("forbidden: missing scope {scope}")]
    Forbidden { scope: &'static str },
    /// 403: the token's tenant is suspended.
    #[error("tenant suspended")]
    TenantSuspended,
    /// 404: no such resource for this tenant (another tenant's ids answer this too).
    #[error("not found")]
    NotFound,
    /// 410: the contact was merged into `into` (its survivor), which answers in its place.
    #[error("merged into {into}")]
    Merged { into: crm_domain::ContactId },
    /// 410: the resource existed and is gone for good (an export's download past its expiry).
    #[error("gone: {detail}")]
    Gone { detail: String },
    /// 405 with `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed { allowed: Vec<Method> },
    /// 409: the request conflicts with the current state; `extra` members join the problem body.
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
        extra: Map<String, Value>,
    },
    /// 409: the same Idempotency-Key is still being processed.
    #[error("idempotency key in flight")]
    IdempotencyKeyInFlight,
    /// 412: `If-Match` names a version that is no longer current.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 428: the tenant requires `If-Match` on updates and the request has none.
    #[error("precondition required")]
    PreconditionRequired,
    /// 429 with `Retry-After`: a rate limit is exhausted; nothing was done.
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    /// 413: the body exceeds the configured limit.
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    /// 415: a body that is not JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: well-formed input that breaks the rules; every field at fault is listed.
    #[error("validation failed")]
    Validation(ValidationErrors),
    /// 422: an Idempotency-Key reused with a different request.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// An atomic batch with failed operations: nothing was applied. Its status is the first failed
    /// operation's; `errors` points at every operation at fault, `results` holds each operation's
    /// outcome (a problem, or `424` for one that would have succeeded).
    #[error("batch not applied")]
    BatchNotApplied {
        status: http::StatusCode,
        detail: String,
        errors: Vec<FieldError>,
        results: Value,
    },
    /// 503: a dependency (the database) is unavailable.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}

/// A query parameter the contacts list cannot read is the client's mistake: 400, saying why.
impl From<crm_domain::contact::filter::FilterError> for ApiError {
    fn from(error: crm_domain::contact::filter::FilterError) -> Self {
        ApiError::bad_request(error.0)
    }
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            detail: detail.into(),
        }
    }

    /// The fields at fault this error names (a validation error's, a conflict's).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Validation(errors) => &errors.0,
            ApiError::Conflict { errors, .. } | ApiError::BatchNotApplied { errors, .. } => errors,
            _ => &[],
        }
    }

    /// A 409 with a message and the field at fault.
    pub fn conflict(
        detail: impl Into<String>,
        field: &str,
        code: &'static str,
        message: &str,
    ) -> Self {
        ApiError::Conflict {
            detail: detail.into(),
            errors: vec![FieldError::new(field, code, message)],
            extra: Map::new(),
        }
    }

    /// A 422 about one field.
    pub fn invalid_field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation(ValidationErrors(vec![FieldError::new(
            field, code, message,
        )]))
    }
}
