//! The contacts component: `/api/v1/contacts/**`. On Spin it also serves `/healthz`, `/readyz` and
//! the OpenAPI document.

mod handlers;
mod repository;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub const READ: &str = "contacts:read";
pub const WRITE: &str = "contacts:write";

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::create_contact(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list_contacts(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_contact(ctx)),
        )
}

/// What the contacts component serves on Spin: its routes and the operational ones.
pub fn component_routes() -> Router {
    crm_platform::ops::routes().merge(routes())
}

crm_platform::spin_component!(component_routes);
