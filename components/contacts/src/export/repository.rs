//! What an export reads beside the contacts themselves: the columns a CSV export adds (custom
//! fields, consent purposes) and, for each page, the contacts' tags, preferences and consent.

use crate::preferences::repository::do_not_contact_from_row;
use crm_domain::contact::export::{ExportJob, ExportSource, Extras};
use crm_domain::contact::search::SearchCursor;
use crm_domain::import::Format;
use crm_domain::{Actor, ContactId, ExportId, TenantId};
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Every consent purpose the tenant has recorded, for the CSV header's consent columns.
const PURPOSES: &str =
    "select distinct purpose from consent_records where tenant_id = $1 order by purpose";

/// `$2`: a page's contact ids. Each one's tag names (in name order), preferences (a row only once
/// set) and each consent purpose's latest record in effect now.
const EXTRAS: &str = "
    select ids.id,
           coalesce(t.names, '{}') as tags,
           p.preferred_channel, p.language, p.time_zone,
           coalesce(p.do_not_email, false) as do_not_email,
           coalesce(p.do_not_phone, false) as do_not_phone,
           coalesce(p.do_not_sms, false) as do_not_sms,
           coalesce(p.do_not_post, false) as do_not_post,
           coalesce(k.consent, '{}'::jsonb) as consent
    from unnest($2::text[]::uuid[]) as ids(id)
    left join lateral (
        select array_agg(g.name order by lower(g.name)) as names
        from contact_tags ct join tags g on g.tenant_id = ct.tenant_id and g.id = ct.tag_id
        where ct.tenant_id = $1 and ct.contact_id = ids.id
    ) t on true
    left join contact_preferences p on p.tenant_id = $1 and p.contact_id = ids.id
    left join lateral (
        select jsonb_object_agg(latest.purpose, latest.status) as consent
        from (select distinct on (r.purpose) r.purpose, r.status
              from consent_records r
              where r.tenant_id = $1 and r.contact_id = ids.id and r.effective_at <= now()
              order by r.purpose, r.effective_at desc, r.id desc) latest
    ) k on true";

pub async fn purposes(tx: &Tx, tenant: TenantId) -> Result<Vec<String>, DbError> {
    tx.query(PURPOSES, &[tenant.into()])
        .await?
        .iter()
        .map(|row| row.get("purpose"))
        .collect()
}

pub async fn extras(
    tx: &Tx,
    tenant: TenantId,
    ids: &[ContactId],
) -> Result<HashMap<ContactId, Extras>, DbError> {
    tx.query(EXTRAS, &[tenant.into(), SqlValue::id_array(ids)])
        .await?
        .iter()
        .map(|row| Ok((row.get("id")?, extras_from_row(row)?)))
        .collect()
}

fn extras_from_row(row: &Row) -> Result<Extras, DbError> {
    let consent: Value = row.get("consent")?;
    let consent: BTreeMap<String, String> = consent
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(purpose, status)| Some((purpose.clone(), status.as_str()?.to_owned())))
        .collect();
    Ok(Extras {
        tags: row.get("tags")?,
        preferred_channel: row.get("preferred_channel")?,
        language: row.get("language")?,
        time_zone: row.get("time_zone")?,
        do_not_contact: do_not_contact_from_row(row)?,
        consent,
    })
}

const JOB_COLUMNS: &str =
    "e.id, e.status, e.format, e.request, e.position, e.chunks::int8 as chunks,
    e.rows_written, e.bytes, e.error, e.version, rfc3339(e.created_at) as created_at,
    rfc3339(e.updated_at) as updated_at, rfc3339(e.finished_at) as finished_at,
    rfc3339(e.expires_at) as expires_at, e.expires_at < now() as expired";

/// An export job as stored: what the API shows, where it stands, how many chunks it has.
#[derive(Debug, Clone)]
pub struct StoredExport {
    pub job: ExportJob,
    pub position: Option<SearchCursor>,
    pub chunks: i64,
    pub expired: bool,
}

fn json_of<T: serde::Serialize>(value: &T, column: &str) -> Result<Value, DbError> {
    serde_json::to_value(value).map_err(|error| DbError::Decode {
        column: column.into(),
        expected: "JSON",
        found: error.to_string(),
    })
}

pub async fn insert_job(
    tx: &Tx,
    tenant: TenantId,
    id: ExportId,
    format: Format,
    source: &ExportSource,
    actor: &Actor,
) -> Result<StoredExport, DbError> {
    let row = tx
        .query_one(
            &format!(
                "with e as (
                    insert into exports (tenant_id, id, format, request, actor_type, actor)
                    values ($1, $2, $3, $4, $5, $6) returning *)
                 select {JOB_COLUMNS} from e"
            ),
            &[
                tenant.into(),
                id.into(),
                format.as_str().into(),
                SqlValue::Json(json_of(source, "request")?),
                actor.kind().into(),
                actor.id().into(),
            ],
        )
        .await?;
    job_from_row(&row)
}

pub async fn find_job(
    tx: &Tx,
    tenant: TenantId,
    id: ExportId,
    for_update: bool,
) -> Result<Option<StoredExport>, DbError> {
    let lock = if for_update { " for update" } else { "" };
    tx.query_opt(
        &format!("select {JOB_COLUMNS} from exports e where e.tenant_id = $1 and e.id = $2{lock}"),
        &[tenant.into(), id.into()],
    )
    .await?
    .as_ref()
    .map(job_from_row)
    .transpose()
}

/// Stores the next chunk of the file and where the export stands after it; `expires_in_hours`
/// completes the job (its download expiring then).
pub async fn append_chunk(
    tx: &Tx,
    tenant: TenantId,
    id: ExportId,
    data: &[u8],
    rows: i64,
    position: Option<&SearchCursor>,
    expires_in_hours: Option<i64>,
) -> Result<(), DbError> {
    let position = match position {
        Some(cursor) => SqlValue::Json(json_of(cursor, "position")?),
        None => SqlValue::Null,
    };
    tx.execute(
        "with chunk as (
            insert into export_chunks (tenant_id, export_id, seq, data)
            select $1, $2, e.chunks, $3 from exports e where e.tenant_id = $1 and e.id = $2)
         update exports set chunks = chunks + 1, rows_written = rows_written + $4::int8,
                bytes = bytes + length($3), position = $5,
                status = case when $6::int8 is null then 'running' else 'completed' end,
                expires_at = now() + make_interval(hours => $6::int8::int4),
                finished_at = case when $6::int8 is null then null else now() end,
                lease_until = case when $6::int8 is null then lease_until else null end,
                version = version + 1
         where tenant_id = $1 and id = $2",
        &[
            tenant.into(),
            id.into(),
            data.to_vec().into(),
            rows.into(),
            position,
            expires_in_hours.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn fail_job(
    tx: &Tx,
    tenant: TenantId,
    id: ExportId,
    reason: &str,
) -> Result<(), DbError> {
    tx.execute(
        "update exports set status = 'failed', error = $3, finished_at = now(), lease_until = null,
                version = version + 1
         where tenant_id = $1 and id = $2 and status in ('queued', 'running')",
        &[tenant.into(), id.into(), reason.into()],
    )
    .await?;
    Ok(())
}

/// Chunk `seq` of the export's file.
pub async fn chunk(
    tx: &Tx,
    tenant: TenantId,
    id: ExportId,
    seq: i64,
) -> Result<Option<Vec<u8>>, DbError> {
    tx.query_opt(
        "select data from export_chunks where tenant_id = $1 and export_id = $2 and seq = $3::int8::int4",
        &[tenant.into(), id.into(), seq.into()],
    )
    .await?
    .map(|row| row.get("data"))
    .transpose()
}

fn job_from_row(row: &Row) -> Result<StoredExport, DbError> {
    let decode = |column: &str, found: String| DbError::Decode {
        column: column.into(),
        expected: "an export job",
        found,
    };
    let id: ExportId = row.get("id")?;
    let status: String = row.get("status")?;
    let format = match row.get::<String>("format")?.as_str() {
        "ndjson" => Format::Ndjson,
        _ => Format::Csv,
    };
    let source: ExportSource = serde_json::from_value(row.get("request")?)
        .map_err(|e| decode("request", e.to_string()))?;
    let position: Option<Value> = row.get("position")?;
    let position = position
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| decode("position", e.to_string()))?;
    let expired = row.get::<Option<bool>>("expired")?.unwrap_or(false);
    let expires_at: Option<String> = row.get("expires_at")?;
    Ok(StoredExport {
        job: ExportJob {
            id,
            download_url: (status == "completed" && !expired)
                .then(|| format!("/api/v1/exports/{id}/download")),
            status,
            format,
            source,
            rows: row.get("rows_written")?,
            bytes: row.get("bytes")?,
            expires_at,
            error: row.get("error")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            finished_at: row.get("finished_at")?,
            version: row.get("version")?,
        },
        position,
        chunks: row.get("chunks")?,
        expired,
    })
}
