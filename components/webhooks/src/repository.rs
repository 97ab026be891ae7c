//! Subscription and delivery storage, always within one tenant (row-level security applies).

use crm_domain::webhook::NewSubscription;
use crm_domain::{DeliveryId, EventId, TenantId, WebhookId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, Keyset, Row, SqlBuilder, Tx};
use serde::Serialize;
use serde_json::Value;

/// A subscription as the API shows it. Its secrets never leave the database except once, in the
/// response that created or rotated them.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: WebhookId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
    /// `gone` (the receiver answered 410) or `failing`, when the dispatcher turned it off.
    pub disabled_reason: Option<String>,
    /// Until when the rotated-out secret still signs deliveries.
    pub previous_secret_expires_at: Option<String>,
    pub failing_since: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Subscription {
    /// The fields a merge patch may change, as they are now.
    pub fn writable_view(&self) -> Value {
        serde_json::json!({
            "url": self.url,
            "event_types": self.event_types,
            "description": self.description,
            "active": self.active,
        })
    }
}

/// A delivery of one event to one subscription, with every attempt so far.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub subscription_id: WebhookId,
    /// The `webhook-id` of every attempt.
    pub event_id: EventId,
    pub event_type: String,
    /// `pending`, `succeeded` or `dead` (a dead letter).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    /// `[{at, status_code, duration_ms, error}]`, oldest first.
    pub history: Value,
    pub created_at: String,
    pub completed_at: Option<String>,
}

const SUBSCRIPTION_COLUMNS: &str = "s.id, s.url, s.event_types, s.description, s.active,
    s.disabled_reason, rfc3339(s.previous_secret_expires_at) as previous_secret_expires_at,
    rfc3339(s.failing_since) as failing_since, s.version, rfc3339(s.created_at) as created_at,
    rfc3339(s.updated_at) as updated_at";

const DELIVERY_COLUMNS: &str = "d.id, d.subscription_id, d.event_id, d.event_type, d.status,
    d.attempts::int8 as attempts, rfc3339(d.next_attempt_at) as next_attempt_at,
    rfc3339(d.last_attempt_at) as last_attempt_at, d.last_status_code::int8 as last_status_code,
    d.last_error, d.last_duration_ms::int8 as last_duration_ms, d.attempt_log as history,
    rfc3339(d.created_at) as created_at, rfc3339(d.completed_at) as completed_at";

fn sql(template: &str) -> String {
    template
        .replace("{subscription}", SUBSCRIPTION_COLUMNS)
        .replace("{delivery}", DELIVERY_COLUMNS)
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    subscription: &NewSubscription,
    secret: &str,
) -> Result<Subscription, DbError> {
    let row = tx
        .query_one(
            &sql("insert into webhook_subscriptions as s
                      (tenant_id, id, url, event_types, description, active, secret)
                  values ($1, uuid_v7(), $2, $3, $4, $5, $6)
                  returning {subscription}"),
            &[
                tenant.into(),
                subscription.url.as_str().into(),
                subscription.event_types.clone().into(),
                subscription.description.clone().into(),
                subscription.active.into(),
                secret.into(),
            ],
        )
        .await?;
    subscription_from_row(&row)
}

/// Replaces a locked subscription's writable fields. Turning it on clears why it was off and its
/// failing period; turning it off dead-letters its pending deliveries (a trigger does).
pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    id: WebhookId,
    subscription: &NewSubscription,
) -> Result<Subscription, DbError> {
    let row = tx
        .query_one(
            &sql("update webhook_subscriptions as s
                  set url = $3, event_types = $4, description = $5, active = $6,
                      disabled_reason = case when $6 then null else s.disabled_reason end,
                      failing_since = case when $6 and not s.active then null else s.failing_since end,
                      version = s.version + 1, updated_at = now()
                  where s.tenant_id = $1 and s.id = $2
                  returning {subscription}"),
            &[
                tenant.into(),
                id.into(),
                subscription.url.as_str().into(),
                subscription.event_types.clone().into(),
                subscription.description.clone().into(),
                subscription.active.into(),
            ],
        )
        .await?;
    subscription_from_row(&row)
}

/// Makes `secret` current; the one it replaces stays valid until `overlap_seconds` from now.
pub async fn rotate_secret(
    tx: &Tx,
    tenant: TenantId,
    id: WebhookId,
    secret: &str,
    overlap_seconds: i64,
) -> Result<Subscription, DbError> {
    let row = tx
        .query_one(
            &sql("update webhook_subscriptions as s
                  set previous_secret = s.secret, secret = $3,
                      previous_secret_expires_at = now() + $4::int8 * interval '1 second',
                      version = s.version + 1, updated_at = now()
                  where s.tenant_id = $1 and s.id = $2
                  returning {subscription}"),
            &[
                tenant.into(),
                id.into(),
                secret.into(),
                overlap_seconds.into(),
            ],
        )
        .await?;
    subscription_from_row(&row)
}

pub async fn delete(tx: &Tx, tenant: TenantId, id: WebhookId) -> Result<(), DbError> {
    tx.execute(
        "delete from webhook_subscriptions where tenant_id = $1 and id = $2",
        &[tenant.into(), id.into()],
    )
    .await
    .map(|_| ())
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: WebhookId,
    for_update: bool,
) -> Result<Option<Subscription>, DbError> {
    let lock = if for_update { " for update" } else { "" };
    tx.query_opt(
        &sql(&format!(
            "select {{subscription}} from webhook_subscriptions s
             where s.tenant_id = $1 and s.id = $2{lock}"
        )),
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|row| subscription_from_row(&row))
    .transpose()
}

/// Newest first, after `after` (an id) when given.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    after: Option<WebhookId>,
    limit: i64,
) -> Result<Vec<Subscription>, DbError> {
    let mut query = SqlBuilder::new(
        sql("select {subscription} from webhook_subscriptions s where s.tenant_id = $1"),
        vec![tenant.into()],
    );
    let order = Keyset {
        key: None,
        id: "s.id",
        descending: true,
    };
    query.page(&order, after.map(|id| vec![id.into()]), limit);
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(subscription_from_row)
        .collect()
}

/// Queues a ping: a `webhook.ping` event that only this subscription receives (it is written
/// already fanned out, with its one delivery). Returns the delivery.
pub async fn ping(
    tx: &Tx,
    tenant: TenantId,
    subscription: &Subscription,
    request_id: &str,
) -> Result<Delivery, DbError> {
    let row = tx
        .query_one(
            &sql("with event as (
                      insert into outbox_events
                          (tenant_id, id, event_type, entity_type, entity_id, payload, request_id, fanned_out_at)
                      values ($1, uuid_v7(), 'webhook.ping', 'webhook', $2, $3, $4, now())
                      returning tenant_id, id, occurred_at
                  )
                  insert into webhook_deliveries as d
                      (tenant_id, id, subscription_id, event_id, event_type, next_attempt_at, created_at)
                  select tenant_id, uuid_v7(), $2, id, 'webhook.ping', now(), occurred_at from event
                  returning {delivery}"),
            &[
                tenant.into(),
                subscription.id.into(),
                serde_json::json!({"subscription_id": subscription.id, "url": subscription.url})
                    .into(),
                request_id.into(),
            ],
        )
        .await?;
    delivery_from_row(&row)
}

/// Filters of the delivery list.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
}

/// A subscription's deliveries, newest first, after the cursor `(created_at, id)`.
pub async fn deliveries(
    tx: &Tx,
    tenant: TenantId,
    subscription: WebhookId,
    filter: &DeliveryFilter,
    after: Option<&(CursorTime, DeliveryId)>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let mut query = SqlBuilder::new(
        sql("select {delivery} from webhook_deliveries d
             where d.tenant_id = $1 and d.subscription_id = $2"),
        vec![tenant.into(), subscription.into()],
    );
    if let Some(status) = &filter.status {
        query.push(" and d.status = ?", [status.as_str().into()]);
    }
    if let Some(after) = &filter.created_after {
        query.push(
            " and d.created_at >= ?::text::timestamptz",
            [after.as_str().into()],
        );
    }
    if let Some(before) = &filter.created_before {
        query.push(
            " and d.created_at < ?::text::timestamptz",
            [before.as_str().into()],
        );
    }
    query.page(
        &Keyset::newest_first("d.created_at", "d.id"),
        after.map(|(created_at, id)| vec![created_at.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect()
}

pub async fn find_delivery(
    tx: &Tx,
    tenant: TenantId,
    subscription: WebhookId,
    id: DeliveryId,
) -> Result<Option<Delivery>, DbError> {
    tx.query_opt(
        &sql("select {delivery} from webhook_deliveries d
              where d.tenant_id = $1 and d.subscription_id = $2 and d.id = $3 for update"),
        &[tenant.into(), subscription.into(), id.into()],
    )
    .await?
    .map(|row| delivery_from_row(&row))
    .transpose()
}

const REQUEUE: &str = "
    update webhook_deliveries d
    set status = 'pending', attempts = 0, next_attempt_at = now(), claim_token = null,
        completed_at = null
    where d.tenant_id = $1 and d.subscription_id = $2";

/// Queues a finished delivery again, with a fresh retry schedule and the same `webhook-id`.
pub async fn redeliver(
    tx: &Tx,
    tenant: TenantId,
    subscription: WebhookId,
    id: DeliveryId,
) -> Result<Delivery, DbError> {
    let row = tx
        .query_one(
            &sql(&format!("{REQUEUE} and d.id = $3 returning {{delivery}}")),
            &[tenant.into(), subscription.into(), id.into()],
        )
        .await?;
    delivery_from_row(&row)
}

/// Queues again every dead letter of the subscription created in `[from, to)`; returns how many.
pub async fn redeliver_dead(
    tx: &Tx,
    tenant: TenantId,
    subscription: WebhookId,
    from: &str,
    to: &str,
) -> Result<u64, DbError> {
    tx.execute(
        &format!(
            "{REQUEUE} and d.status = 'dead'
               and d.created_at >= $3::text::timestamptz and d.created_at < $4::text::timestamptz"
        ),
        &[tenant.into(), subscription.into(), from.into(), to.into()],
    )
    .await
}

fn subscription_from_row(row: &Row) -> Result<Subscription, DbError> {
    Ok(Subscription {
        id: row.get("id")?,
        url: row.get("url")?,
        event_types: row.get("event_types")?,
        description: row.get("description")?,
        active: row.get("active")?,
        disabled_reason: row.get("disabled_reason")?,
        previous_secret_expires_at: row.get("previous_secret_expires_at")?,
        failing_since: row.get("failing_since")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn delivery_from_row(row: &Row) -> Result<Delivery, DbError> {
    Ok(Delivery {
        id: row.get("id")?,
        subscription_id: row.get("subscription_id")?,
        event_id: row.get("event_id")?,
        event_type: row.get("event_type")?,
        status: row.get("status")?,
        attempts: row.get("attempts")?,
        next_attempt_at: row.get("next_attempt_at")?,
        last_attempt_at: row.get("last_attempt_at")?,
        last_status_code: row.get("last_status_code")?,
        last_error: row.get("last_error")?,
        last_duration_ms: row.get("last_duration_ms")?,
        history: row.get("history")?,
        created_at: row.get("created_at")?,
        completed_at: row.get("completed_at")?,
    })
}
