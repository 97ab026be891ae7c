//! A contact's communication preferences, `/api/v1/contacts/{id}/preferences`: a preferred
//! channel, a language, a time zone and do-not-contact flags per channel. Part of the contact's
//! own record (ADR 0011): a change is audited and evented as a change of the contact.

mod handlers;
pub(crate) mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/preferences",
            Access::Scope(crate::READ),
            |ctx| Box::pin(handlers::get(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/contacts/{id}/preferences",
            Access::Scope(crate::WRITE),
            |ctx| Box::pin(handlers::update(ctx)),
        )
}
