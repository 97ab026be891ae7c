//! The native server's job worker (imports, export jobs): what Spin splits between the
//! `job-worker` component (Redis trigger) and a scheduler calling `POST /api/v1/jobs/work`, in one
//! loop. A pass runs when this server starts a job (in-process wake-up), when a wake-up arrives on Redis from any
//! other server, and every `interval` (for a job whose worker died, once its lease runs out); a pass
//! that leaves work behind is followed by the next at once.

use crate::dispatcher::relay_redis_wakeups;
use crm_contacts::jobs::worker::{self, PASS_BUDGET};
use crm_platform::edge::wakeup::JOB_CHANNEL;
use crm_platform::App;
use std::sync::Arc;
use std::time::Duration;

/// Works on jobs until the task is dropped.
pub async fn run(app: Arc<App>, interval: Duration) {
    let wake = app.job_wakeup.local();
    if let Some(url) = app.config.redis_url.clone() {
        tokio::spawn(relay_redis_wakeups(url, JOB_CHANNEL, wake.clone()));
    }
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        loop {
            match worker::run(&app, PASS_BUDGET).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    tracing::error!(error = %error, "a job pass failed; the next pass retries");
                    break;
                }
            }
        }
    }
}
