//! The batch route: the body read and bounded, its operations counted against the rate limit, then
//! applied in the request's unit of work.

use super::service;
use crm_domain::contact::batch::{BatchDraft, MAX_OPERATIONS};
use crm_platform::http::json::parse_body;
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `POST /api/v1/contacts/batch`: one result per operation, in order. 200 when every operation
/// succeeded, 207 when some failed (and the others stand); an atomic batch with a failure answers
/// `batch-not-applied` and writes nothing. Idempotent under one `Idempotency-Key`.
pub async fn batch_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: BatchDraft = parse_body(&ctx.request)?;
    match draft.operations.len() {
        0 => {
            return Err(ApiError::invalid_field(
                "/operations",
                "required",
                "give at least one operation",
            ))
        }
        n if n > MAX_OPERATIONS => {
            return Err(ApiError::invalid_field(
                "/operations",
                "too_many",
                format!("at most {MAX_OPERATIONS} operations per batch"),
            ))
        }
        _ => {}
    }
    ctx.charge_operations(draft.operations.len()).await?;
    ctx.write(async |uow| {
        let results = service::apply(uow, draft).await?;
        let status = if results.failed == 0 {
            StatusCode::OK
        } else {
            StatusCode::MULTI_STATUS
        };
        json(status, &results)
    })
    .await
}
