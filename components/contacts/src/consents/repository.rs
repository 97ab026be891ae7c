//! Consent record storage: appended and read, never updated.

use crm_domain::consent::{ConsentRecord, NewConsent, PurposeState};
use crm_domain::note::Author;
use crm_domain::{Actor, ConsentId, ContactId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};

const COLUMNS: &str =
    "r.id, r.contact_id, r.purpose, r.status, r.legal_basis, r.source, r.evidence,
    rfc3339(r.effective_at) as effective_at, r.recorded_by_type, r.recorded_by,
    rfc3339(r.recorded_at) as recorded_at";

const INSERT: &str = "
    insert into consent_records as r (tenant_id, id, contact_id, purpose, status, legal_basis,
        source, evidence, effective_at, recorded_by_type, recorded_by)
    values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::text::timestamptz, now()), $10, $11)
    returning {columns}";
/// Newest first (by when they took effect), after the cursor `(effective_at, id)` if any.
const LIST: &str = "
    select {columns} from consent_records r
    where r.tenant_id = $1 and r.contact_id = $2 and ($3::text is null or r.purpose = $3)
      and ($4::text is null or (r.effective_at, r.id) < ($4::text::timestamptz, $5::uuid))
    order by r.effective_at desc, r.id desc
    limit $6";
/// Each purpose's latest record effective at `$3` (now if null).
const STATE: &str = "
    select distinct on (r.purpose) r.purpose, r.status, r.legal_basis, r.source,
        rfc3339(r.effective_at) as effective_at, r.id
    from consent_records r
    where r.tenant_id = $1 and r.contact_id = $2
      and r.effective_at <= coalesce($3::text::timestamptz, now())
    order by r.purpose, r.effective_at desc, r.id desc";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

/// Where a page of records ended: the last one's effective time and id.
pub type ConsentCursor = (CursorTime, ConsentId);

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    consent: &NewConsent,
    recorded_by: &Actor,
) -> Result<ConsentRecord, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &[
                tenant.into(),
                ConsentId::generate().into(),
                contact.into(),
                consent.purpose.as_str().into(),
                consent.status.into(),
                consent.legal_basis.into(),
                consent.source.as_str().into(),
                consent.evidence.clone().into(),
                consent.effective_at.map(crm_domain::time::rfc3339).into(),
                recorded_by.kind().into(),
                recorded_by.id().into(),
            ],
        )
        .await?;
    record_from_row(&row)
}

pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    purpose: Option<&str>,
    after: Option<&ConsentCursor>,
    limit: i64,
) -> Result<Vec<ConsentRecord>, DbError> {
    let (at, id) = match after {
        Some((at, id)) => (SqlValue::from(at.as_str()), SqlValue::from(*id)),
        None => (SqlValue::Null, SqlValue::Null),
    };
    tx.query(
        &sql(LIST),
        &[
            tenant.into(),
            contact.into(),
            purpose.into(),
            at,
            id,
            SqlValue::Int(limit),
        ],
    )
    .await?
    .iter()
    .map(record_from_row)
    .collect()
}

/// Every purpose's state at `at` (RFC 3339; now if none), by purpose.
pub async fn state(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    at: Option<&str>,
) -> Result<Vec<PurposeState>, DbError> {
    tx.query(STATE, &[tenant.into(), contact.into(), at.into()])
        .await?
        .iter()
        .map(|row| {
            Ok(PurposeState {
                purpose: row.get("purpose")?,
                status: row.get("status")?,
                legal_basis: row.get("legal_basis")?,
                source: row.get("source")?,
                effective_at: row.get("effective_at")?,
                record_id: row.get("id")?,
            })
        })
        .collect()
}

fn record_from_row(row: &Row) -> Result<ConsentRecord, DbError> {
    Ok(ConsentRecord {
        id: row.get("id")?,
        contact_id: row.get("contact_id")?,
        purpose: row.get("purpose")?,
        status: row.get("status")?,
        legal_basis: row.get("legal_basis")?,
        source: row.get("source")?,
        evidence: row.get("evidence")?,
        effective_at: row.get("effective_at")?,
        recorded_by: Author {
            kind: row.get("recorded_by_type")?,
            id: row.get("recorded_by")?,
        },
        recorded_at: row.get("recorded_at")?,
    })
}
