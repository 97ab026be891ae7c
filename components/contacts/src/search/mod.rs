//! Advanced contact search, `POST /api/v1/contacts/search`: a filter tree over standard fields,
//! custom fields, tags, lists, preferences and consent; a ranked, typo-tolerant `q`; any sort;
//! keyset pages; an optional total. [`conditions`] is the one compiler of filter trees to SQL,
//! which the contacts list and smart lists use too.

pub(crate) mod conditions;
pub(crate) mod handlers;
pub mod indexes;
mod repository;

/// The statement a search runs for one page, for tests and benchmarks that read its plan.
pub use conditions::ListMembership;
pub(crate) use repository::page;
pub use repository::page_statement;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts/search",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::search(ctx)),
        )
        .expensive()
}
