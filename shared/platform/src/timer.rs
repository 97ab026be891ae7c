//! Waiting, on either host: tokio's timer natively, the WASI monotonic clock on Spin.

use std::time::Duration;

/// Resolves once `duration` has passed.
pub async fn sleep(duration: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(duration).await;
    #[cfg(target_arch = "wasm32")]
    spin_sdk::time::sleep(duration).await;
}

/// Runs `work` while `alongside` runs with it, and returns what `work` returns; `alongside` is
/// dropped then. For a task that lives as long as a request, such as renewing a lease.
pub async fn while_running<T>(
    work: impl std::future::Future<Output = T>,
    alongside: impl std::future::Future<Output = std::convert::Infallible>,
) -> T {
    let work = std::pin::pin!(work);
    let alongside = std::pin::pin!(alongside);
    match futures::future::select(work, alongside).await {
        futures::future::Either::Left((value, _)) => value,
        futures::future::Either::Right((never, _)) => match never {},
    }
}

/// What `work` returns if it finishes within `limit`; `None` (and `work` dropped) if not.
pub async fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> Option<T> {
    let work = std::pin::pin!(work);
    let timer = std::pin::pin!(sleep(limit));
    match futures::future::select(work, timer).await {
        futures::future::Either::Left((value, _)) => Some(value),
        futures::future::Either::Right(_) => None,
    }
}
