//! List handlers: HTTP in, the lists service or a read, HTTP out. A list's contacts are the
//! contacts component's (`GET /api/v1/lists/{id}/contacts`).

use super::repository;
use super::service;
use crm_domain::list::{
    ContactList, ListDraft, ListKind, MemberOperation, MemberOutcome, Membership, MembershipChange,
    MembershipChangeDraft,
};
use crm_domain::{ContactId, ListId};
use crm_platform::document::from_value;
use crm_platform::http::batch::{one_by_one, Answered, Done};
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::Value;

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
    ctx.charge_operations(change.add.len() + change.remove.len())
        .await?;
    ctx.write(async |uow| {
        json(
            StatusCode::OK,
            &service::change_members(uow, id, change).await?,
        )
    })
    .await
}

/// `POST /api/v1/lists/batch`: up to 1,000 `add` / `remove` operations (`list_id`, `contact_id`)
/// over static lists, one result per operation, in the shared batch shape.
pub async fn batch(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    ctx.batch(apply_batch).await
}

/// Answers every operation of a lists batch, in order: each add or remove made alone, as
/// `POST /api/v1/lists/{id}/members` makes it (a list or contact that is not the tenant's: 404).
async fn apply_batch(
    uow: &UnitOfWork<'_>,
    operations: Vec<Value>,
) -> Result<Vec<Answered<Membership>>, ApiError> {
    one_by_one(
        uow,
        operations,
        read_operation,
        |(adding, list, contact)| async move {
            let ids = vec![(contact.to_string(), Some(contact))];
            let change = match adding {
                true => MembershipChange {
                    add: ids,
                    remove: Vec::new(),
                },
                false => MembershipChange {
                    add: Vec::new(),
                    remove: ids,
                },
            };
            let changed = service::change_members(uow, list, change).await?;
            let outcome = match changed.results.first().map(|r| r.result) {
                Some(MemberOutcome::Added) => "added",
                Some(MemberOutcome::AlreadyMember) => "already_member",
                Some(MemberOutcome::Removed) => "removed",
                Some(MemberOutcome::NotMember) => "not_member",
                _ => return Err(ApiError::NotFound),
            };
            Ok(Done {
                status: StatusCode::OK,
                outcome,
                value: Some(Membership {
                    list_id: list,
                    contact_id: contact,
                }),
            })
        },
    )
    .await
}

/// One operation of a lists batch: add (or remove), the list, the contact.
fn read_operation(raw: Value) -> Result<(bool, ListId, ContactId), ApiError> {
    let (adding, list, contact) = match from_value::<MemberOperation>(raw)? {
        MemberOperation::Add {
            list_id,
            contact_id,
        } => (true, list_id, contact_id),
        MemberOperation::Remove {
            list_id,
            contact_id,
        } => (false, list_id, contact_id),
    };
    let list = ListId::parse(list.trim()).ok_or(ApiError::NotFound)?;
    let contact = ContactId::parse(contact.trim()).ok_or(ApiError::NotFound)?;
    Ok((adding, list, contact))
}
