//! The worker's pass over HTTP.

use super::worker;
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `POST /api/v1/jobs/work` (operator credential): one worker pass over every tenant's imports and
/// export jobs; `{"more": true}` when work remains, and then the worker is woken again.
pub async fn work(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let more = worker::run_retrying(&ctx.app, worker::PASS_BUDGET).await?;
    if more {
        ctx.app.job_wakeup.publish().await;
    }
    json(StatusCode::OK, &serde_json::json!({ "more": more }))
}
