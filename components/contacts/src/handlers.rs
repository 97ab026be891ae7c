//! Contact handlers: HTTP in, domain rules and repository calls, HTTP out.

use crate::listing::{ContactFilter, ListCursor, PARAMETERS};
use crate::repository::{self, EMAIL_TAKEN};
use crm_domain::audit::AuditRecord;
use crm_domain::contact::{Contact, ContactDraft, EmailAddress, NewContact};
use crm_domain::event::{ContactAction, DomainEvent};
use crm_domain::{AuditRecordId, ContactId, TenantId};
use crm_platform::cache;
use crm_platform::changelog;
use crm_platform::db::{on_constraint, Tx};
use crm_platform::http::etag::{self, IfMatch};
use crm_platform::http::json::{from_value, merge_patch, parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json, set_header};
use crm_platform::http::ApiResponse;
use crm_platform::tenants::{self, TenantSettings};
use crm_platform::{ApiError, RequestContext};
use http::{header, StatusCode};
use serde_json::Value;

const CACHE_KIND: &str = cache::CONTACT;

/// Response header of an upsert: `created` or `updated`.
pub const UPSERT_RESULT: &str = "upsert-result";

/// `POST /api/v1/contacts`: validates every field, then writes the contact, its audit record and
/// its `contact.created` event in one transaction.
pub async fn create_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let draft: ContactDraft = parse_body(&ctx.request)?;
    let email_keys = email_keys(&draft);
    let created = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let settings = tenants::settings(tx, tenant).await?;
            let contact = NewContact::parse(draft, region(&ctx, &settings))?;
            let contact = insert(tx, &ctx, tenant, &contact).await?;
            respond(tx, &ctx, StatusCode::CREATED, &contact, None).await
        })
        .await;
    name_the_duplicate(&ctx, tenant, created, email_keys).await
}

/// `POST /api/v1/contacts/upsert`: creates the contact, or merges the body into the live contact
/// that has its primary email. Answers 201 or 200 and says which in `Upsert-Result`.
pub async fn upsert_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let body: Value = parse_body(&ctx.request)?;
    let draft: ContactDraft = from_value(body.clone())?;
    let key = upsert_key(&draft)?;
    let email_keys = email_keys(&draft);
    // A concurrent upsert may create the contact between our look-up and our insert: the unique
    // email key refuses the second insert, and the second attempt then finds and updates it.
    let mut retried = false;
    let mut updated_id = None;
    loop {
        let outcome = ctx
            .app
            .db
            .transaction(tenant, async |tx: &Tx| {
                let settings = tenants::settings(tx, tenant).await?;
                match repository::find_live_by_email_for_update(tx, tenant, &key).await? {
                    Some(before) => {
                        updated_id = Some(before.id);
                        let after = apply_patch(tx, &ctx, tenant, &settings, before, &body).await?;
                        respond(tx, &ctx, StatusCode::OK, &after, Some("updated")).await
                    }
                    None => {
                        let contact = NewContact::parse(draft.clone(), region(&ctx, &settings))?;
                        let contact = insert(tx, &ctx, tenant, &contact).await?;
                        respond(tx, &ctx, StatusCode::CREATED, &contact, Some("created")).await
                    }
                }
            })
            .await;
        if let (Ok(_), Some(id)) = (&outcome, updated_id) {
            invalidate(&ctx, tenant, id).await;
        }
        match outcome {
            Err(ApiError::Conflict { .. }) if !retried => retried = true,
            other => return name_the_duplicate(&ctx, tenant, other, email_keys).await,
        }
    }
}

/// `GET /api/v1/contacts/{id}`, answering 304 when `If-None-Match` names the current version.
pub async fn get_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let load = async || {
        let db = &ctx.app.db;
        Ok(db
            .read(tenant, async |tx: &Tx| {
                repository::find(tx, tenant, id).await
            })
            .await?)
    };
    let (contact, status) =
        cache::read_through(ctx.app.cache(tenant, CACHE_KIND), &id.to_string(), load)
            .await?
            .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &contact, contact.version, status)
}

/// Makes cached copies of `id` unreachable; called once the write's transaction has committed.
async fn invalidate(ctx: &RequestContext, tenant: TenantId, id: ContactId) {
    if let Some(cache) = ctx.app.cache(tenant, CACHE_KIND) {
        cache.invalidate(&id.to_string()).await;
    }
}

/// `GET /api/v1/contacts`: filtered, sorted, keyset-paginated.
pub async fn list_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), PARAMETERS)?;
    let page: PageRequest<ListCursor> = PageRequest::from_query(&query)?;
    let rows = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            // The tenant's region reads `?phone=` the way its contacts' phones were read.
            let settings = tenants::settings(tx, tenant).await?;
            let filter = ContactFilter::from_query(&query, region(&ctx, &settings))?;
            if let Some(cursor) = &page.after {
                filter.check_cursor(cursor)?;
            }
            let rows =
                repository::list(tx, tenant, &filter, page.after.as_ref(), page.fetch_limit())
                    .await?;
            Ok::<_, ApiError>((filter, rows))
        })
        .await?;
    let (filter, rows) = rows;
    let page = Page::from_rows(rows, page.limit, |(contact, key)| {
        filter.cursor_after(contact.id, key.clone())
    });
    let page = Page {
        data: page
            .data
            .into_iter()
            .map(|(contact, _)| contact)
            .collect::<Vec<Contact>>(),
        next_cursor: page.next_cursor,
    };
    json(StatusCode::OK, &page)
}

/// `PATCH /api/v1/contacts/{id}`: a JSON Merge Patch (RFC 7396) of the writable fields, honouring
/// `If-Match` (412 when stale; 428 when the tenant requires it and it is missing).
pub async fn patch_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let mut email_keys = Vec::new();
    if let Some(emails) = patch.get("emails").and_then(Value::as_array) {
        email_keys = emails
            .iter()
            .filter_map(|e| e.get("address")?.as_str().map(|a| a.trim().to_lowercase()))
            .collect();
    }
    let updated = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let settings = tenants::settings(tx, tenant).await?;
            let before = locked_for_change(tx, tenant, id, &settings, if_match.as_ref()).await?;
            if before.deleted_at.is_some() {
                return Err(ApiError::conflict(
                    "the contact is deleted; restore it before changing it",
                    "",
                    "deleted",
                    "restore the contact first",
                ));
            }
            let after = apply_patch(tx, &ctx, tenant, &settings, before, &patch).await?;
            respond(tx, &ctx, StatusCode::OK, &after, None).await
        })
        .await;
    if updated.is_ok() {
        invalidate(&ctx, tenant, id).await;
    }
    name_the_duplicate(&ctx, tenant, updated, email_keys).await
}

/// `DELETE /api/v1/contacts/{id}`: soft delete (restorable). 204; deleting a deleted contact is a no-op.
pub async fn delete_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let deleted = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let settings = tenants::settings(tx, tenant).await?;
            let before = locked_for_change(tx, tenant, id, &settings, if_match.as_ref()).await?;
            if before.deleted_at.is_none() {
                let after = repository::set_deleted(tx, tenant, id, true).await?;
                record(tx, &ctx, ContactAction::Deleted, Some(&before), &after).await?;
            }
            no_content(tx, &ctx).await
        })
        .await;
    if deleted.is_ok() {
        invalidate(&ctx, tenant, id).await;
    }
    deleted
}

/// `POST /api/v1/contacts/{id}/restore`: undoes a soft delete. 409 when another live contact has
/// taken one of its emails meanwhile.
pub async fn restore_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let mut email_keys = Vec::new();
    let restored = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let before = repository::find_for_update(tx, tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            email_keys = before
                .emails
                .iter()
                .map(|e| e.address.to_lowercase())
                .collect();
            let after = if before.deleted_at.is_some() {
                let after = repository::set_deleted(tx, tenant, id, false)
                    .await
                    .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
                record(tx, &ctx, ContactAction::Restored, Some(&before), &after).await?;
                after
            } else {
                before
            };
            respond(tx, &ctx, StatusCode::OK, &after, None).await
        })
        .await;
    if restored.is_ok() {
        invalidate(&ctx, tenant, id).await;
    }
    name_the_duplicate(&ctx, tenant, restored, email_keys).await
}

/// `POST /api/v1/contacts/{id}/erase` (scope `contacts:erase`): removes the contact for good and
/// scrubs its personal data from audit diffs, outbox events and stored idempotent responses.
pub async fn erase_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<ContactId>("id")?;
    let erased = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let contact = repository::find_for_update(tx, tenant, id)
                .await?
                .ok_or(ApiError::NotFound)?;
            repository::erase(tx, tenant, id).await?;
            record(tx, &ctx, ContactAction::Erased, None, &contact).await?;
            no_content(tx, &ctx).await
        })
        .await;
    if erased.is_ok() {
        invalidate(&ctx, tenant, id).await;
    }
    erased
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

/// The keys duplicates are detected on, of every email the request names.
fn email_keys(draft: &ContactDraft) -> Vec<String> {
    draft
        .emails
        .iter()
        .map(|e| e.address.trim().to_lowercase())
        .collect()
}

/// The email an upsert matches on: the one marked primary, else the first.
fn upsert_key(draft: &ContactDraft) -> Result<String, ApiError> {
    let email = draft
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| draft.emails.first())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "/emails",
                "required",
                "an upsert matches on an email: give at least one",
            )
        })?;
    EmailAddress::parse(&email.address, "/emails/0/address")
        .map(|email| email.key())
        .map_err(|e| ApiError::Validation(crm_domain::ValidationErrors(vec![e])))
}

/// Locks the contact for a change and checks the tenant's and the request's preconditions.
async fn locked_for_change(
    tx: &Tx,
    tenant: TenantId,
    id: ContactId,
    settings: &TenantSettings,
    if_match: Option<&IfMatch>,
) -> Result<Contact, ApiError> {
    let contact = repository::find_for_update(tx, tenant, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    etag::check_precondition(if_match, settings.require_if_match, contact.version)?;
    Ok(contact)
}

/// Merges `patch` into the writable view of `before`, validates the result as a whole and stores it
/// with its audit record and event; a patch that changes nothing stores nothing.
async fn apply_patch(
    tx: &Tx,
    ctx: &RequestContext,
    tenant: TenantId,
    settings: &TenantSettings,
    before: Contact,
    patch: &Value,
) -> Result<Contact, ApiError> {
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: ContactDraft = from_value(view)?;
    let contact = NewContact::parse(draft, region(ctx, settings))?;
    let preview = contact.to_contact(
        before.id,
        before.version,
        before.created_at,
        before.updated_at,
    );
    if AuditRecord::contact(ContactAction::Updated, Some(&before), &preview)
        .changes
        .is_empty()
    {
        return Ok(before); // Nothing changes: no new version, no audit record, no event.
    }
    let after = repository::update(tx, tenant, before.id, &contact)
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
    record(tx, ctx, ContactAction::Updated, Some(&before), &after).await?;
    Ok(after)
}

async fn insert(
    tx: &Tx,
    ctx: &RequestContext,
    tenant: TenantId,
    contact: &NewContact,
) -> Result<Contact, ApiError> {
    let contact = repository::insert(tx, tenant, ContactId::generate(), contact)
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
    record(tx, ctx, ContactAction::Created, None, &contact).await?;
    Ok(contact)
}

async fn record(
    tx: &Tx,
    ctx: &RequestContext,
    action: ContactAction,
    before: Option<&Contact>,
    after: &Contact,
) -> Result<(), ApiError> {
    changelog::record(
        tx,
        ctx,
        &AuditRecord::contact(action, before, after),
        &DomainEvent::contact(action, after),
    )
    .await
}

/// The JSON response for `contact` (with `ETag`, `Location` on 201 and the upsert's result),
/// recorded for replay when the request carried an Idempotency-Key.
async fn respond(
    tx: &Tx,
    ctx: &RequestContext,
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
    ctx.recorded(tx, response).await
}

async fn no_content(tx: &Tx, ctx: &RequestContext) -> Result<ApiResponse, ApiError> {
    let mut response = ApiResponse::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    ctx.recorded(tx, response).await
}

fn email_taken() -> ApiError {
    ApiError::conflict(
        "another live contact of this tenant already has this email address",
        "/emails",
        "duplicate",
        "is already used by another contact",
    )
}

/// Adds `existing_contact_id` to a duplicate-email 409. The failed transaction is gone, so the
/// holder is looked up in a fresh one.
async fn name_the_duplicate(
    ctx: &RequestContext,
    tenant: TenantId,
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
