//! Tag handlers: HTTP in, the tags service or a read, HTTP out.

use super::repository;
use super::service;
use crm_domain::tag::{
    parse_tag_ids, ContactTags, Tag, TagAttachment, TagDraft, TagOperation, TagSet,
};
use crm_domain::{ContactId, TagId};
use crm_platform::document::from_value;
use crm_platform::http::batch::{one_by_one, Answered, Done};
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::Value;

/// `POST /api/v1/tags`: 201 with the tag, its `ETag` and `Location`.
pub async fn create_tag(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: TagDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let tag = service::create_tag(uow, draft).await?;
        let location = format!("/api/v1/tags/{}", tag.id);
        response::entity(StatusCode::CREATED, &tag, tag.version, Some(&location))
    })
    .await
}

/// `GET /api/v1/tags`: the vocabulary by name, with each tag's contact count, keyset-paginated.
pub async fn list_tags(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<(String, TagId)> = PageRequest::from_query(&query)?;
    let rows = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, page.after.as_ref(), page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_keyed_rows(rows, page.limit, |tag: &Tag, key: &String| {
            (key.clone(), tag.id)
        }),
    )
}

/// `GET /api/v1/tags/{id}`.
pub async fn get_tag(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<TagId>("id")?;
    let tag = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id, false).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &tag, tag.version, None)
}

/// `PATCH /api/v1/tags/{id}`: JSON Merge Patch of `name`, `colour`, `description`; `If-Match`.
pub async fn update_tag(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<TagId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let tag = service::update_tag(uow, id, &patch, if_match.as_ref()).await?;
        response::entity(StatusCode::OK, &tag, tag.version, None)
    })
    .await
}

/// `DELETE /api/v1/tags/{id}`: 204; the tag is detached from every contact.
pub async fn delete_tag(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<TagId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete_tag(uow, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
}

/// `GET /api/v1/contacts/{id}/tags`: the contact's tags by name.
pub async fn contact_tags(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let tags = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            Ok(repository::attached(tx, tenant, contact).await?)
        })
        .await?;
    json(
        StatusCode::OK,
        &ContactTags {
            contact_id: contact,
            tags,
        },
    )
}

/// `POST /api/v1/contacts/{id}/tags` with `{"tag_id"}`: attaches one tag; 200 with the set.
pub async fn attach(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let body: TagAttachment = parse_body(&ctx.request)?;
    let tag = tag_id(&body.tag_id)?;
    ctx.write(async |uow| json(StatusCode::OK, &service::attach(uow, contact, tag).await?))
        .await
}

/// `PUT /api/v1/contacts/{id}/tags` with `{"tag_ids": [...]}`: replaces the set; 200 with it.
pub async fn replace(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let body: TagSet = parse_body(&ctx.request)?;
    let tags = parse_tag_ids(&body.tag_ids, "/tag_ids")?;
    ctx.write(async |uow| {
        json(
            StatusCode::OK,
            &service::replace(uow, contact, &tags).await?,
        )
    })
    .await
}

/// `DELETE /api/v1/contacts/{id}/tags/{tag_id}`: detaches one tag; 204.
pub async fn detach(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let contact = ctx.path_id::<ContactId>("id")?;
    let tag = ctx.path_id::<TagId>("tag_id")?;
    ctx.write(async |uow| {
        service::detach(uow, contact, tag).await?;
        Ok(response::no_content())
    })
    .await
}

/// `POST /api/v1/tags/batch`: up to 1,000 `attach` / `detach` operations (`contact_id`,
/// `tag_id`), one result per operation with the contact's tags, in the shared batch shape.
pub async fn batch(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ctx.batch(apply_batch).await
}

/// Answers every operation of a tags batch, in order: each attach or detach made alone, as the
/// single routes make it (`contact_id` not a contact's: 404; `tag_id` not the tenant's: 422).
async fn apply_batch(
    uow: &UnitOfWork<'_>,
    operations: Vec<Value>,
) -> Result<Vec<Answered<ContactTags>>, ApiError> {
    one_by_one(
        uow,
        operations,
        read_operation,
        |(attaching, contact, tag)| async move {
            let (tags, outcome) = match attaching {
                true => (service::attach(uow, contact, tag).await?, "attached"),
                false => (service::detach(uow, contact, tag).await?, "detached"),
            };
            Ok(Done {
                status: StatusCode::OK,
                outcome,
                value: Some(tags),
            })
        },
    )
    .await
}

/// One operation of a tags batch: attach (or detach), the contact, the tag.
fn read_operation(raw: Value) -> Result<(bool, ContactId, TagId), ApiError> {
    let (attaching, contact, tag) = match from_value::<TagOperation>(raw)? {
        TagOperation::Attach { contact_id, tag_id } => (true, contact_id, tag_id),
        TagOperation::Detach { contact_id, tag_id } => (false, contact_id, tag_id),
    };
    let contact = ContactId::parse(contact.trim()).ok_or(ApiError::NotFound)?;
    Ok((attaching, contact, tag_id(&tag)?))
}

/// The tag id at `/tag_id` of a body (an attachment, a batch operation).
fn tag_id(raw: &str) -> Result<TagId, ApiError> {
    TagId::parse(raw.trim()).ok_or_else(|| {
        ApiError::invalid_field("/tag_id", "invalid_id", "must be a tag id (a UUID)")
    })
}
