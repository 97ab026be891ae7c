//! The timeline's one statement: the contact's audit records through its activity index, and the
//! deliveries of the events written beside them, merged newest first.

use crm_domain::timeline::{EntryActor, TimelineEntry};
use crm_domain::{ContactId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, SqlValue, Tx};
use uuid::Uuid;

/// Each source is limited and ordered on its own (so each walks its index from the cursor), then
/// the two are merged. `$3`: kinds (null for all); `$4`/`$5`: from (inclusive) and to
/// (exclusive); `$6`/`$7`: the cursor.
const TIMELINE: &str = "
    select id, kind, rfc3339(at) as at, actor_type, actor, action, entity_type, entity_id, details
    from (
        (select a.id, ca.kind, ca.occurred_at as at, a.actor_type, a.actor, a.action, a.entity_type,
                a.entity_id, a.changes as details
         from contact_activity ca
         join audit_log a on a.tenant_id = ca.tenant_id and a.occurred_at = ca.occurred_at
                         and a.id = ca.audit_id
         where ca.tenant_id = $1 and ca.contact_id = $2
           and ($3::text[] is null or ca.kind = any($3::text[]))
           and ($4::text is null or ca.occurred_at >= $4::text::timestamptz)
           and ($5::text is null or ca.occurred_at < $5::text::timestamptz)
           and ($6::text is null or (ca.occurred_at, ca.audit_id) < ($6::text::timestamptz, $7::uuid))
         order by ca.occurred_at desc, ca.audit_id desc
         limit $8)
        union all
        (select d.id, 'deliveries', d.created_at, 'system', 'webhook-dispatcher', d.status,
                'delivery', d.id,
                jsonb_build_object('webhook_id', d.subscription_id, 'event_id', d.event_id,
                                   'event_type', d.event_type, 'attempts', d.attempts,
                                   'last_status_code', d.last_status_code,
                                   'completed_at', rfc3339(d.completed_at))
         from contact_activity ca
         join webhook_deliveries d on d.tenant_id = ca.tenant_id and d.event_id = ca.event_id
         where ca.tenant_id = $1 and ca.contact_id = $2 and ca.event_id is not null
           and ($3::text[] is null or 'deliveries' = any($3::text[]))
           and ($4::text is null or d.created_at >= $4::text::timestamptz)
           and ($5::text is null or d.created_at < $5::text::timestamptz)
           and ($6::text is null or (d.created_at, d.id) < ($6::text::timestamptz, $7::uuid))
         order by d.created_at desc, d.id desc
         limit $8)
    ) entries
    order by entries.at desc, entries.id desc
    limit $8";

/// Where a page ended: its last entry's time and id.
pub type TimelineCursor = (CursorTime, Uuid);

/// What to read: the kinds (all if empty), the time range, the page.
pub struct TimelineQuery<'a> {
    pub kinds: &'a [String],
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<&'a TimelineCursor>,
    pub limit: i64,
}

pub async fn timeline(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    query: &TimelineQuery<'_>,
) -> Result<Vec<TimelineEntry>, DbError> {
    let kinds = if query.kinds.is_empty() {
        SqlValue::Null
    } else {
        SqlValue::TextArray(query.kinds.to_vec())
    };
    let (at, id) = match query.after {
        Some((at, id)) => (SqlValue::from(at.as_str()), SqlValue::from(*id)),
        None => (SqlValue::Null, SqlValue::Null),
    };
    tx.query(
        TIMELINE,
        &[
            tenant.into(),
            contact.into(),
            kinds,
            query.from.clone().into(),
            query.to.clone().into(),
            at,
            id,
            SqlValue::Int(query.limit),
        ],
    )
    .await?
    .iter()
    .map(|row| {
        let id: Uuid = row.get("id")?;
        let entity_id: Uuid = row.get("entity_id")?;
        Ok(TimelineEntry {
            id: id.to_string(),
            kind: row.get("kind")?,
            at: row.get("at")?,
            actor: EntryActor {
                kind: row.get("actor_type")?,
                id: row.get("actor")?,
            },
            action: row.get("action")?,
            entity_type: row.get("entity_type")?,
            entity_id: entity_id.to_string(),
            details: row.get("details")?,
        })
    })
    .collect()
}
