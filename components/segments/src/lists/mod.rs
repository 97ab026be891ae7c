//! Static and smart lists of contacts, `/api/v1/lists/**`: their definitions and a static list's
//! members. Their contacts are read by the contacts component (`/api/v1/lists/{id}/contacts`), and
//! a contact's lists too (`/api/v1/contacts/{id}/lists`), through the contacts list's filters.

mod handlers;

pub use crm_segments_core::lists::{repository, service};

use crate::{READ, WRITE};
use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(Method::POST, "/api/v1/lists", Access::Scope(WRITE), |ctx| {
            Box::pin(handlers::create_list(ctx))
        })
        .route(Method::GET, "/api/v1/lists", Access::Scope(READ), |ctx| {
            Box::pin(handlers::list_lists(ctx))
        })
        .route(
            Method::POST,
            "/api/v1/lists/batch",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::batch(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/lists/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_list(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/lists/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::update_list(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/lists/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::delete_list(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/lists/{id}/members",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::change_members(ctx)),
        )
        .expensive()
}
