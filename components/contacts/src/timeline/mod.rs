//! A contact's activity timeline, `GET /api/v1/contacts/{id}/timeline`: one keyset-paginated feed,
//! newest first, of everything that happened to it (its own changes, tags, lists, calls, notes,
//! links, preferences, consent records, and the webhook deliveries of events about it). A read
//! model: it reads the index the unit of work writes beside every audit record
//! (`contact_activity`) and writes nothing.

mod handlers;
mod repository;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new().route(
        Method::GET,
        "/api/v1/contacts/{id}/timeline",
        Access::Scope(crate::READ),
        |ctx| Box::pin(handlers::timeline(ctx)),
    )
}
