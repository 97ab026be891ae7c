//! The webhooks component: `/api/v1/webhooks/**`. Its routes arrive with their own issue; until then every
//! path under its prefix answers 404 problem+json, through the same pipeline as every component.

use crm_platform::http::router::Router;

/// The component's route table.
pub fn routes() -> Router {
    Router::new()
}

#[cfg(target_arch = "wasm32")]
mod spin_entry {
    use crm_platform::http::router::Router;
    use spin_sdk::http::{IntoResponse, Request};
    use std::sync::OnceLock;

    static ROUTER: OnceLock<Router> = OnceLock::new();

    #[spin_sdk::http_service]
    async fn handle(request: Request) -> impl IntoResponse {
        crm_platform::spin::serve(ROUTER.get_or_init(super::routes), request).await
    }
}
