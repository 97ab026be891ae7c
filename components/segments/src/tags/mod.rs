//! The tag vocabulary, `/api/v1/tags/**`, and the tags a contact carries,
//! `/api/v1/contacts/{id}/tags/**`.

mod handlers;

pub use crm_segments_core::tags::{repository, service};

use crate::{READ, WRITE};
use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(Method::POST, "/api/v1/tags", Access::Scope(WRITE), |ctx| {
            Box::pin(handlers::create_tag(ctx))
        })
        .route(Method::GET, "/api/v1/tags", Access::Scope(READ), |ctx| {
            Box::pin(handlers::list_tags(ctx))
        })
        .route(
            Method::POST,
            "/api/v1/tags/batch",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::batch(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/tags/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_tag(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/tags/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::update_tag(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/tags/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::delete_tag(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/tags",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::contact_tags(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/tags",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::attach(ctx)),
        )
        .route(
            Method::PUT,
            "/api/v1/contacts/{id}/tags",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::replace(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/contacts/{id}/tags/{tag_id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::detach(ctx)),
        )
}
