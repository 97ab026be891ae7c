//! The native server's import worker: what Spin splits between the `import-worker` component
//! (Redis trigger) and a scheduler calling `POST /api/v1/imports/work`, in one loop. A pass runs
//! when this server starts an import (in-process wake-up), when a wake-up arrives on Redis from any
//! other server, and every `interval` (for a job whose worker died, once its lease runs out); a pass
//! that leaves work behind is followed by the next at once.

use crate::dispatcher::relay_redis_wakeups;
use crm_contacts::imports::worker::{self, PASS_BUDGET};
use crm_platform::edge::wakeup::IMPORT_CHANNEL;
use crm_platform::App;
use std::sync::Arc;
use std::time::Duration;

/// Imports until the task is dropped.
pub async fn run(app: Arc<App>, interval: Duration) {
    let wake = app.import_wakeup.local();
    if let Some(url) = app.config.redis_url.clone() {
        tokio::spawn(relay_redis_wakeups(url, IMPORT_CHANNEL, wake.clone()));
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
                    tracing::error!(error = %error, "an import pass failed; the next pass retries");
                    break;
                }
            }
        }
    }
}
