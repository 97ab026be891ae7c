//! The notes component: a contact's notes, `/api/v1/contacts/{id}/notes/**` (Spin routes
//! `/api/v1/contacts/:id/notes` and `/api/v1/contacts/:id/notes/...` here: more specific than the
//! contacts component's `/api/v1/contacts/...`). Notes are contact data: the contacts scopes govern
//! them.

mod handlers;
mod repository;
pub mod service;

use crm_platform::http::router::{Access, Router};
use http::Method;

/// Reading notes needs what reading their contact needs, and so does writing them.
pub const READ: &str = "contacts:read";
pub const WRITE: &str = "contacts:write";

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/notes",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::create(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/notes",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::list(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/contacts/{id}/notes/{note_id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get(ctx)),
        )
        .route(
            Method::PATCH,
            "/api/v1/contacts/{id}/notes/{note_id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::update(ctx)),
        )
        .route(
            Method::DELETE,
            "/api/v1/contacts/{id}/notes/{note_id}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::delete(ctx)),
        )
}

crm_platform::spin_component!(routes);
