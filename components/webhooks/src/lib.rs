//! The webhooks component: `/api/v1/webhooks/**`. Its routes arrive with their own issue; until then every
//! path under its prefix answers 404 problem+json, through the same pipeline as every component.

use crm_platform::http::router::Router;

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
}

crm_platform::spin_component!(routes);
