//! The native server: every component's routes in one process, on tokio and hyper, through the same
//! pipeline the Spin components use.

use bytes::Bytes;
use crm_platform::http::router::Router;
use crm_platform::http::ApiResponse;
use crm_platform::App;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;

/// Every route the application has: the operational ones and each component's.
pub fn router() -> Router {
    crm_platform::http::ops::routes()
        .merge(crm_contacts::routes())
        .merge(crm_calls::routes())
        .merge(crm_notes::routes())
        .merge(crm_segments::routes())
        .merge(crm_audit::routes())
        .merge(crm_webhooks::routes())
}

/// How long the native server waits on a client: a connection that holds a worker while sending
/// nothing (slowloris) is dropped. Spin hosts bound this themselves.
#[derive(Clone, Copy, Debug)]
pub struct ClientTimeouts {
    /// From a connection's first byte (or the end of its last request) to the end of a request head.
    pub header_read: Duration,
    /// From the head to the end of the body; a request past it is answered 400.
    pub body_read: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
        }
    }
}

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    timeouts: ClientTimeouts,
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
                async move {
                    Ok::<_, Infallible>(handle(app, &router, request, timeouts.body_read).await)
                }
            });
            if let Err(error) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.header_read)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                if !error.is_incomplete_message() && !error.is_timeout() {
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
    body_read: Duration,
) -> ApiResponse {
    let (parts, body) = request.into_parts();
    let body = Deadline::new(body, body_read);
    app.handle(router, parts, body).await
}

/// A request body that fails once its deadline passes, so that a client trickling its body cannot
/// hold the request (and whatever it holds) open.
///
/// A request refused before its body is read (no token, over a limit) is answered at once; the
/// body is then drained in the background (up to [`DRAIN_LIMIT`] bytes, until the deadline) instead
/// of the connection being closed under the client, whose kernel would answer the rest of its
/// upload with a reset that can destroy the response before the client reads it.
struct Deadline {
    body: Option<Incoming>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// The most of an unread body drained after its request was answered.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

impl Deadline {
    fn new(body: Incoming, within: Duration) -> Self {
        Self {
            body: Some(body),
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err("the request body took too long".into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else {
            return;
        };
        if http_body::Body::is_end_stream(&body) {
            return;
        }
        let deadline = self.deadline.deadline();
        tokio::spawn(async move {
            use http_body_util::BodyExt;
            let mut body = body;
            let mut drained = 0usize;
            let drain = async {
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, Bytes::len);
                    if drained > DRAIN_LIMIT {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout_at(deadline, drain).await;
        });
    }
}
