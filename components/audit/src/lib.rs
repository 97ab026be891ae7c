//! The audit component: `/api/v1/audit/**`: the audit trail as an API, and reports over it.

mod handlers;
mod repository;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub const READ: &str = "audit:read";

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
        .route(
            Method::GET,
            "/api/v1/audit/events",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list_events(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/audit/events/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_event(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/audit/reports",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::report(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/audit/reports.csv",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::report_csv(ctx)),
        )
        .expensive()
}

crm_platform::spin_component!(routes);
