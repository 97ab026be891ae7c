//! HTTP, one of each: the request pipeline, routing, JSON bodies, problem+json, request ids,
//! pagination, ETags, Idempotency-Key replays and the operational routes.

pub mod batch;
pub mod body;
pub mod etag;
pub mod idempotency;
pub mod json;
pub mod ops;
pub mod pagination;
pub mod pipeline;
pub mod problem;
pub mod query;
pub mod request_id;
pub mod response;
pub mod router;

/// A request as handlers see it: the body is already read, within the size limit.
#[derive(Debug)]
pub struct ApiRequest {
    pub method: ::http::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: ::http::HeaderMap,
    pub body: bytes::Bytes,
}

pub use body::ResponseBody;
pub type ApiResponse = ::http::Response<ResponseBody>;
