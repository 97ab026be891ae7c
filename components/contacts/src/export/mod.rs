//! `GET /api/v1/contacts/export` (the contacts list's filters) and `POST /api/v1/contacts/export`
//! (a search body): every matching contact, streamed as CSV or NDJSON page by page, so that memory
//! stays flat whatever the row count, with its custom fields, tags, preferences and consent; and
//! export jobs, `/api/v1/exports/**`, the same file written by the worker in steps and downloaded
//! until it expires.

mod handlers;
pub mod jobs;
mod repository;
pub mod service;

use crate::READ;
use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new()
        .route(
            Method::GET,
            "/api/v1/contacts/export",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::export_listed(ctx)),
        )
        .expensive()
        .route(
            Method::POST,
            "/api/v1/contacts/export",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::export_searched(ctx)),
        )
        .expensive()
        .route(
            Method::POST,
            "/api/v1/exports",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::create_export_job(ctx)),
        )
        .expensive()
        .route(
            Method::GET,
            "/api/v1/exports/{id}",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::get_export_job(ctx)),
        )
        .route(
            Method::GET,
            "/api/v1/exports/{id}/download",
            Access::Scope(READ),
            |ctx| Box::pin(handlers::download_export(ctx)),
        )
        .expensive()
}
