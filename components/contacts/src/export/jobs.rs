//! Export jobs: a large export written by the worker a bounded step at a time, each step the next
//! pages of the file stored as one chunk with the cursor after it (a step that dies is redone from
//! the same cursor), then downloaded until it expires. The job's source (the list's filters or a
//! search body) is read again by each step, so a step needs nothing but the job.

use super::repository;
use super::service::Export;
use crate::search::{self, ListMembership};
use crm_domain::contact::export::{ExportAction, ExportDraft, ExportJob, ExportSource};
use crm_domain::contact::filter::SAVED_FILTERS;
use crm_domain::contact::search::SearchCursor;
use crm_domain::import::Format;
use crm_domain::{Actor, ExportId, FieldError, TenantId, ValidationErrors};
use crm_platform::store::db::Tx;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::{ApiError, App};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Pages one step writes: one chunk of the file.
pub const CHUNK_PAGES: usize = 5;
/// How long a completed export can be downloaded.
pub const DOWNLOAD_HOURS: i64 = 24;
/// The list's parameters an export job's filters may hold.
const JOB_PARAMETERS: &[&str] = &["sort", "include_deleted"];

/// Reads `draft`: a format and the list's filters or a search body (not both), each checked now by
/// opening the export it describes.
pub async fn source_of(
    app: &Arc<App>,
    tenant: TenantId,
    draft: ExportDraft,
) -> Result<(Format, ExportSource), ApiError> {
    let mut errors = ValidationErrors::default();
    let format = match draft.format.as_deref().unwrap_or("csv") {
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        _ => {
            errors.push(FieldError::new(
                "/format",
                "invalid_value",
                "format is csv or ndjson",
            ));
            Format::Csv
        }
    };
    let source = match (draft.filters, draft.search) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "/search",
                "not_allowed",
                "an export reads the list's filters or a search body, not both",
            ));
            None
        }
        (_, Some(search)) => {
            for field in ["limit", "cursor", "count"] {
                if search.get(field).is_some() {
                    errors.push(FieldError::new(
                        format!("/search/{field}"),
                        "not_allowed",
                        "an export reads every match; it has no pages",
                    ));
                }
            }
            Some(ExportSource::Search(search))
        }
        (filters, None) => {
            let mut read = BTreeMap::new();
            for (name, value) in filters.unwrap_or_default() {
                let known = SAVED_FILTERS.contains(&name.as_str())
                    || JOB_PARAMETERS.contains(&name.as_str());
                match value.as_str() {
                    Some(value) if known => {
                        read.insert(name, value.to_owned());
                    }
                    _ if !known => errors.push(FieldError::new(
                        format!("/filters/{name}"),
                        "unknown_filter",
                        "not a filter of GET /api/v1/contacts",
                    )),
                    _ => errors.push(FieldError::new(
                        format!("/filters/{name}"),
                        "invalid_type",
                        "a filter's value is a string, as the query string writes it",
                    )),
                }
            }
            Some(ExportSource::Filters(read))
        }
    };
    let source = errors
        .into_result(|| source)?
        .unwrap_or(ExportSource::Filters(BTreeMap::new()));
    open(app, tenant, format, &source).await?;
    Ok((format, source))
}

/// The export `source` describes.
async fn open(
    app: &Arc<App>,
    tenant: TenantId,
    format: Format,
    source: &ExportSource,
) -> Result<Export, ApiError> {
    match source {
        ExportSource::Filters(filters) => {
            let param = |name: &str| filters.get(name).map(String::as_str);
            Export::listed(app.clone(), tenant, param, format).await
        }
        ExportSource::Search(body) => {
            let region = app.config.default_phone_region;
            let (search, lists): (_, ListMembership) = app
                .db
                .read(tenant, async |tx: &Tx| {
                    search::handlers::prepare(region, tenant, tx, body).await
                })
                .await?;
            Export::new(app.clone(), tenant, search, lists, format).await
        }
    }
}

/// Queues the export job of `source`, audited as its creator's.
pub async fn create(
    uow: &UnitOfWork<'_>,
    format: Format,
    source: &ExportSource,
) -> Result<ExportJob, ApiError> {
    let id = ExportId::generate();
    let job =
        repository::insert_job(uow.tx(), uow.tenant(), id, format, source, uow.actor()).await?;
    uow.record_change(ExportAction::Created, id, None::<&ExportJob>, &job.job)
        .await?;
    Ok(job.job)
}

/// The job `id` of `tenant`; 404 when it has none.
pub async fn find(tx: &Tx, tenant: TenantId, id: ExportId) -> Result<ExportJob, ApiError> {
    Ok(repository::find_job(tx, tenant, id, false)
        .await?
        .ok_or(ApiError::NotFound)?
        .job)
}

/// One step of export `id`: its next pages written as one chunk, or the job completed. Whether
/// more work remains.
pub async fn step(app: &Arc<App>, tenant: TenantId, id: ExportId) -> Result<bool, ApiError> {
    let Some(stored) = app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find_job(tx, tenant, id, false).await
        })
        .await?
    else {
        return Ok(false);
    };
    if !matches!(stored.job.status.as_str(), "queued" | "running") {
        return Ok(false);
    }
    let mut export = open(app, tenant, stored.job.format, &stored.job.source).await?;
    export.resume(stored.position.clone());
    let mut chunk = if stored.job.rows == 0 && stored.position.is_none() {
        export.header()
    } else {
        String::new()
    };
    let mut written = 0;
    let mut more = true;
    for _ in 0..CHUNK_PAGES {
        let (rows, next) = export.write_page(&mut chunk).await?;
        written += rows;
        more = next;
        if !more {
            break;
        }
    }
    let position: Option<SearchCursor> = export.position().cloned();
    let actor = Actor::System(format!("export-{id}"));
    let correlation = format!("export-{id}");
    app.unit_of_work(
        tenant,
        &actor,
        &correlation,
        async |uow: &UnitOfWork<'_>| {
            let Some(now) = repository::find_job(uow.tx(), tenant, id, true).await? else {
                return Ok(false);
            };
            // Another worker wrote this step meanwhile (its lease ran out under this one): its
            // chunk stands, this one is dropped.
            if now.position != stored.position || now.job.status != stored.job.status {
                return Ok(true);
            }
            repository::append_chunk(
                uow.tx(),
                tenant,
                id,
                chunk.as_bytes(),
                written as i64,
                position.as_ref(),
                if more { None } else { Some(DOWNLOAD_HOURS) },
            )
            .await?;
            if !more {
                let job = find(uow.tx(), tenant, id).await?;
                uow.record_change(ExportAction::Completed, id, Some(&now.job), &job)
                    .await?;
            }
            Ok(more)
        },
    )
    .await
}

/// Marks export `id` failed with `reason`.
pub async fn fail(
    app: &Arc<App>,
    tenant: TenantId,
    id: ExportId,
    reason: &str,
) -> Result<(), ApiError> {
    app.db
        .transaction(tenant, async |tx: &Tx| {
            repository::fail_job(tx, tenant, id, reason).await
        })
        .await?;
    Ok(())
}
