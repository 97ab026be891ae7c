//! What a request costs in round trips: calls to the database (each waits for an answer: a
//! statement, or natively a batch such as `begin; set_config(...)`), connection checkouts (on Spin
//! each one is a cleanup query of the host's pool), and key-value operations (with the Redis
//! publish of a dispatcher wake-up), with the time spent waiting on each. With `server_timing` on, every response reports them in a `Server-Timing`
//! header; `crm-bench` reads it to print each scenario's budget.
//!
//! Natively each request has counters of its own (a task-local); on Spin they are the instance's,
//! exact for a request that does not overlap another in the same instance (see `scope`).

use std::future::Future;
use std::time::{Duration, Instant};

/// What one request cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub db_calls: u64,
    pub db_checkouts: u64,
    pub db_micros: u64,
    pub kv_ops: u64,
    pub kv_micros: u64,
}

impl Counters {
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

#[derive(Clone, Copy)]
enum Kind {
    DbCall,
    Checkout,
    KvOp,
}

fn add(counters: &mut Counters, kind: Kind, micros: u64) {
    match kind {
        Kind::DbCall => {
            counters.db_calls += 1;
            counters.db_micros += micros;
        }
        Kind::Checkout => {
            counters.db_checkouts += 1;
            counters.db_micros += micros;
        }
        Kind::KvOp => {
            counters.kv_ops += 1;
            counters.kv_micros += micros;
        }
    }
}

fn elapsed_micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Natively each request counts in its own task-local counters: the dispatcher loop and other
/// requests never mix in.
#[cfg(not(target_arch = "wasm32"))]
mod scope {
    use super::{add, Counters, Kind};
    use std::cell::RefCell;
    use std::future::Future;

    tokio::task_local! {
        static COUNTERS: RefCell<Counters>;
    }

    pub async fn measure<F: Future>(work: F) -> (F::Output, Counters) {
        COUNTERS
            .scope(RefCell::new(Counters::default()), async {
                let output = work.await;
                (output, COUNTERS.with(|counters| *counters.borrow()))
            })
            .await
    }

    pub fn record(kind: Kind, micros: u64) {
        let _outside_a_request =
            COUNTERS.try_with(|counters| add(&mut counters.borrow_mut(), kind, micros));
    }
}

/// On Spin an instance has one thread and may serve several requests at once: its counters are
/// the instance's, and a request's cost is their difference over the request, exact when requests
/// do not overlap (as in the benchmark's one-client cost pass). The webhook dispatcher is another
/// component, so its passes never mix in.
#[cfg(target_arch = "wasm32")]
mod scope {
    use super::{add, Counters, Kind};
    use std::cell::Cell;
    use std::future::Future;

    thread_local! {
        static COUNTERS: Cell<Counters> = const {
            Cell::new(Counters { db_calls: 0, db_checkouts: 0, db_micros: 0, kv_ops: 0, kv_micros: 0 })
        };
    }

    pub async fn measure<F: Future>(work: F) -> (F::Output, Counters) {
        let start = COUNTERS.get();
        let output = work.await;
        let end = COUNTERS.get();
        let cost = Counters {
            db_calls: end.db_calls - start.db_calls,
            db_checkouts: end.db_checkouts - start.db_checkouts,
            db_micros: end.db_micros - start.db_micros,
            kv_ops: end.kv_ops - start.kv_ops,
            kv_micros: end.kv_micros - start.kv_micros,
        };
        (output, cost)
    }

    pub fn record(kind: Kind, micros: u64) {
        COUNTERS.with(|cell| {
            let mut counters = cell.get();
            add(&mut counters, kind, micros);
            cell.set(counters);
        });
    }
}

/// Runs `work` (one request) and returns what it cost.
pub async fn measure<F: Future>(work: F) -> (F::Output, Counters) {
    scope::measure(work).await
}

async fn timed<T>(kind: Kind, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let output = work.await;
    scope::record(kind, elapsed_micros(started));
    output
}

/// Counts one database call around `call`.
pub async fn db<T>(call: impl Future<Output = T>) -> T {
    timed(Kind::DbCall, call).await
}

/// Counts one connection checkout around `checkout`.
pub async fn checkout<T>(checkout: impl Future<Output = T>) -> T {
    timed(Kind::Checkout, checkout).await
}

/// Counts one key-value operation around the synchronous `op` (Spin's key-value calls block).
pub fn kv<T>(op: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let output = op();
    scope::record(Kind::KvOp, elapsed_micros(started));
    output
}

/// Counts one key-value operation around the asynchronous `op`.
pub async fn kv_async<T>(op: impl Future<Output = T>) -> T {
    timed(Kind::KvOp, op).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_counts_its_own_calls_and_nothing_outside_it() {
        kv(|| ()); // outside any request: counted nowhere
        let ((), cost) = measure(async {
            kv(|| ());
            db(async {}).await;
            db(async {}).await;
            checkout(async {}).await;
        })
        .await;
        assert_eq!(
            (cost.kv_ops, cost.db_calls, cost.db_checkouts),
            (1, 2, 1),
            "{cost:?}"
        );
        let header = cost.server_timing(Duration::from_millis(2));
        assert!(
            header.starts_with("db;desc=\"2 calls, 1 checkouts\""),
            "{header}"
        );
        assert!(header.ends_with("app;dur=2.000"), "{header}");
    }
}
