//! The timeline's one statement: the contact's audit records through its activity index, and the
//! deliveries of the events written beside them, merged newest first.

use crm_domain::timeline::{EntryActor, TimelineEntry};
use crm_domain::{ContactId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{Db, DbError, SqlValue};
use uuid::Uuid;

/// One call of `contact_timeline` (migration 0022): it sets the tenant and reads the page (the
/// contact's audit records through its activity index, merged with the deliveries of the events
/// written beside them), with a plan kept for the connection. `$3`: kinds (null for all);
/// `$4`/`$5`: from (inclusive) and to (exclusive); `$6`/`$7`: the cursor. No rows for a contact that
/// is not live.
const TIMELINE: &str = "
    select * from contact_timeline($1, $2, $3::text[], $4::text::timestamptz, $5::text::timestamptz,
                                   $6::text::timestamptz, $7::uuid, $8::int8::int4)";

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
    db: &Db,
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
    db.call(
        TIMELINE,
        &[
            tenant.into(),
            contact.as_uuid().into(),
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
