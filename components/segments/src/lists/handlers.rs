//! List handlers: HTTP in, the lists service or a read, HTTP out. A list's contacts are the
//! contacts component's (`GET /api/v1/lists/{id}/contacts`).

use super::repository;
use super::service;
use crm_domain::list::{ContactList, ListDraft, ListKind, MembershipChange, MembershipChangeDraft};
use crm_domain::ListId;
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `POST /api/v1/lists`: 201 with the list, its `ETag` and `Location`.
pub async fn create_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: ListDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let list = service::create_list(uow, draft).await?;
        let location = format!("/api/v1/lists/{}", list.id);
        response::entity(StatusCode::CREATED, &list, list.version, Some(&location))
    })
    .await
}

/// `GET /api/v1/lists`: the tenant's lists by name, of one `kind` if asked, keyset-paginated.
pub async fn list_lists(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor", "kind"])?;
    let kind = query
        .get("kind")
        .map(|raw| {
            ListKind::parse(raw)
                .ok_or_else(|| ApiError::bad_request("kind must be static or smart"))
        })
        .transpose()?;
    let page: PageRequest<(String, ListId)> = PageRequest::from_query(&query)?;
    let rows = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, kind, page.after.as_ref(), page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_keyed_rows(rows, page.limit, |list: &ContactList, key: &String| {
            (key.clone(), list.id)
        }),
    )
}

/// `GET /api/v1/lists/{id}`.
pub async fn get_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ListId>("id")?;
    let list = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &list, list.version, None)
}

/// `PATCH /api/v1/lists/{id}`: JSON Merge Patch of `name`, `description`, `filter`; `If-Match`.
pub async fn update_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ListId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let list = service::update_list(uow, id, &patch, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &list, list.version, None)
    })
    .await
}

/// `DELETE /api/v1/lists/{id}`: 204; its memberships go with it.
pub async fn delete_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ListId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete_list(uow, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
}

/// `POST /api/v1/lists/{id}/members` with `{"add": [...], "remove": [...]}` (at most 1,000 ids):
/// 200 with one result per id.
pub async fn change_members(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ListId>("id")?;
    let draft: MembershipChangeDraft = parse_body(&ctx.request)?;
    let change = MembershipChange::parse(draft)?;
    ctx.write(async |uow| {
        json(
            StatusCode::OK,
            &service::change_members(uow, id, change).await?,
        )
    })
    .await
}
