//! What a request costs in round trips: calls to the database (each waits for an answer: a
//! statement, or natively a batch such as `begin; set_config(...)`), connection checkouts (on Spin
//! each one is a cleanup query of the host's pool), and key-value operations, with the time spent
//! waiting on each. With `server_timing` on, every response reports them in a `Server-Timing`
//! header; `crm-bench` reads it to print each scenario's budget.
//!
//! The counters are process-wide (per instance on Spin): a request's figures are the difference
//! between its start and its end, exact when requests do not overlap, as in the benchmark's
//! one-client cost pass, and approximate under concurrency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static DB_CALLS: AtomicU64 = AtomicU64::new(0);
static DB_CHECKOUTS: AtomicU64 = AtomicU64::new(0);
static DB_MICROS: AtomicU64 = AtomicU64::new(0);
static KV_OPS: AtomicU64 = AtomicU64::new(0);
static KV_MICROS: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub db_calls: u64,
    pub db_checkouts: u64,
    pub db_micros: u64,
    pub kv_ops: u64,
    pub kv_micros: u64,
}

/// Reads the counters; [`Counters::since`] turns two readings into one request's cost.
pub fn now() -> Counters {
    Counters {
        db_calls: DB_CALLS.load(Ordering::Relaxed),
        db_checkouts: DB_CHECKOUTS.load(Ordering::Relaxed),
        db_micros: DB_MICROS.load(Ordering::Relaxed),
        kv_ops: KV_OPS.load(Ordering::Relaxed),
        kv_micros: KV_MICROS.load(Ordering::Relaxed),
    }
}

impl Counters {
    /// What happened between `start` and now.
    pub fn since(start: Counters) -> Counters {
        let end = now();
        Counters {
            db_calls: end.db_calls.saturating_sub(start.db_calls),
            db_checkouts: end.db_checkouts.saturating_sub(start.db_checkouts),
            db_micros: end.db_micros.saturating_sub(start.db_micros),
            kv_ops: end.kv_ops.saturating_sub(start.kv_ops),
            kv_micros: end.kv_micros.saturating_sub(start.kv_micros),
        }
    }

    /// The `Server-Timing` value (W3C Server Timing) for this cost and the request's `total` time
    /// in the pipeline.
    pub fn server_timing(&self, total: Duration) -> String {
        let ms = |micros: u64| micros as f64 / 1000.0;
        format!(
            "db;desc=\"{} calls, {} checkouts\";dur={:.3}, kv;desc=\"{} ops\";dur={:.3}, app;dur={:.3}",
            self.db_calls,
            self.db_checkouts,
            ms(self.db_micros),
            self.kv_ops,
            ms(self.kv_micros),
            total.as_secs_f64() * 1000.0
        )
    }
}

fn add_micros(counter: &AtomicU64, since: Instant) {
    let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
    counter.fetch_add(micros, Ordering::Relaxed);
}

/// Counts one database call around `call`.
pub async fn db<T>(call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    DB_CALLS.fetch_add(1, Ordering::Relaxed);
    let result = call.await;
    add_micros(&DB_MICROS, started);
    result
}

/// Counts one connection checkout around `checkout`.
pub async fn checkout<T>(checkout: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    DB_CHECKOUTS.fetch_add(1, Ordering::Relaxed);
    let result = checkout.await;
    add_micros(&DB_MICROS, started);
    result
}

/// Counts one key-value operation around the synchronous `op` (Spin's key-value calls block).
pub fn kv<T>(op: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    KV_OPS.fetch_add(1, Ordering::Relaxed);
    let result = op();
    add_micros(&KV_MICROS, started);
    result
}

/// Counts one key-value operation around the asynchronous `op`.
pub async fn kv_async<T>(op: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    KV_OPS.fetch_add(1, Ordering::Relaxed);
    let result = op.await;
    add_micros(&KV_MICROS, started);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_cost_is_the_difference_of_two_readings() {
        let start = now();
        kv(|| ());
        futures::executor::block_on(db(async {}));
        let cost = Counters::since(start);
        // Other tests may run alongside: at least what this one did.
        assert!(cost.kv_ops >= 1 && cost.db_calls >= 1, "{cost:?}");
        let header = cost.server_timing(Duration::from_millis(2));
        assert!(header.starts_with("db;desc=\""), "{header}");
        assert!(header.ends_with("app;dur=2.000"), "{header}");
    }
}
