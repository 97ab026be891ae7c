//! Waiting, and work that lives beside a request.
//!
//! Natively this is tokio's timer. On Spin it would be the WASI monotonic clock, but Spin 4.0.2's
//! host panics, and `spin up` exits, when a component drops a pending timer or waits on one
//! beside another host call (its CPU-time call hook assumes host calls never interleave:
//! `factors-executor/src/lib.rs:314`, seen under the contract fuzz). So on wasm32 nothing here
//! touches a timer: [`while_running`] runs the work alone, and callers bound their waits with the
//! host's own timeouts (outbound HTTP's connect and first-byte timeouts).

/// Runs `work` while `alongside` runs with it (natively), and returns what `work` returns;
/// `alongside` is dropped then. For a task that lives as long as a request, such as renewing a
/// lease. On wasm32 `alongside` is not run (see the module documentation).
pub async fn while_running<T>(
    work: impl std::future::Future<Output = T>,
    alongside: impl std::future::Future<Output = std::convert::Infallible>,
) -> T {
    #[cfg(target_arch = "wasm32")]
    {
        drop(alongside);
        work.await
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let work = std::pin::pin!(work);
        let alongside = std::pin::pin!(alongside);
        match futures::future::select(work, alongside).await {
            futures::future::Either::Left((value, _)) => value,
            futures::future::Either::Right((never, _)) => match never {},
        }
    }
}

/// Resolves once `duration` has passed (natively).
#[cfg(not(target_arch = "wasm32"))]
pub async fn sleep(duration: std::time::Duration) {
    tokio::time::sleep(duration).await;
}
