//! `POST /api/v1/contacts/batch`: up to a thousand creates, upserts, updates and deletes in one
//! call, all or nothing (`atomic`) or each standing alone.

mod handlers;
pub(crate) mod operations;
mod set_wise;

use crate::WRITE;
use crm_platform::http::router::{Access, Router};
use http::Method;

/// A batch body may be larger than a single contact's: a thousand contacts with their custom
/// fields.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts/batch",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::batch_contacts(ctx)),
        )
        .expensive()
        .body_limit(BODY_LIMIT)
}
