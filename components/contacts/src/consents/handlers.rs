//! Consent handlers: HTTP in, the consents service or a read, HTTP out.

use super::repository::{self, ConsentCursor};
use super::service;
use crm_domain::consent::{parse_purpose, ConsentDraft, ConsentRecord, ConsentState};
use crm_domain::ContactId;
use crm_platform::http::json::parse_body;
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `POST /api/v1/contacts/{id}/consents`: 201 with the record.
pub async fn record(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let draft: ConsentDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let record = service::record(uow, contact, draft).await?;
        json(StatusCode::CREATED, &record)
    })
    .await
}

/// `GET /api/v1/contacts/{id}/consents`: the records, newest first, of one `purpose` if asked.
pub async fn list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(
        ctx.request.query.as_deref(),
        &["limit", "cursor", "purpose"],
    )?;
    let purpose = query
        .get("purpose")
        .map(|raw| {
            parse_purpose(raw, "purpose")
                .map_err(|e| ApiError::bad_request(format!("purpose {}", e.message)))
        })
        .transpose()?;
    let page: PageRequest<ConsentCursor> = PageRequest::from_query(&query)?;
    let records = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            Ok(repository::list(
                tx,
                tenant,
                contact,
                purpose.as_deref(),
                page.after.as_ref(),
                page.fetch_limit(),
            )
            .await?)
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(records, page.limit, |r: &ConsentRecord| {
            (r.effective_at.clone(), r.id)
        }),
    )
}

/// `GET /api/v1/contacts/{id}/consent-state?at=`: every purpose's state at `at` (now by default):
/// its latest record effective by then.
pub async fn state(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), &["at"])?;
    let at = rfc3339(query.time("at")?.unwrap_or_else(chrono::Utc::now));
    let purposes = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            Ok(repository::state(tx, tenant, contact, Some(&at)).await?)
        })
        .await?;
    json(
        StatusCode::OK,
        &ConsentState {
            contact_id: contact,
            at,
            purposes,
        },
    )
}
