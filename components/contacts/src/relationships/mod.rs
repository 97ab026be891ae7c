//! A contact's relationships, `/api/v1/contacts/{id}/relationships/**`, and the tenant's link
//! types, `/api/v1/relationship-types`: part of the contact's own record (ADR 0011).

mod handlers;
mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::GET,
            "/api/v1/relationship-types",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::list_types(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/relationship-types",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::create_type(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/relationships",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::list(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/relationships",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::create(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/contacts/{id}/relationships/{relationship_id}",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::delete(ctx)),
        )
}
