//! Import jobs, `/api/v1/imports/**`: a CSV or NDJSON file of contacts uploaded in numbered parts,
//! started, and applied by the import worker a bounded step at a time through the contacts' batch;
//! its progress, counts and per-row errors (as CSV) read back; cancellable. The job worker
//! (`crate::jobs`) applies them.

mod handlers;
mod repository;
pub mod service;

use crate::{READ, WRITE};
use crm_platform::http::router::{Access, Router};
use http::Method;

/// The largest part of an upload: a file of any size is sent in parts of at most this.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::POST,
            "/api/v1/imports",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::create_import(ctx)),
        )
        .expensive()
        .route(Method::GET, "/api/v1/imports", Access::Scope(READ), |ctx| {
            Box::pin(handlers::list_imports(ctx))
        })
        .route(
            Method::GET,
            "/api/v1/imports/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_import(ctx)),
        )
        .route(
            Method::PUT,
            "/api/v1/imports/{id}/parts/{number}",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::upload_part(ctx)),
        )
        .expensive()
        .body_limit(PART_BYTES)
        .route(
            Method::POST,
            "/api/v1/imports/{id}/start",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::start_import(ctx)),
        )
        .route(
            Method::POST,
            "/api/v1/imports/{id}/cancel",
            Access::Scope(WRITE),
            |ctx| Box::pin(handlers::cancel_import(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/imports/{id}/errors",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::import_errors(ctx)),
        )
}
