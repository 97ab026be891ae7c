//! A response body: whole, as every JSON and problem+json answer is, or streamed chunk by chunk, as
//! an export is, whose size has no bound. Both hosts send either kind as it is: the native server
//! through hyper, Spin through `wasi:http` (its body is written by a task of its own, after the
//! handler has returned).

use crate::ApiError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

/// The chunks of a streamed body, produced as the client reads them. An `Err` ends the body
/// abruptly (the client sees it cut short, never a well-formed partial file): once the head is sent,
/// that is all HTTP/1.1 can say. `Send` natively, as [`crate::BoxFuture`] is.
#[cfg(not(target_arch = "wasm32"))]
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>;
#[cfg(target_arch = "wasm32")]
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>>>>;

pub enum ResponseBody {
    Full(Bytes),
    /// Behind a mutex only so that a response can be shared between threads (the idempotency
    /// record reads a response by reference); polling has it by `&mut` and never locks.
    Streamed(Mutex<ChunkStream>),
}

impl ResponseBody {
    /// A body streamed from `chunks`.
    pub fn streamed(chunks: ChunkStream) -> Self {
        ResponseBody::Streamed(Mutex::new(chunks))
    }

    /// The bytes of a whole body; a streamed one has none at hand (they are sent as produced).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ResponseBody::Full(bytes) => bytes,
            ResponseBody::Streamed(_) => &[],
        }
    }

    /// The length of a whole body, which its response declares; a streamed one has none.
    pub fn declared_length(&self) -> Option<usize> {
        match self {
            ResponseBody::Full(bytes) => Some(bytes.len()),
            ResponseBody::Streamed(_) => None,
        }
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::Full(Bytes::new())
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        ResponseBody::Full(bytes)
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(bytes: Vec<u8>) -> Self {
        ResponseBody::Full(bytes.into())
    }
}

impl From<String> for ResponseBody {
    fn from(text: String) -> Self {
        ResponseBody::Full(text.into())
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseBody::Full(bytes) => f.debug_tuple("Full").field(bytes).finish(),
            ResponseBody::Streamed(_) => f.write_str("Streamed"),
        }
    }
}

/// Why a streamed body stopped short: the error is logged where it happened; the host only learns
/// that the body failed.
#[derive(Debug, thiserror::Error)]
#[error("the response body could not be produced")]
pub struct BodyFailed;

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyFailed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BodyFailed>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            ResponseBody::Full(bytes) => {
                Poll::Ready(Some(Ok(http_body::Frame::data(std::mem::take(bytes)))))
            }
            ResponseBody::Streamed(chunks) => chunks
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .poll_next_unpin(cx)
                .map(|chunk| {
                    chunk.map(|chunk| {
                        chunk.map(http_body::Frame::data).map_err(|error| {
                            tracing::error!(error = %error, "a streamed response body failed");
                            BodyFailed
                        })
                    })
                }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ResponseBody::Full(bytes) if bytes.is_empty())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ResponseBody::Full(bytes) => http_body::SizeHint::with_exact(bytes.len() as u64),
            ResponseBody::Streamed(_) => http_body::SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_streamed_body_sends_its_chunks_in_order() {
        let chunks = futures::stream::iter(["a,b\r\n", "1,2\r\n"].map(|c| Ok(Bytes::from(c))));
        let body = ResponseBody::streamed(Box::pin(chunks));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"a,b\r\n1,2\r\n");
    }

    #[tokio::test]
    async fn a_failed_chunk_fails_the_body() {
        let chunks =
            futures::stream::iter([Ok(Bytes::from("a\r\n")), Err(ApiError::bad_request("gone"))]);
        let body = ResponseBody::streamed(Box::pin(chunks));
        assert!(body.collect().await.is_err());
    }
}
