//! Custom field handlers: HTTP in, the service or a read, HTTP out.

use super::{repository, service};
use crm_domain::custom_field::CustomFieldDraft;
use crm_domain::CustomFieldId;
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::json;

/// `POST /api/v1/custom-fields`: 201 with the definition, its `ETag` and `Location`.
pub async fn create(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: CustomFieldDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let field = service::create(uow, draft).await?;
        let location = format!("/api/v1/custom-fields/{}", field.id);
        response::entity(StatusCode::CREATED, &field, field.version, Some(&location))
    })
    .await
}

/// `GET /api/v1/custom-fields`: every definition by key (at most 200), archived ones with
/// `?include_archived=true`.
pub async fn list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["include_archived"])?;
    let archived = query.flag("include_archived")?;
    let fields = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, archived).await
        })
        .await?;
    json(StatusCode::OK, &json!({ "data": fields }))
}

/// `GET /api/v1/custom-fields/{id}`.
pub async fn get(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<CustomFieldId>("id")?;
    let field = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &field, field.version, None)
}

/// `PATCH /api/v1/custom-fields/{id}`: JSON Merge Patch with `If-Match`.
pub async fn update(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<CustomFieldId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let field = service::update(uow, id, &patch, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &field, field.version, None)
    })
    .await
}
