//! A contact's consent records, `/api/v1/contacts/{id}/consents` (append-only: recorded and read,
//! never changed), and its consent state at any moment, `/api/v1/contacts/{id}/consent-state`.
//! Part of the contact's own record (ADR 0011).

mod handlers;
mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/consents",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::record(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/consents",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::list(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/consent-state",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::state(ctx)),
        )
}
