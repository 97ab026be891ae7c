//! Audit queries. The log is append-only: nothing here writes.

use crm_domain::{AuditRecordId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, Keyset, Row, SqlBuilder, Tx};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

const COLUMNS: &str = "a.id, rfc3339(a.occurred_at) as occurred_at, a.actor, a.actor_type, a.action, a.entity_type, a.entity_id, a.request_id, a.changes";

/// One audit record as the API returns it.
#[derive(Debug, Serialize)]
pub struct AuditEvent {
    pub id: AuditRecordId,
    pub occurred_at: String,
    pub actor: String,
    /// `user`, `api_client`, `import_job`, `workflow_rule` or `system`.
    pub actor_type: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub request_id: String,
    pub changes: Value,
}

#[derive(Debug, Default)]
pub struct EventFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: AuditRecordId,
) -> Result<Option<AuditEvent>, DbError> {
    tx.query_opt(
        &format!("select {COLUMNS} from audit_log a where a.tenant_id = $1 and a.id = $2"),
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|row| event_from_row(&row))
    .transpose()
}

/// Up to `limit` records, newest first, after the cursor `(occurred_at, id)`.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    filter: &EventFilter,
    after: Option<&(CursorTime, AuditRecordId)>,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    let mut query = SqlBuilder::new(
        format!("select {COLUMNS} from audit_log a where a.tenant_id = $1"),
        vec![tenant.into()],
    );
    if let Some(kind) = &filter.entity_type {
        query.push(" and a.entity_type = ?", [kind.as_str().into()]);
    }
    if let Some(id) = filter.entity_id {
        query.push(" and a.entity_id = ?", [id.into()]);
    }
    if let Some(actor) = &filter.actor {
        query.push(" and a.actor = ?", [actor.as_str().into()]);
    }
    if let Some(action) = &filter.action {
        query.push(" and a.action = ?", [action.as_str().into()]);
    }
    if let Some(from) = &filter.from {
        query.push(
            " and a.occurred_at >= ?::text::timestamptz",
            [from.as_str().into()],
        );
    }
    if let Some(to) = &filter.to {
        query.push(
            " and a.occurred_at < ?::text::timestamptz",
            [to.as_str().into()],
        );
    }
    query.page(
        &Keyset::newest_first("a.occurred_at", "a.id"),
        after.map(|(key, id)| vec![key.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
}

/// Record counts in `[from, to)` grouped by the SQL column `key`, most frequent first.
pub async fn report(
    tx: &Tx,
    tenant: TenantId,
    key: &str,
    from: &str,
    to: &str,
) -> Result<Vec<(String, i64)>, DbError> {
    let sql = format!(
        "select {key} as key, count(*)::int8 as count from audit_log
         where tenant_id = $1 and occurred_at >= $2::text::timestamptz and occurred_at < $3::text::timestamptz
         group by 1 order by 2 desc, 1"
    );
    tx.query(&sql, &[tenant.into(), from.into(), to.into()])
        .await?
        .iter()
        .map(|row| Ok((row.get("key")?, row.get("count")?)))
        .collect()
}

fn event_from_row(row: &Row) -> Result<AuditEvent, DbError> {
    Ok(AuditEvent {
        id: row.get("id")?,
        occurred_at: row.get("occurred_at")?,
        actor: row.get("actor")?,
        actor_type: row.get("actor_type")?,
        action: row.get("action")?,
        entity_type: row.get("entity_type")?,
        entity_id: row.get("entity_id")?,
        request_id: row.get("request_id")?,
        changes: row.get("changes")?,
    })
}
