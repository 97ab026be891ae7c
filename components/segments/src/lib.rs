//! The segments component: the tag vocabulary, `/api/v1/tags/**`, and the tags a contact carries,
//! `/api/v1/contacts/{id}/tags/**` (Spin routes `/api/v1/contacts/:id/tags` and
//! `/api/v1/contacts/:id/tags/...` here), and static and smart lists, `/api/v1/lists/**` (ADR 0011;
//! a list's contacts are read by the contacts component, which Spin routes
//! `/api/v1/lists/:id/contacts` to). Tags and lists are contact data: the contacts scopes govern
//! them.

pub mod lists;
pub mod tags;

use crm_platform::http::router::Router;

pub const READ: &str = "contacts:read";
pub const WRITE: &str = "contacts:write";

/// The component's route table.
pub fn routes() -> Router {
    tags::routes().merge(lists::routes())
}

crm_platform::spin_component!(routes);
