//! The export handlers: the request read into an export (the list's filters or a search body), the
//! first page read before answering (so that a bad request or a failure is a problem, not a cut
//! body), then the rest streamed a page at a time.

use super::service::Export;
use super::{jobs, repository};
use crate::search;
use bytes::Bytes;
use crm_domain::contact::export::ExportDraft;
use crm_domain::contact::filter::SAVED_FILTERS;
use crm_domain::import::Format;
use crm_domain::ExportId;
use crm_domain::{FieldError, ValidationErrors};
use crm_platform::http::json::parse_body;
use crm_platform::http::query::Query;
use crm_platform::http::response::json;
use crm_platform::http::response::set_header;
use crm_platform::http::{ApiResponse, ResponseBody};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use futures::StreamExt;
use http::header;
use http::StatusCode;
use serde_json::Value;

/// The query parameters of `GET /api/v1/contacts/export` beside the list's filters.
const EXPORT_PARAMETERS: &[&str] = &["sort", "include_deleted", "format"];

/// The fields of a search body that page it, which an export (every match) refuses.
const PAGING_FIELDS: &[&str] = &["limit", "cursor", "count"];

/// `format=csv|ndjson`, else what `Accept` prefers of the two, else CSV.
fn format_of(ctx: &RequestContext, query: &Query) -> Result<Format, ApiError> {
    match query.get("format") {
        Some("csv") => return Ok(Format::Csv),
        Some("ndjson") => return Ok(Format::Ndjson),
        Some(_) => return Err(ApiError::bad_request("format must be csv or ndjson")),
        None => {}
    }
    let accept = ctx
        .request
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    Ok(if accept.contains("application/x-ndjson") {
        Format::Ndjson
    } else {
        Format::Csv
    })
}

fn media_type(format: Format) -> &'static str {
    match format {
        Format::Csv => "text/csv; charset=utf-8; header=present",
        Format::Ndjson => "application/x-ndjson",
    }
}

/// `GET /api/v1/contacts/export`: the contacts `GET /api/v1/contacts` would list with the same
/// filters and sort, every page of them.
pub async fn export_listed(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let allowed = [SAVED_FILTERS, EXPORT_PARAMETERS].concat();
    let query = Query::parse(ctx.request.query.as_deref(), &allowed)?;
    let format = format_of(&ctx, &query)?;
    let export = Export::listed(ctx.app.clone(), tenant, |name| query.get(name), format).await?;
    respond(export).await
}

/// `POST /api/v1/contacts/export`: the contacts a `POST /api/v1/contacts/search` body matches
/// (without its paging fields), every one of them.
pub async fn export_searched(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["format"])?;
    let format = format_of(&ctx, &query)?;
    let body: Value = parse_body(&ctx.request)?;
    let paged: Vec<FieldError> = PAGING_FIELDS
        .iter()
        .filter(|field| body.get(**field).is_some())
        .map(|field| {
            FieldError::new(
                format!("/{field}"),
                "not_allowed",
                "an export reads every match; it has no pages",
            )
        })
        .collect();
    if !paged.is_empty() {
        return Err(ValidationErrors(paged).into());
    }
    let (search, lists) = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            search::handlers::prepare(ctx.app.config.default_phone_region, tenant, tx, &body).await
        })
        .await?;
    let export = Export::new(ctx.app.clone(), tenant, search, lists, format).await?;
    respond(export).await
}

/// Reads the first page now, then answers with it and a stream of the pages after it.
async fn respond(mut export: Export) -> Result<ApiResponse, ApiError> {
    let format = export.format();
    let mut first = export.header();
    let (_, more) = export.write_page(&mut first).await?;
    let rest = futures::stream::try_unfold((export, more), |(mut export, more)| async move {
        if !more {
            return Ok(None);
        }
        let mut chunk = String::new();
        let (_, more) = export.write_page(&mut chunk).await?;
        Ok(Some((Bytes::from(chunk), (export, more))))
    });
    let chunks = futures::stream::once(async { Ok(Bytes::from(first)) }).chain(rest);
    let mut response = ApiResponse::new(ResponseBody::streamed(Box::pin(chunks)));
    set_header(&mut response, header::CONTENT_TYPE, media_type(format));
    set_header(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"contacts.{}\"", format.as_str()),
    );
    // Personal data: no shared cache keeps a copy.
    set_header(&mut response, header::CACHE_CONTROL, "no-store");
    Ok(response)
}

/// `POST /api/v1/exports`: an export job of the list's `filters` or a `search` body; 202 with
/// `Location`, and the worker woken.
pub async fn create_export_job(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let draft: ExportDraft = parse_body(&ctx.request)?;
    let (format, source) = jobs::source_of(&ctx.app, tenant, draft).await?;
    let response = ctx
        .write(async |uow| {
            let job = jobs::create(uow, format, &source).await?;
            let mut response = json(StatusCode::ACCEPTED, &job)?;
            set_header(
                &mut response,
                header::LOCATION,
                &format!("/api/v1/exports/{}", job.id),
            );
            Ok(response)
        })
        .await?;
    ctx.app.job_wakeup.publish().await;
    Ok(response)
}

/// `GET /api/v1/exports/{id}`: the job, with its `download_url` once completed.
pub async fn get_export_job(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ExportId>("id")?;
    let job = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| jobs::find(tx, tenant, id).await)
        .await?;
    json(StatusCode::OK, &job)
}

/// `GET /api/v1/exports/{id}/download`: the completed job's file, streamed chunk by chunk; 409
/// before it completes, 410 once it has expired.
pub async fn download_export(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ExportId>("id")?;
    let stored = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find_job(tx, tenant, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    if stored.expired {
        return Err(ApiError::Gone {
            detail: format!(
                "the export expired at {}",
                stored.job.expires_at.unwrap_or_default()
            ),
        });
    }
    if stored.job.status != "completed" {
        return Err(ApiError::conflict(
            format!("the export is {}", stored.job.status),
            "/status",
            "not_completed",
            "download the file once the job has completed",
        ));
    }
    let app = ctx.app.clone();
    let chunks = stored.chunks;
    let body = futures::stream::try_unfold(0i64, move |seq| {
        let app = app.clone();
        async move {
            if seq >= chunks {
                return Ok(None);
            }
            let data = app
                .db
                .read(tenant, async |tx: &Tx| {
                    repository::chunk(tx, tenant, id, seq).await
                })
                .await?
                .ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(Some((Bytes::from(data), seq + 1)))
        }
    });
    let format = stored.job.format;
    let mut response = ApiResponse::new(ResponseBody::streamed(Box::pin(body)));
    set_header(&mut response, header::CONTENT_TYPE, media_type(format));
    set_header(
        &mut response,
        header::CONTENT_DISPOSITION,
        &format!("attachment; filename=\"contacts-{id}.{}\"", format.as_str()),
    );
    set_header(&mut response, header::CACHE_CONTROL, "no-store");
    Ok(response)
}
