//! Rate limiting with fixed one-minute windows.
//!
//! Three counters may apply to a request: the tenant's, the principal's, and for expensive routes
//! (search, imports, exports, batch) a stricter one per principal, which counts operations: a
//! search or a page is one, a batch is as many as it holds ([`Limiter::charge`] adds the rest once
//! its body has been read). Each is a key
//! `rl:{tenant}:{counter}:{window}`, and all of a request's counters are raised together by
//! [`KeyValue::count_in_window`]: one round trip on Redis (a script), and finished windows expire or
//! are deleted, so the store holds one live window per counter. Algorithm, accuracy and failure
//! behaviour: docs/adr/0007-rate-limiting.md. When the store fails the request is admitted.

use crate::config::{Overrides, RateLimits};
use crate::edge::kv::{KeyValue, KvError};
use crm_domain::TenantId;
use sha2::{Digest, Sha256};

pub const WINDOW_SECONDS: u64 = 60;
/// The outcome of counting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub admitted: bool,
    /// `RateLimit-Policy` (always set).
    pub policy: String,
    /// `RateLimit`: the counter closest to its limit (absent when the store failed).
    pub state: Option<String>,
    /// Seconds until the window resets (`Retry-After` on a 429).
    pub reset_seconds: u64,
}

struct Counter {
    name: &'static str,
    key: String,
    limit: u64,
}

/// The limiter of one process (one instance on Spin): the configured limits.
pub struct Limiter {
    defaults: RateLimits,
}

impl Limiter {
    pub fn new(defaults: RateLimits) -> Self {
        Self { defaults }
    }

    /// Counts a request of `subject` for `tenant` at `now` (Unix seconds) under the tenant's
    /// `overrides` of the defaults, and decides.
    pub async fn check(
        &self,
        kv: &KeyValue,
        overrides: Overrides,
        tenant: TenantId,
        subject: &str,
        expensive: bool,
        now: u64,
    ) -> Decision {
        let counters = counters(
            self.defaults.with(overrides),
            tenant,
            &short_hash(subject),
            expensive,
        );
        decide(kv, &counters, 1, now).await
    }

    /// Counts `operations` more against the expensive counter of `subject` (a batch's operations
    /// beyond the one its request counted) and decides. The operations are counted whether or
    /// not they are admitted, as a refused request is.
    pub async fn charge(
        &self,
        kv: &KeyValue,
        overrides: Overrides,
        tenant: TenantId,
        subject: &str,
        operations: u64,
        now: u64,
    ) -> Decision {
        let counter =
            expensive_counter(self.defaults.with(overrides), tenant, &short_hash(subject));
        decide(kv, &[counter], operations, now).await
    }

    /// The most operations a principal of a tenant with `overrides` may send to expensive routes
    /// in one window: a batch larger than this could never be admitted.
    pub fn expensive_limit(&self, overrides: Overrides) -> u64 {
        self.defaults.with(overrides).expensive_per_minute
    }
}

/// Raises `counters` by `amount` and decides.
async fn decide(kv: &KeyValue, counters: &[Counter], amount: u64, now: u64) -> Decision {
    let window = now / WINDOW_SECONDS;
    let reset_seconds = WINDOW_SECONDS - now % WINDOW_SECONDS;
    let policy = policy_header(counters);
    let keys: Vec<String> = counters.iter().map(|c| c.key.clone()).collect();
    let counts = match kv
        .count_in_window(&keys, amount, window, 2 * WINDOW_SECONDS)
        .await
    {
        Ok(counts) => counts,
        Err(error) => return fail_open(counters, now, &error),
    };
    let mut admitted = true;
    let mut tightest: Option<(u64, &'static str)> = None;
    for (counter, count) in counters.iter().zip(counts) {
        admitted &= count <= counter.limit;
        let remaining = counter.limit.saturating_sub(count);
        if tightest.is_none_or(|(least, _)| remaining < least) {
            tightest = Some((remaining, counter.name));
        }
    }
    Decision {
        admitted,
        policy,
        state: tightest
            .map(|(remaining, name)| format!("\"{name}\";r={remaining};t={reset_seconds}")),
        reset_seconds,
    }
}

/// The counters a request of `principal` (hashed) raises.
fn counters(
    limits: RateLimits,
    tenant: TenantId,
    principal: &str,
    expensive: bool,
) -> Vec<Counter> {
    let mut counters = vec![
        Counter {
            name: "tenant",
            key: format!("rl:{tenant}:tenant"),
            limit: limits.tenant_per_minute,
        },
        Counter {
            name: "principal",
            key: format!("rl:{tenant}:principal:{principal}"),
            limit: limits.principal_per_minute,
        },
    ];
    if expensive {
        counters.push(expensive_counter(limits, tenant, principal));
    }
    counters
}

/// The stricter counter of expensive routes, per principal (hashed), in operations.
fn expensive_counter(limits: RateLimits, tenant: TenantId, principal: &str) -> Counter {
    Counter {
        name: "expensive",
        key: format!("rl:{tenant}:expensive:{principal}"),
        limit: limits.expensive_per_minute,
    }
}

fn fail_open(counters: &[Counter], now: u64, error: &KvError) -> Decision {
    tracing::warn!(error = %error, "rate limiting skipped: store unavailable");
    Decision {
        admitted: true,
        policy: policy_header(counters),
        state: None,
        reset_seconds: WINDOW_SECONDS - now % WINDOW_SECONDS,
    }
}

fn policy_header(counters: &[Counter]) -> String {
    counters
        .iter()
        .map(|c| format!("\"{}\";q={};w={WINDOW_SECONDS}", c.name, c.limit))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Subjects are user ids from the identity provider: hashed so that keys stay short and free of
/// the store's separators, and never show who they are.
fn short_hash(subject: &str) -> String {
    hex::encode(&Sha256::digest(subject.as_bytes())[..8])
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_drops_cache_entries_not_counters_when_full() {
        let kv = KeyValue::memory();
        kv.set("c:t:contact:1:gen", b"3").await.unwrap();
        kv.increment("rl:t:tenant:1", 1).await.unwrap();
        for n in 0..crate::edge::kv::MEMORY_CAPACITY {
            kv.set(&format!("c:t:contact:{n}:0"), b"{}").await.unwrap();
        }
        assert!(kv.count_prefix("").await.unwrap() <= crate::edge::kv::MEMORY_CAPACITY);
        assert_eq!(
            kv.get("c:t:contact:1:gen").await.unwrap(),
            Some(b"3".to_vec())
        );
        assert_eq!(kv.get("rl:t:tenant:1").await.unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn policies_list_every_counter() {
        let counters = [
            Counter {
                name: "tenant",
                key: String::new(),
                limit: 100,
            },
            Counter {
                name: "principal",
                key: String::new(),
                limit: 10,
            },
        ];
        assert_eq!(
            policy_header(&counters),
            "\"tenant\";q=100;w=60, \"principal\";q=10;w=60"
        );
    }
}
