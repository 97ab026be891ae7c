//! The Spin entry point's half: turns a `wasi:http` request into a pipeline call. Each component's
//! `#[http_service]` function is one line that calls [`serve`] with its router.

use crate::app::App;
use crate::config::Config;
use crate::http::router::Router;
use crate::ApiError;
use spin_sdk::http::Request;
use std::sync::{Arc, OnceLock};

/// Built once per instance (WASIp3 reuses instances): parsed keys and configuration, nothing
/// per request or per tenant.
static APP: OnceLock<Arc<App>> = OnceLock::new();

/// The instance's app (every entry point's: HTTP handlers and the Redis-triggered dispatcher).
pub async fn app() -> anyhow::Result<Arc<App>> {
    if let Some(app) = APP.get() {
        return Ok(app.clone());
    }
    crate::logging::init();
    let config = Config::from_spin_variables().await?;
    let kv = crate::edge::kv::KeyValue::spin_default(config.redis_url.as_deref());
    let app = Arc::new(App::new(config, kv)?);
    Ok(APP.get_or_init(|| app).clone())
}

/// Serves one request with `router`.
pub async fn serve(router: &Router, request: Request) -> crate::http::ApiResponse {
    let app = match app().await {
        Ok(app) => app,
        Err(error) => {
            let request_id = crate::http::request_id::from_headers(request.headers());
            let error = ApiError::Internal(error.context("starting the component"));
            crate::http::pipeline::log_error(&request_id, &error);
            return with_length(error.to_response(&request_id));
        }
    };
    let (parts, body) = request.into_parts();
    with_length(app.handle(router, parts, body).await)
}

/// `response` declaring its length when its body is whole: without it Spin sends the body chunked,
/// in pieces that can wait for the client's delayed ACK, and some clients read only a declared
/// length. A streamed body (an export) is sent chunked: its length is unknown until its end.
fn with_length(mut response: crate::http::ApiResponse) -> crate::http::ApiResponse {
    let status = response.status();
    if status != http::StatusCode::NO_CONTENT && status != http::StatusCode::NOT_MODIFIED {
        let Some(length) = response.body().declared_length() else {
            return response;
        };
        let length = http::HeaderValue::from(length);
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, length);
    }
    response
}
