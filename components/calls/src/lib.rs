//! The calls component: `/api/v1/calls/**`. A contact's calls (`/api/v1/contacts/{id}/calls`) are
//! served by the contacts component on Spin, with the handler from [`contact_calls_routes`].

mod handlers;
mod repository;

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
}

/// `GET /api/v1/contacts/{id}/calls`, mounted by the contacts component (its Spin route prefix).
pub fn contact_calls_routes() -> Router {
    Router::new().route(
        Method::GET,
        "/api/v1/contacts/{id}/calls",
        Access::Scope(READ),
        |ctx| Box::pin(handlers::contact_calls(ctx)),
    )
}

crm_platform::spin_component!(routes);
