//! The dispatcher's cross-tenant statements: each calls one of the security-definer functions of
//! migration 0005 in a transaction bound to no tenant.

use crm_domain::{DeliveryId, EventId, TenantId, WebhookId};
use crm_platform::store::db::{Db, DbError, Row, SqlValue, Tx};
use serde_json::Value;
use uuid::Uuid;

/// A delivery this dispatcher holds until its lease ends.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub tenant: TenantId,
    pub delivery_id: DeliveryId,
    pub claim_token: Uuid,
    /// Attempts including this one.
    pub attempts: u32,
    pub subscription_id: WebhookId,
    pub url: String,
    pub active: bool,
    /// The current secret, then the previous one while a rotation's overlap lasts.
    pub secrets: Vec<String>,
    pub event_id: EventId,
    pub event_type: String,
    pub payload: Value,
    pub occurred_at: String,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Pending again, due at this time (RFC 3339).
    Retry {
        at: String,
    },
    /// A dead letter.
    Dead,
}

impl Outcome {
    /// The `p_outcome` of `webhook_record_attempt`.
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead => "dead",
        }
    }

    fn next_attempt_at(&self) -> Option<&str> {
        match self {
            Outcome::Retry { at } => Some(at),
            _ => None,
        }
    }
}

/// The result of one attempt, as the database keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// `gone`: turn the subscription off now.
    pub disable: Option<&'static str>,
}

/// Fans out up to `limit` outbox events; returns how many it handled.
pub async fn fan_out(db: &Db, limit: i64) -> Result<i64, DbError> {
    db.unscoped_transaction(async |tx: &Tx| {
        tx.query_one(
            "select webhook_fan_out($1::int8::int4)::int8",
            &[limit.into()],
        )
        .await?
        .get::<i64>(0)
    })
    .await
}

/// Claims up to `limit` due deliveries for `lease_seconds`.
pub async fn claim(db: &Db, limit: i64, lease_seconds: i64) -> Result<Vec<Claimed>, DbError> {
    let rows = db
        .unscoped_transaction(async |tx: &Tx| {
            tx.query(
                "select tenant_id, delivery_id, claim_token, attempts::int8, subscription_id, url,
                        active, secrets, event_id, event_type, payload, occurred_at
                 from webhook_claim($1::int8::int4, $2::int8::int4)",
                &[limit.into(), lease_seconds.into()],
            )
            .await
        })
        .await?;
    rows.iter().map(claimed_from_row).collect()
}

fn claimed_from_row(row: &Row) -> Result<Claimed, DbError> {
    Ok(Claimed {
        tenant: row.get("tenant_id")?,
        delivery_id: row.get("delivery_id")?,
        claim_token: row.get("claim_token")?,
        attempts: u32::try_from(row.get::<i64>("attempts")?).unwrap_or(u32::MAX),
        subscription_id: row.get("subscription_id")?,
        url: row.get("url")?,
        active: row.get("active")?,
        secrets: row.get("secrets")?,
        event_id: row.get("event_id")?,
        event_type: row.get("event_type")?,
        payload: row.get("payload")?,
        occurred_at: row.get("occurred_at")?,
    })
}

/// Records the attempts of a batch in one transaction (one commit for all of them); returns how
/// many subscriptions they disabled.
pub async fn record_all(
    db: &Db,
    attempts: &[(Claimed, AttemptRecord)],
    disable_after_seconds: u64,
) -> Result<u64, DbError> {
    db.unscoped_transaction(async |tx: &Tx| {
        let mut disabled = 0;
        for (claimed, attempt) in attempts {
            disabled += u64::from(record(tx, claimed, attempt, disable_after_seconds).await?);
        }
        Ok(disabled)
    })
    .await
}

/// Records the attempt of `claimed`; returns whether it disabled the subscription.
async fn record(
    tx: &Tx,
    claimed: &Claimed,
    attempt: &AttemptRecord,
    disable_after_seconds: u64,
) -> Result<bool, DbError> {
    tx.query_one(
        "select webhook_record_attempt($1, $2, $3, $4, $5::int8::int4, $6, $7::int8::int4,
                                           $8::text::timestamptz, $9, $10::int8::int4)",
        &[
            claimed.tenant.into(),
            claimed.delivery_id.into(),
            claimed.claim_token.into(),
            attempt.outcome.as_str().into(),
            attempt.status_code.map(i64::from).into(),
            attempt.error.clone().into(),
            attempt.duration_ms.into(),
            attempt.outcome.next_attempt_at().into(),
            attempt.disable.into(),
            SqlValue::Int(i64::try_from(disable_after_seconds).unwrap_or(i64::MAX)),
        ],
    )
    .await?
    .get::<bool>(0)
}
