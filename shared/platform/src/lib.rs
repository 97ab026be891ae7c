//! What every component needs: HTTP plumbing, auth, configuration and the database layer.
//!
//! Handlers are written once against this crate. Its backends are chosen by target: on `wasm32`
//! they are Spin's (outbound pg, variables); natively they are tokio-postgres and environment
//! variables, so the native server and the tests run the very same handler code.

//! What every component needs, split by job, with dependencies pointing one way (each layer uses
//! only those listed after it):
//!
//! - [`http`]: routing, extraction, the request pipeline, Idempotency-Key replays, problem+json;
//! - [`app`]: what outlives a request, and the unit of work runner;
//! - [`edge`]: key-value store, read cache, rate limiting, dispatcher wake-ups;
//! - [`store`]: the database, tenant settings, the unit of work;
//! - [`auth`], [`config`], [`document`] (JSON decoding and merge patches), [`logging`],
//!   [`metering`], [`timer`], and the error type ([`ApiError`]).

pub mod app;
pub mod auth;
pub mod config;
pub mod document;
pub mod edge;
mod error;
pub mod http;
pub mod logging;
pub mod metering;
pub mod store;
pub mod timer;

#[cfg(target_arch = "wasm32")]
pub mod spin;

pub use app::App;
pub use error::ApiError;
pub use http::pipeline::RequestContext;

/// A boxed future: `Send` natively (the native server runs on a multi-threaded runtime), not on
/// wasm32, where Spin's resources are not `Send` and a component has one thread.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Declares a component's Spin entry point: an `#[http_service]` that serves the router returned by
/// the function `$routes` (built once per instance) through the shared pipeline. The component crate
/// depends on `spin-sdk` for wasm32 (the attribute's expansion names it).
#[macro_export]
macro_rules! spin_component {
    ($routes:ident) => {
        #[cfg(target_arch = "wasm32")]
        mod spin_entry {
            static ROUTER: ::std::sync::OnceLock<$crate::http::router::Router> =
                ::std::sync::OnceLock::new();

            #[::spin_sdk::http_service]
            async fn handle(
                request: ::spin_sdk::http::Request,
            ) -> impl ::spin_sdk::http::IntoResponse {
                $crate::spin::serve(ROUTER.get_or_init(super::$routes), request).await
            }
        }
    };
}
