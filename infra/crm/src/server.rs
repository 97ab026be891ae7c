//! The native server: every component's routes in one process, on tokio and hyper, through the same
//! pipeline the Spin components use.

use bytes::Bytes;
use crm_platform::http::router::Router;
use crm_platform::App;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Every route the application has: the operational ones and each component's.
pub fn router() -> Router {
    crm_platform::http::ops::routes()
        .merge(crm_contacts::routes())
        .merge(crm_calls::routes())
        .merge(crm_audit::routes())
        .merge(crm_webhooks::routes())
}

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let router = Arc::new(router());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let app = app.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = app.clone();
                let router = router.clone();
                async move { Ok::<_, Infallible>(handle(app, &router, request).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                if !error.is_incomplete_message() {
                    tracing::warn!(error = %error, "connection error");
                }
            }
        });
    }
}

async fn handle(
    app: Arc<App>,
    router: &Router,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    app.handle(router, parts, body).await.map(Full::new)
}
