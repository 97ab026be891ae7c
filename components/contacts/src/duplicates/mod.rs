//! `GET /api/v1/contacts/duplicates`: pairs of live contacts that look like one person (a shared
//! mailbox, a shared phone, a similar name at the same company), each with a score and the reasons,
//! keyset-paginated; or, with `contact_id`, the candidates of one contact.

mod handlers;
mod repository;

use crate::READ;
use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::GET,
            "/api/v1/contacts/duplicates",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list_duplicates(ctx)),
        )
        .expensive()
}
