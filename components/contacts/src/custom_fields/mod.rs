//! A tenant's custom contact fields, `/api/v1/custom-fields/**`: their definitions, the schema of
//! the contact's `custom` object. Part of the contacts component: every contact write checks its
//! values against them.

mod handlers;
pub(crate) mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/custom-fields",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::create(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/custom-fields",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::list(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/custom-fields/{id}",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::get(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/custom-fields/{id}",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::update(ctx)),
        )
}
