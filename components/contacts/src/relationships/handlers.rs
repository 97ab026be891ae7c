//! Relationship handlers: HTTP in, the relationships service or a read, HTTP out.

use super::service;
use crm_domain::relationship::{RelationshipDraft, RelationshipTypeDraft};
use crm_domain::{ContactId, RelationshipId};
use crm_platform::http::json::parse_body;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::json;

/// `GET /api/v1/relationship-types`: the built-ins, then the tenant's.
pub async fn list_types(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let types = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| service::types(tx, tenant).await)
        .await?;
    json(StatusCode::OK, &json!({ "data": types }))
}

/// `POST /api/v1/relationship-types`: a type of the tenant's own; 201.
pub async fn create_type(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: RelationshipTypeDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        json(
            StatusCode::CREATED,
            &service::create_type(uow, draft).await?,
        )
    })
    .await
}

/// `GET /api/v1/contacts/{id}/relationships`: every link of the contact, newest first, each named
/// from this contact's side, with the other contact's display name.
pub async fn list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let links = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            service::of_contact(tx, tenant, contact).await
        })
        .await?;
    json(StatusCode::OK, &json!({ "data": links }))
}

/// `POST /api/v1/contacts/{id}/relationships` with `{type, contact_id}`: 201 with the link as this
/// contact sees it.
pub async fn create(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let draft: RelationshipDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let link = service::create(uow, contact, draft).await?;
        let location = format!("/api/v1/contacts/{contact}/relationships/{}", link.id);
        let mut created = json(StatusCode::CREATED, &link)?;
        response::set_header(&mut created, http::header::LOCATION, &location);
        Ok(created)
    })
    .await
}

/// `DELETE /api/v1/contacts/{id}/relationships/{relationship_id}`: from either side; 204.
pub async fn delete(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let id = ctx.path_id::<RelationshipId>("relationship_id")?;
    ctx.write(async |uow| {
        service::delete(uow, contact, id).await?;
        Ok(response::no_content())
    })
    .await
}
