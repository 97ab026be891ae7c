//! The batch route: the shared batch shape ([`crm_platform::http::batch`]) over contact
//! operations.

use super::operations;
use crm_platform::http::ApiResponse;
use crm_platform::{ApiError, RequestContext};

/// `POST /api/v1/contacts/batch`: creates, upserts, updates and deletes, one result per
/// operation, in order.
pub async fn batch_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ctx.batch(operations::apply).await
}
