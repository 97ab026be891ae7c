//! Note handlers: HTTP in, the notes service or a read, HTTP out.

use crate::repository::{self, NoteCursor};
use crate::service;
use crm_domain::note::{Note, NoteDraft};
use crm_domain::{ContactId, NoteId};
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `POST /api/v1/contacts/{id}/notes`: 201 with the note, its `ETag` and `Location`.
pub async fn create(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let draft: NoteDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let note = service::create(uow, contact, draft).await?;
        let location = format!("/api/v1/contacts/{contact}/notes/{}", note.id);
        response::entity(StatusCode::CREATED, &note, note.version, Some(&location))
    })
    .await
}

/// `GET /api/v1/contacts/{id}/notes`: pinned first, newest first, keyset-paginated.
pub async fn list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<NoteCursor> = PageRequest::from_query(&query)?;
    let notes = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            Ok(
                repository::list(tx, tenant, contact, page.after.as_ref(), page.fetch_limit())
                    .await?,
            )
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(notes, page.limit, |n: &Note| {
            (n.pinned, n.created_at.clone(), n.id)
        }),
    )
}

/// `GET /api/v1/contacts/{id}/notes/{note_id}`: with its `ETag` (304 on `If-None-Match`).
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let id = ctx.path_id::<NoteId>("note_id")?;
    let note = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Ok(None);
            }
            repository::find(tx, tenant, contact, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &note, note.version, None)
}

/// `PATCH /api/v1/contacts/{id}/notes/{note_id}`: JSON Merge Patch of `body` and `pinned`,
/// `If-Match` honoured.
pub async fn update(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let id = ctx.path_id::<NoteId>("note_id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let note = service::update(uow, contact, id, &patch, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &note, note.version, None)
    })
    .await
}

/// `DELETE /api/v1/contacts/{id}/notes/{note_id}`: 204, `If-Match` honoured.
pub async fn delete(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let id = ctx.path_id::<NoteId>("note_id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete(uow, contact, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
}
