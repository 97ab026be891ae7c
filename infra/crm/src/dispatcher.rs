//! The native server's webhook dispatcher: what Spin splits between the `webhook-dispatcher`
//! component (Redis trigger) and a scheduler calling `POST /api/v1/webhooks/dispatch`, in one loop.
//! A pass runs when this server commits an event (in-process wake-up), when a wake-up arrives on
//! Redis from any other server, and every `interval` for retries that fall due.

use crm_delivery::{Dispatcher, PASS_BUDGET};
use crm_platform::edge::wakeup::CHANNEL;
use crm_platform::App;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Dispatches until the task is dropped.
pub async fn run(app: Arc<App>, interval: Duration) {
    let wake = app.wakeup.local();
    if let Some(url) = app.config.redis_url.clone() {
        tokio::spawn(relay_redis_wakeups(url, CHANNEL, wake.clone()));
    }
    let dispatcher = match Dispatcher::new(&app.config.webhooks) {
        Ok(dispatcher) => dispatcher,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "webhook dispatcher not started"
            );
            return;
        }
    };
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        // A failed pass is logged by `run`; the next wake-up or interval retries.
        let _logged = dispatcher.run(&app.db, PASS_BUDGET).await;
    }
}

/// Subscribes to the wake-up `channel` and turns each message into an in-process wake-up,
/// reconnecting (with a pause) whenever Redis goes away.
pub(crate) async fn relay_redis_wakeups(url: String, channel: &'static str, wake: Arc<Notify>) {
    let mut reported = false;
    loop {
        match subscribe(&url, channel).await {
            Ok(mut messages) => {
                reported = false;
                while messages.next().await.is_some() {
                    wake.notify_one();
                }
                tracing::warn!("wake-up subscription ended; reconnecting");
            }
            Err(error) if !reported => {
                reported = true;
                tracing::warn!(error = %error, channel, "no wake-up subscription; periodic passes only until Redis is back");
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn subscribe(
    url: &str,
    channel: &str,
) -> redis::RedisResult<impl futures::Stream<Item = redis::Msg>> {
    let client = redis::Client::open(url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}
