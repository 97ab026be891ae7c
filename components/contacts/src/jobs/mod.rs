//! Background jobs, imports and export jobs: the worker that applies them a bounded step at a time,
//! and its pass as an operator route, `POST /api/v1/jobs/work`, for schedulers (a job whose
//! wake-up was lost, or whose worker died) and the native server's tests.

mod handlers;
pub mod worker;

use crm_platform::http::router::{Access, Router};
use http::Method;

pub fn routes() -> Router {
    Router::new().route(Method::POST, "/api/v1/jobs/work", Access::Operator, |ctx| {
        Box::pin(handlers::work(ctx))
    })
}
