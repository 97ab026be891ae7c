//! Webhook delivery, shared by everything that dispatches: the `webhooks` component's operator
//! dispatch route, the `webhook-dispatcher` component's Redis trigger and the native server's loop.
//!
//! A pass fans new outbox events out into deliveries, then claims due deliveries (`FOR UPDATE SKIP
//! LOCKED`, each under a lease), sends them with bounded concurrency, and records each attempt: a
//! success, a retry at the next step of the schedule (or when `Retry-After` says), or a dead letter.
//! At least once: a delivery is only finished by the record of an attempt, so a dispatcher that
//! dies at any point leaves it to be claimed again when its lease ends.

pub mod send;
pub mod signing;
pub mod store;

use crm_domain::webhook::{next_retry, Retry, UrlPolicy};
use crm_platform::config::WebhookConfig;
use crm_platform::store::db::{Db, DbError};
use futures::StreamExt;
use send::{Failure, Reply, Sender, HTTP_STATUS};
use serde::Serialize;
use std::time::{Duration, Instant};
use store::{AttemptRecord, Claimed, Outcome};
use tracing::Instrument;

/// Outbox events fanned out per statement.
const FAN_OUT_BATCH: i64 = 500;

/// How long one dispatch pass (a wake-up, a scheduler's call, a tick of the native loop) may keep
/// sending before it returns; what is left is the next pass's.
pub const PASS_BUDGET: Duration = Duration::from_secs(20);

/// How long recording a round's attempts may take, beyond the attempts themselves, within a lease.
const RECORD_MARGIN_SECONDS: u64 = 30;

/// What one dispatch pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events_fanned_out: i64,
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub subscriptions_disabled: u64,
}

pub struct Dispatcher {
    config: WebhookConfig,
    policy: UrlPolicy,
    sender: Sender,
}

impl Dispatcher {
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Self> {
        let policy = config.url_policy();
        Ok(Self {
            sender: Sender::new(policy.clone(), config.timeout)?,
            policy,
            config: config.clone(),
        })
    }

    /// Deliveries claimed at once: one round of `webhook_concurrency`, sent together and recorded in
    /// one transaction. A claim is shared fairly between tenants (`webhook_claim`), so another
    /// tenant's delivery waits at most one round behind a backlog of slow receivers.
    fn batch_size(&self) -> usize {
        self.config.concurrency
    }

    /// A claim outlives its round. An attempt ends within the timeout natively (reqwest's total
    /// timeout) and within twice it on Spin (the connect timeout, then the first-byte timeout: the
    /// response body is never read); the record has a margin on top.
    fn lease_seconds(&self) -> i64 {
        i64::try_from(2 * self.config.timeout.as_secs() + 1 + RECORD_MARGIN_SECONDS)
            .unwrap_or(i64::MAX)
    }

    /// Fans out and sends until nothing is due or `budget` has passed: one dispatch pass, in a
    /// `dispatch` span, logged when it did anything or failed.
    pub async fn run(&self, db: &Db, budget: Duration) -> Result<Summary, DbError> {
        let span = tracing::info_span!("dispatch");
        let started = Instant::now();
        let outcome = self.pass(db, budget).instrument(span.clone()).await;
        span.in_scope(|| match &outcome {
            Ok(summary) if summary.events_fanned_out > 0 || summary.attempts > 0 => {
                tracing::info!(
                    events_fanned_out = summary.events_fanned_out,
                    attempts = summary.attempts,
                    succeeded = summary.succeeded,
                    failed = summary.failed,
                    subscriptions_disabled = summary.subscriptions_disabled,
                    latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "dispatch pass"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %error, "dispatch pass failed; the next pass retries")
            }
        });
        outcome
    }

    async fn pass(&self, db: &Db, budget: Duration) -> Result<Summary, DbError> {
        let started = Instant::now();
        let mut summary = Summary::default();
        loop {
            loop {
                let handled = store::fan_out(db, FAN_OUT_BATCH).await?;
                summary.events_fanned_out += handled;
                if handled < FAN_OUT_BATCH {
                    break;
                }
            }
            let batch = i64::try_from(self.batch_size()).unwrap_or(32);
            let claimed = store::claim(db, batch, self.lease_seconds()).await?;
            if claimed.is_empty() {
                return Ok(summary);
            }
            let attempts: Vec<(Claimed, AttemptRecord)> = futures::stream::iter(claimed)
                .map(|claimed| async move {
                    let record = self.send(&claimed).await;
                    (claimed, record)
                })
                .buffer_unordered(self.config.concurrency)
                .collect()
                .await;
            for (_, record) in &attempts {
                summary.attempts += 1;
                if record.outcome == Outcome::Succeeded {
                    summary.succeeded += 1;
                } else {
                    summary.failed += 1;
                }
            }
            // A record that fails (the database is gone) leaves the claims to run out: those
            // deliveries are attempted again.
            summary.subscriptions_disabled +=
                store::record_all(db, &attempts, self.config.disable_after_seconds).await?;
            if started.elapsed() >= budget {
                return Ok(summary);
            }
        }
    }

    async fn send(&self, claimed: &Claimed) -> AttemptRecord {
        let dead = |error: &'static str| AttemptRecord {
            outcome: Outcome::Dead,
            status_code: None,
            error: Some(error.to_owned()),
            duration_ms: 0,
            disable: None,
        };
        if !claimed.active {
            return dead("subscription_disabled");
        }
        let endpoint = match self.policy.check(&claimed.url) {
            Ok(endpoint) => endpoint,
            Err(_) => return dead(Failure::Blocked.code()),
        };
        let message = match Message::of(claimed) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "signing a webhook message failed");
                return dead("internal_error");
            }
        };
        let started = Instant::now();
        let result = self
            .sender
            .post(&endpoint, message.headers, message.body)
            .await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        judge(
            result,
            claimed.attempts,
            &self.config.retry_schedule,
            jitter(),
            duration_ms,
        )
    }
}

/// A signed Standard Webhooks message.
pub struct Message {
    pub headers: Vec<(&'static str, String)>,
    pub body: bytes::Bytes,
}

impl Message {
    /// `{type, timestamp, data}`, signed now with every live secret. `webhook-id` is the event id:
    /// the same on every attempt, so receivers can deduplicate.
    pub fn of(claimed: &Claimed) -> anyhow::Result<Self> {
        let body = serde_json::to_vec(&serde_json::json!({
            "type": claimed.event_type,
            "timestamp": claimed.occurred_at,
            "data": claimed.payload,
        }))?;
        let id = claimed.event_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::signature_header(&claimed.secrets, &id, timestamp, &body)?;
        Ok(Self {
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("webhook-id", id),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ],
            body: body.into(),
        })
    }
}

/// What an attempt's result means: 2xx succeeded; 410 ends the subscription; anything else
/// (another status, a redirect, which is never followed, a timeout, a refused connection) is retried
/// on the schedule (429 and 503 no sooner than their `Retry-After`) until it runs out. The recorded
/// error is a category: the [`Failure`]'s, or [`HTTP_STATUS`] beside the status.
pub fn judge(
    result: Result<Reply, Failure>,
    attempts: u32,
    schedule: &[u64],
    jitter: f64,
    duration_ms: i64,
) -> AttemptRecord {
    let (status_code, retry_after, error) = match result {
        Ok(reply) => (Some(reply.status), reply.retry_after, None),
        Err(failure) => (None, None, Some(failure.code().to_owned())),
    };
    let base = AttemptRecord {
        outcome: Outcome::Dead,
        status_code,
        error: error.clone(),
        duration_ms,
        disable: None,
    };
    match status_code {
        Some(200..=299) => AttemptRecord {
            outcome: Outcome::Succeeded,
            ..base
        },
        Some(410) => AttemptRecord {
            error: Some(HTTP_STATUS.into()),
            disable: Some("gone"),
            ..base
        },
        status => {
            let honoured = matches!(status, Some(429 | 503))
                .then_some(retry_after)
                .flatten();
            let error = error.or_else(|| status.map(|_| HTTP_STATUS.to_owned()));
            match next_retry(schedule, attempts, honoured, jitter) {
                Retry::After(delay) => AttemptRecord {
                    outcome: Outcome::Retry {
                        at: (chrono::Utc::now()
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::days(1)))
                        .to_rfc3339(),
                    },
                    error,
                    ..base
                },
                Retry::GiveUp => AttemptRecord { error, ..base },
            }
        }
    }
}

/// A fraction in 0..1 from the system's randomness (0 if it has none).
fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, retry_after: Option<u64>) -> Result<Reply, Failure> {
        Ok(Reply {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    const SCHEDULE: &[u64] = &[0, 5, 300];

    #[test]
    fn success_gone_retry_and_dead() {
        assert_eq!(
            judge(reply(204, None), 1, SCHEDULE, 0.0, 3).outcome,
            Outcome::Succeeded
        );
        let gone = judge(reply(410, None), 1, SCHEDULE, 0.0, 3);
        assert_eq!((gone.outcome, gone.disable), (Outcome::Dead, Some("gone")));
        let failed = judge(reply(500, None), 1, SCHEDULE, 0.0, 3);
        assert!(matches!(failed.outcome, Outcome::Retry { .. }));
        assert_eq!(
            (failed.status_code, failed.error.as_deref()),
            (Some(500), Some(HTTP_STATUS))
        );
        let redirected = judge(reply(301, None), 1, SCHEDULE, 0.0, 3);
        assert!(matches!(redirected.outcome, Outcome::Retry { .. }));
        let timed_out = judge(Err(Failure::Timeout), 3, SCHEDULE, 0.0, 3);
        assert_eq!(
            (timed_out.outcome, timed_out.status_code),
            (Outcome::Dead, None)
        );
    }

    #[test]
    fn retry_after_counts_only_for_429_and_503() {
        let due = |record: AttemptRecord| {
            let Outcome::Retry { at } = record.outcome else {
                panic!("not a retry: {record:?}")
            };
            chrono::DateTime::parse_from_rfc3339(&at)
                .unwrap()
                .with_timezone(&chrono::Utc)
                - chrono::Utc::now()
        };
        let throttled = due(judge(reply(429, Some(600)), 1, SCHEDULE, 0.0, 1));
        assert!(throttled.num_seconds() >= 598, "{throttled}");
        let failing = due(judge(reply(500, Some(600)), 1, SCHEDULE, 0.0, 1));
        assert!(failing.num_seconds() <= 5, "{failing}");
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&jitter()));
        }
    }
}
