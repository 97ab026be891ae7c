//! The audit record and the outbox event of a mutation, written in the mutation's transaction by
//! one statement: nothing is published that did not commit, and nothing that committed is lost.

use crate::app::RequestContext;
use crate::db::{DbError, SqlValue, Tx};
use crate::http::problem::ApiError;
use crm_domain::audit::AuditRecord;
use crm_domain::event::DomainEvent;
use crm_domain::EntityId;
use uuid::Uuid;

const RECORD: &str = "
    with audit as (
        insert into audit_log (tenant_id, id, actor, action, entity_type, entity_id, request_id, changes)
        values ($1, $2, $3, $4, $5, $6, $7, $8)
    )
    insert into outbox_events (tenant_id, id, event_type, entity_type, entity_id, payload, request_id)
    values ($1, $9, $10, $5, $6, $11, $7)";

/// Records a change of any entity but a contact: its audit record (the field-level diff from
/// `before`) and the event `event_type` carrying `after` as the API returns it.
#[allow(clippy::too_many_arguments)]
pub async fn record_change<T: serde::Serialize>(
    tx: &Tx,
    ctx: &RequestContext,
    action: &'static str,
    event_type: &'static str,
    entity_type: &'static str,
    entity_id: impl EntityId,
    before: Option<&T>,
    after: &T,
) -> Result<(), ApiError> {
    let audit = AuditRecord::of(action, entity_type, entity_id, before, Some(after));
    let event = DomainEvent::of(event_type, entity_type, entity_id, after);
    record(tx, ctx, &audit, &event).await
}

/// Appends `audit` and `event` for the request's principal and request id.
pub async fn record(
    tx: &Tx,
    ctx: &RequestContext,
    audit: &AuditRecord,
    event: &DomainEvent,
) -> Result<(), ApiError> {
    let principal = ctx.principal()?;
    let changes = serde_json::to_value(&audit.changes).map_err(anyhow::Error::from)?;
    tx.execute(
        RECORD,
        &[
            principal.tenant_id.into(),
            Uuid::now_v7().into(),
            principal.subject.as_str().into(),
            audit.action.into(),
            audit.entity_type.into(),
            audit.entity_id.into(),
            ctx.request_id.as_str().into(),
            changes.into(),
            Uuid::now_v7().into(),
            event.event_type.into(),
            SqlValue::Json(event.data.clone()),
        ],
    )
    .await
    .map_err(|e: DbError| ApiError::from(e))?;
    ctx.wake_dispatcher();
    Ok(())
}
