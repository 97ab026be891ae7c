//! Call storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::call::{Call, CallNumber, CallStatus, Direction, NewCall};
use crm_domain::{CallId, ContactId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, Keyset, Row, SqlBuilder, SqlValue, Tx};

/// The foreign key that refuses a `contact_id` the tenant does not have.
pub const UNKNOWN_CONTACT: &str = "calls_tenant_id_contact_id_fkey";

const COLUMNS: &str = "c.id, c.contact_id, c.direction, c.from_raw, c.from_e164, c.from_region,
    c.to_raw, c.to_e164, c.to_region, rfc3339(c.started_at) as started_at,
    c.duration_seconds::int8 as duration_seconds, c.status, c.outcome, c.notes, c.recording_url,
    c.agent_id, c.version, rfc3339(c.created_at) as created_at,
    rfc3339(c.updated_at) as updated_at";

const INSERT: &str = "
    insert into calls as c (tenant_id, id, contact_id, direction, from_raw, from_e164, from_region,
                            to_raw, to_e164, to_region, started_at, duration_seconds, status, outcome,
                            notes, recording_url, agent_id)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::timestamptz, $12::int8::int4, $13,
            $14, $15, $16, $17)
    returning {columns}";

const UPDATE: &str = "
    update calls as c
    set contact_id = $3, direction = $4, from_raw = $5, from_e164 = $6, from_region = $7,
        to_raw = $8, to_e164 = $9, to_region = $10, started_at = $11::text::timestamptz,
        duration_seconds = $12::int8::int4, status = $13, outcome = $14, notes = $15,
        recording_url = $16, agent_id = $17, version = version + 1
    where tenant_id = $1 and id = $2
    returning {columns}";

const FIND: &str = "select {columns} from calls c where c.tenant_id = $1 and c.id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from calls c where c.tenant_id = $1 and c.id = $2 for update";
const DELETE: &str = "delete from calls where tenant_id = $1 and id = $2";

/// The live contacts that have `e164` among their phones (at most two: more tells nothing more).
const CONTACTS_WITH_NUMBER: &str = "
    select distinct p.contact_id from contact_phones p
    join contacts k on k.tenant_id = p.tenant_id and k.id = p.contact_id
    where p.tenant_id = $1 and p.e164 = $2 and k.deleted_at is null
    limit 2";

/// A contact's last_contacted_at is the start of its latest call; changing it is a new version.
const TOUCH_CONTACT: &str = "
    update contacts k
    set last_contacted_at = (select max(started_at) from calls c where c.tenant_id = $1 and c.contact_id = $2),
        version = k.version + 1
    where k.tenant_id = $1 and k.id = $2";

const CONTACT_EXISTS: &str = "select 1 from contacts where tenant_id = $1 and id = $2";

const STATS: &str = "
    select {key} as key, count(*)::int8 as count,
           coalesce(sum(duration_seconds), 0)::int8 as total_duration_seconds
    from calls
    where tenant_id = $1 and started_at >= $2::text::timestamptz and started_at < $3::text::timestamptz
    group by 1 order by 1";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

fn params(
    tenant: TenantId,
    id: CallId,
    contact: Option<ContactId>,
    call: &NewCall,
) -> Vec<SqlValue> {
    vec![
        tenant.into(),
        id.into(),
        contact.map(|c| c.as_uuid()).into(),
        call.direction.as_str().into(),
        call.from.raw().into(),
        call.from.e164().into(),
        call.from.region().to_string().into(),
        call.to.raw().into(),
        call.to.e164().into(),
        call.to.region().to_string().into(),
        call.started_at.to_rfc3339().into(),
        SqlValue::Int(call.duration_seconds),
        call.status.as_str().into(),
        call.outcome.clone().into(),
        call.notes.clone().into(),
        call.recording_url.clone().into(),
        call.agent_id.clone().into(),
    ]
}

/// Stores a new call.
///
/// # Errors
/// MUST return the violation of [`UNKNOWN_CONTACT`] when `contact` is not a contact of the tenant.
pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    id: CallId,
    contact: Option<ContactId>,
    call: &NewCall,
) -> Result<Call, DbError> {
    call_from_row(
        &tx.query_one(&sql(INSERT), &params(tenant, id, contact, call))
            .await?,
    )
}

/// Replaces a locked call's fields. Errors as [`insert`].
pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    id: CallId,
    contact: Option<ContactId>,
    call: &NewCall,
) -> Result<Call, DbError> {
    call_from_row(
        &tx.query_one(&sql(UPDATE), &params(tenant, id, contact, call))
            .await?,
    )
}

pub async fn delete(tx: &Tx, tenant: TenantId, id: CallId) -> Result<(), DbError> {
    tx.execute(DELETE, &[tenant.into(), id.into()])
        .await
        .map(|_| ())
}

pub async fn find(tx: &Tx, tenant: TenantId, id: CallId) -> Result<Option<Call>, DbError> {
    tx.query_opt(&sql(FIND), &[tenant.into(), id.into()])
        .await?
        .map(|row| call_from_row(&row))
        .transpose()
}

pub async fn find_for_update(
    tx: &Tx,
    tenant: TenantId,
    id: CallId,
) -> Result<Option<Call>, DbError> {
    tx.query_opt(&sql(FIND_FOR_UPDATE), &[tenant.into(), id.into()])
        .await?
        .map(|row| call_from_row(&row))
        .transpose()
}

/// The one live contact that has the number `e164`, if exactly one has it.
pub async fn only_contact_with_number(
    tx: &Tx,
    tenant: TenantId,
    e164: &str,
) -> Result<Option<ContactId>, DbError> {
    let rows = tx
        .query(CONTACTS_WITH_NUMBER, &[tenant.into(), e164.into()])
        .await?;
    match rows.as_slice() {
        [only] => Ok(Some(ContactId::from_uuid(only.get(0)?))),
        _ => Ok(None),
    }
}

pub async fn contact_exists(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
) -> Result<bool, DbError> {
    Ok(tx
        .query_opt(CONTACT_EXISTS, &[tenant.into(), contact.as_uuid().into()])
        .await?
        .is_some())
}

/// Recomputes `contact`'s last_contacted_at from its calls.
pub async fn touch_contact(tx: &Tx, tenant: TenantId, contact: ContactId) -> Result<(), DbError> {
    tx.execute(TOUCH_CONTACT, &[tenant.into(), contact.as_uuid().into()])
        .await
        .map(|_| ())
}

/// Filters of a call list.
#[derive(Debug, Default)]
pub struct CallFilter {
    pub contact_id: Option<ContactId>,
    pub agent_id: Option<String>,
    pub direction: Option<Direction>,
    pub status: Option<CallStatus>,
    pub started_after: Option<String>,
    pub started_before: Option<String>,
}

/// Up to `limit` calls, newest first, after the cursor `(started_at, id)`.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    filter: &CallFilter,
    after: Option<&(CursorTime, CallId)>,
    limit: i64,
) -> Result<Vec<Call>, DbError> {
    let mut query = SqlBuilder::new(
        format!("select {COLUMNS} from calls c where c.tenant_id = $1"),
        vec![tenant.into()],
    );
    if let Some(contact) = filter.contact_id {
        query.push(" and c.contact_id = ?", [contact.as_uuid().into()]);
    }
    if let Some(agent) = &filter.agent_id {
        query.push(" and c.agent_id = ?", [agent.as_str().into()]);
    }
    if let Some(direction) = filter.direction {
        query.push(" and c.direction = ?", [direction.as_str().into()]);
    }
    if let Some(status) = filter.status {
        query.push(" and c.status = ?", [status.as_str().into()]);
    }
    if let Some(time) = &filter.started_after {
        query.push(
            " and c.started_at > ?::text::timestamptz",
            [time.as_str().into()],
        );
    }
    if let Some(time) = &filter.started_before {
        query.push(
            " and c.started_at < ?::text::timestamptz",
            [time.as_str().into()],
        );
    }
    query.page(
        &Keyset::newest_first("c.started_at", "c.id"),
        after.map(|(key, id)| vec![key.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(call_from_row)
        .collect()
}

/// One group of the call statistics.
#[derive(Debug, serde::Serialize)]
pub struct StatsGroup {
    pub key: String,
    pub count: i64,
    pub total_duration_seconds: i64,
    pub average_duration_seconds: f64,
}

/// Counts and durations of the calls started in `[from, to)`, grouped by the SQL `key`.
pub async fn stats(
    tx: &Tx,
    tenant: TenantId,
    key: &str,
    from: &str,
    to: &str,
) -> Result<Vec<StatsGroup>, DbError> {
    tx.query(
        &STATS.replace("{key}", key),
        &[tenant.into(), from.into(), to.into()],
    )
    .await?
    .iter()
    .map(|row| {
        let count: i64 = row.get("count")?;
        let total: i64 = row.get("total_duration_seconds")?;
        Ok(StatsGroup {
            key: row.get("key")?,
            count,
            total_duration_seconds: total,
            average_duration_seconds: if count == 0 {
                0.0
            } else {
                (total as f64 / count as f64 * 100.0).round() / 100.0
            },
        })
    })
    .collect()
}

fn choice<T: Copy>(raw: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Result<T, DbError> {
    all.iter()
        .copied()
        .find(|c| name(*c) == raw)
        .ok_or_else(|| DbError::Decode {
            column: "choice".into(),
            expected: "a known value",
            found: raw.to_owned(),
        })
}

fn call_from_row(row: &Row) -> Result<Call, DbError> {
    let started_at: chrono::DateTime<chrono::Utc> = row.get("started_at")?;
    let duration_seconds: i64 = row.get("duration_seconds")?;
    let direction: String = row.get("direction")?;
    let status: String = row.get("status")?;
    Ok(Call {
        id: row.get("id")?,
        contact_id: row.get("contact_id")?,
        direction: choice(
            &direction,
            &[Direction::Inbound, Direction::Outbound],
            Direction::as_str,
        )?,
        from: CallNumber {
            number: row.get("from_raw")?,
            e164: row.get("from_e164")?,
            region: row.get("from_region")?,
        },
        to: CallNumber {
            number: row.get("to_raw")?,
            e164: row.get("to_e164")?,
            region: row.get("to_region")?,
        },
        started_at,
        ended_at: started_at + chrono::Duration::seconds(duration_seconds),
        duration_seconds,
        status: choice(&status, &CallStatus::ALL, CallStatus::as_str)?,
        outcome: row.get("outcome")?,
        notes: row.get("notes")?,
        recording_url: row.get("recording_url")?,
        agent_id: row.get("agent_id")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
