//! The calls component: `/api/v1/calls/**` and a contact's calls, `/api/v1/contacts/{id}/calls`
//! (Spin routes `/api/v1/contacts/:id/calls` here: more specific than the contacts component's
//! `/api/v1/contacts/...`).

mod handlers;
mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub const READ: &str = "calls:read";
pub const WRITE: &str = "calls:write";

/// The component's route table. `stats` precedes `{id}`, which would otherwise match it.
pub fn routes() -> Router {
    Router::new()
        .route(Method::POST, "/api/v1/calls", Access::Scope(WRITE), |ctx| {
            Box::pin(handlers::log_call(ctx))
        })
        .route(Method::GET, "/api/v1/calls", Access::Scope(READ), |ctx| {
            Box::pin(handlers::list_calls(ctx))
        })
        .expensive()
        .route(
            Method::GET,
            "/api/v1/calls/stats",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::call_stats(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/calls/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_call(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/calls/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::patch_call(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/calls/{id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::delete_call(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/calls",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::contact_calls(ctx)),
        )
}

crm_platform::spin_component!(routes);
