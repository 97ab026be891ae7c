//! Contact handlers: HTTP in (body, path id, `If-Match`, query), one service call or read, HTTP
//! out. Changes go through [`crate::service`] in the request's unit of work.

use crate::repository;
use crate::search::{self, ListMembership};
use crate::service::{self, Upserted};
use crm_domain::contact::filter::{self, ContactFilter, ListCursor};
use crm_domain::contact::search::{Condition, Node, Target, Test};
use crm_domain::contact::{Contact, ContactDraft};
use crm_domain::list::ContactLists;
use crm_domain::{AuditRecordId, ContactId, ListId, ValidationErrors};
use crm_platform::document::from_value;
use crm_platform::edge::cache;
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json, set_header};
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::store::lists as store_lists;
use crm_platform::store::tenants::{self, TenantSettings};
use crm_platform::{ApiError, RequestContext};
use http::{header, StatusCode};
use serde_json::Value;

const CACHE_KIND: &str = cache::CONTACT;

/// Response header of an upsert: `created` or `updated`.
pub const UPSERT_RESULT: &str = "upsert-result";

/// `POST /api/v1/contacts`: validates every field, then writes the contact, its audit record and
/// its `contact.created` event in one transaction.
pub async fn create_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: ContactDraft = parse_body(&ctx.request)?;
    let email_keys = email_keys(&draft);
    let created = ctx
        .write(async |uow| {
            let contact = service::create(uow, draft).await?;
            contact_response(StatusCode::CREATED, &contact, None)
        })
        .await;
    name_the_duplicate(&ctx, created, email_keys).await
}

/// `POST /api/v1/contacts/upsert`: creates the contact, or merges the body into the live contact
/// that has its primary email. Answers 201 or 200 and says which in `Upsert-Result`.
pub async fn upsert_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let body: Value = parse_body(&ctx.request)?;
    let draft: ContactDraft = from_value(body.clone())?;
    let key = service::upsert_key(&draft)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let email_keys = email_keys(&draft);
    // A concurrent upsert may create the contact between our look-up and our insert: the unique
    // email key refuses the second insert, and the second attempt then finds and updates it.
    let mut retried = false;
    loop {
        let outcome = ctx
            .write(async |uow| {
                match service::upsert(uow, draft.clone(), &body, &key, if_match.as_ref()).await? {
                    Upserted::Created(contact) => {
                        contact_response(StatusCode::CREATED, &contact, Some("created"))
                    }
                    Upserted::Updated(contact) => {
                        contact_response(StatusCode::OK, &contact, Some("updated"))
                    }
                }
            })
            .await;
        match outcome {
            Err(ApiError::Conflict { .. }) if !retried => retried = true,
            other => return name_the_duplicate(&ctx, other, email_keys).await,
        }
    }
}

/// `GET /api/v1/contacts/{id}`, answering 304 when `If-None-Match` names the current version. A
/// soft-deleted contact is not found unless `include_deleted=true`; a merged one answers 410 naming
/// its survivor (`merged_into`) unless `include_deleted=true`.
pub async fn get_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), &["include_deleted"])?;
    let include_deleted = query.flag("include_deleted")?;
    let load = async || Ok(repository::find_alone(&ctx.app.db, tenant, id).await?);
    let (contact, status) =
        cache::read_through(ctx.app.cache(tenant, CACHE_KIND), &id.to_string(), load)
            .await?
            .ok_or(ApiError::NotFound)?;
    if !include_deleted {
        if let Some(into) = contact.merged_into {
            return Err(ApiError::Merged { into });
        }
        if contact.deleted_at.is_some() {
            return Err(ApiError::NotFound);
        }
    }
    response::versioned(&ctx.request.headers, &contact, contact.version, status)
}

/// `GET /api/v1/contacts`: filtered, sorted, keyset-paginated.
pub async fn list_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    contacts_page(&ctx, None).await
}

/// `GET /api/v1/lists/{id}/contacts`: a list's contacts (a static list's members, a smart list's
/// matches, computed now), with the filters, sorts and pages of the contacts list.
pub async fn list_contacts_of_list(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let list = ctx.path_id::<ListId>("id")?;
    contacts_page(&ctx, Some(list)).await
}

/// `GET /api/v1/contacts/{id}/lists`: the static lists that hold the contact and the smart lists
/// whose filter matches it, by name.
pub async fn contact_lists(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let lists = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                return Err(ApiError::NotFound);
            }
            let region = region(&ctx, &tenants::settings(tx, tenant).await?);
            // A saved filter that no longer reads (the tenant's region changed under a phone)
            // matches no one; reading the list itself says why.
            let smart: Vec<(ListId, ContactFilter)> = store_lists::smart_lists(tx, tenant)
                .await?
                .into_iter()
                .filter_map(|list| {
                    let filter =
                        ContactFilter::from_saved(list.filter.as_ref()?, region, "").ok()?;
                    Some((list.summary.id, filter))
                })
                .collect();
            Ok(repository::lists_of(tx, tenant, contact, &smart).await?)
        })
        .await?;
    json(
        StatusCode::OK,
        &ContactLists {
            contact_id: contact,
            lists,
        },
    )
}

/// A page of contacts, of the tenant or of `list`, as the query asks.
async fn contacts_page(
    ctx: &RequestContext,
    list: Option<ListId>,
) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &filter::parameters())?;
    let page: PageRequest<ListCursor> = PageRequest::from_query(&query)?;
    let rows = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            // The tenant's region reads a phone filter the way its contacts' phones were read; only
            // a phone filter needs it (a smart list's may hold one), so only then is it read.
            let region = if query.get("phone").is_some() || list.is_some() {
                region(ctx, &tenants::settings(tx, tenant).await?)
            } else {
                ctx.app.config.default_phone_region
            };
            let filter = ContactFilter::from_params(|name| query.get(name), region)?;
            if let Some(cursor) = &page.after {
                filter.check_cursor(cursor)?;
            }
            // A list's contacts are those of a list condition: a static list's members, or
            // whoever a smart list's saved filter matches.
            let mut lists = ListMembership::new();
            let within = match list {
                None => Vec::new(),
                Some(id) => {
                    let list = store_lists::definition(tx, tenant, id)
                        .await?
                        .ok_or(ApiError::NotFound)?;
                    let saved = match &list.filter {
                        None => None,
                        Some(filter) => Some(
                            ContactFilter::from_saved(filter, region, "/filter")
                                .map_err(|errors| stale_filter(id, &errors))?
                                .conditions(),
                        ),
                    };
                    lists.insert(id, saved);
                    vec![Node::Condition(Condition {
                        target: Target::Lists,
                        test: Test::OneOf(vec![Value::String(id.to_string())]),
                    })]
                }
            };
            let search = filter.search(within, page.after.as_ref(), page.limit);
            let rows = search::page(tx, tenant, &search, &lists).await?;
            Ok::<_, ApiError>((filter, rows))
        })
        .await?;
    let (filter, rows) = rows;
    let page = Page::from_keyed_rows(rows, page.limit, |contact: &Contact, key: &String| {
        filter.cursor_after(contact.id, key.clone())
    });
    json(StatusCode::OK, &page)
}

/// A smart list whose saved filter no longer reads (a phone written for a region the tenant no
/// longer has): the list's owner must correct it.
fn stale_filter(list: ListId, errors: &ValidationErrors) -> ApiError {
    let reason = errors.0.first().map_or("", |e| e.message.as_str());
    ApiError::conflict(
        format!("the list's saved filter no longer reads: {reason}"),
        "/filter",
        "stale_filter",
        &format!("correct it with PATCH /api/v1/lists/{list}"),
    )
}

/// `PATCH /api/v1/contacts/{id}`: a JSON Merge Patch (RFC 7396) of the writable fields, honouring
/// `If-Match` (412 when stale; 428 when the tenant requires it and it is missing).
pub async fn patch_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ContactId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let email_keys = email_keys_in(&patch);
    let updated = ctx
        .write(async |uow| {
            let contact = service::update(uow, id, &patch, if_match.as_ref()).await?;
            contact_response(StatusCode::OK, &contact, None)
        })
        .await;
    name_the_duplicate(&ctx, updated, email_keys).await
}

/// `DELETE /api/v1/contacts/{id}`: soft delete (restorable). 204; deleting a deleted contact is a no-op.
pub async fn delete_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ContactId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete(uow, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
}

/// `POST /api/v1/contacts/{id}/restore`: undoes a soft delete, `If-Match` honoured. 409 when another
/// live contact has taken one of its emails meanwhile.
pub async fn restore_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ContactId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let restored = ctx
        .write(async |uow| {
            let contact = service::restore(uow, id, if_match.as_ref()).await?;
            contact_response(StatusCode::OK, &contact, None)
        })
        .await;
    if !matches!(restored, Err(ApiError::Conflict { .. })) {
        return restored;
    }
    // The contact's own emails name the duplicate; it is read again, the change having rolled back.
    let tenant = ctx.principal()?.tenant_id;
    let email_keys = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id).await
        })
        .await?
        .map(|contact| {
            contact
                .emails
                .iter()
                .map(|e| e.address.to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    name_the_duplicate(&ctx, restored, email_keys).await
}

/// `POST /api/v1/contacts/{id}/erase` (scope `contacts:erase`): removes the contact for good and
/// scrubs its personal data from audit diffs, outbox events and stored idempotent responses.
pub async fn erase_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<ContactId>("id")?;
    ctx.write(async |uow| {
        service::erase(uow, id).await?;
        Ok(response::no_content())
    })
    .await
}

/// `GET /api/v1/contacts/{id}/history`: field-level changes, newest first, from the audit trail.
pub async fn contact_history(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<(AuditRecordId, i64)> = PageRequest::from_query(&query)?;
    let entries = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            Ok::<_, ApiError>(
                repository::history(tx, tenant, id, page.after, page.fetch_limit()).await?,
            )
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(entries, page.limit, |entry| {
            (entry.audit_id, entry.position)
        }),
    )
}

fn region(ctx: &RequestContext, settings: &TenantSettings) -> crm_domain::Region {
    settings.region(ctx.app.config.default_phone_region)
}

/// The keys duplicates are detected on, of every email a create body or a patch names.
pub(crate) fn email_keys_in(body: &Value) -> Vec<String> {
    body.get("emails")
        .and_then(Value::as_array)
        .map(|emails| {
            emails
                .iter()
                .filter_map(|e| e.get("address")?.as_str().map(|a| a.trim().to_lowercase()))
                .collect()
        })
        .unwrap_or_default()
}

/// The keys duplicates are detected on, of every email the request names.
fn email_keys(draft: &ContactDraft) -> Vec<String> {
    draft
        .emails
        .iter()
        .map(|e| e.address.trim().to_lowercase())
        .collect()
}

/// The JSON response for `contact` (with `ETag`, `Location` on 201 and the upsert's result).
fn contact_response(
    status: StatusCode,
    contact: &Contact,
    upsert: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let location = format!("/api/v1/contacts/{}", contact.id);
    let created = status == StatusCode::CREATED;
    let mut response = response::entity(
        status,
        contact,
        contact.version,
        created.then_some(location.as_str()),
    )?;
    if let Some(result) = upsert {
        set_header(
            &mut response,
            header::HeaderName::from_static(UPSERT_RESULT),
            result,
        );
    }
    Ok(response)
}

/// Adds `existing_contact_id` to a duplicate-email 409. The failed transaction is gone, so the
/// holder is looked up in a fresh one.
async fn name_the_duplicate(
    ctx: &RequestContext,
    outcome: Result<ApiResponse, ApiError>,
    email_keys: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let Err(ApiError::Conflict {
        detail,
        errors,
        mut extra,
    }) = outcome
    else {
        return outcome;
    };
    if errors.iter().any(|e| e.code == "duplicate") {
        let tenant = ctx.principal()?.tenant_id;
        let existing = ctx
            .app
            .db
            .read(tenant, async |tx: &Tx| {
                repository::live_owner_of_email(tx, tenant, email_keys).await
            })
            .await?;
        if let Some(existing) = existing {
            extra.insert(
                "existing_contact_id".into(),
                Value::from(existing.to_string()),
            );
        }
    }
    Err(ApiError::Conflict {
        detail,
        errors,
        extra,
    })
}
