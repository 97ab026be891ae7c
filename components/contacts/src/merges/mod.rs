//! Contact merge: `POST /api/v1/contacts/{id}/merge` merges up to ten contacts into the one of the
//! path, `GET /api/v1/merges/{id}` reads what a merge did, and `POST /api/v1/merges/{id}/undo`
//! undoes it (within `merge_undo_days`).

mod handlers;
mod repository;
pub mod service;

use crate::{READ, WRITE};
use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/contacts/{id}/merge",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::merge_contacts(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/merges/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_merge(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/merges/{id}/undo",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::undo_merge(ctx)),
        )
}
