//! Contact handlers: HTTP in, domain rules and repository calls, HTTP out.

use crate::repository::{self, EMAIL_TAKEN};
use crm_domain::audit::AuditRecord;
use crm_domain::contact::{ContactDraft, NewContact};
use crm_domain::event::DomainEvent;
use crm_domain::{ContactId, FieldError};
use crm_platform::changelog;
use crm_platform::db::{on_constraint, Tx};
use crm_platform::http::etag;
use crm_platform::http::json::parse_body;
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::{json, set_header};
use crm_platform::http::ApiResponse;
use crm_platform::{ApiError, RequestContext};
use http::{header, StatusCode};
use serde_json::{Map, Value};

/// `POST /api/v1/contacts`: validates every field, then writes the contact, its audit record and
/// its `contact.created` event in one transaction.
pub async fn create_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let principal = ctx.principal()?;
    let tenant = principal.tenant_id;
    let draft: ContactDraft = parse_body(&ctx.request)?;
    let email_keys: Vec<String> = draft
        .emails
        .iter()
        .map(|e| e.address.trim().to_lowercase())
        .collect();
    let id = ContactId::generate();
    let db = &ctx.app.db;
    let created = db
        .transaction(tenant, async |tx: &Tx| {
            let region = repository::tenant_region(tx, tenant)
                .await?
                .unwrap_or(ctx.app.config.default_phone_region);
            let contact = NewContact::parse(draft, region)?;
            let contact = repository::insert(tx, tenant, id, &contact)
                .await
                .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
            changelog::record(
                tx,
                &ctx,
                &AuditRecord::contact_created(&contact),
                &DomainEvent::contact_created(&contact),
            )
            .await?;
            let mut response = json(StatusCode::CREATED, &contact)?;
            set_header(
                &mut response,
                header::LOCATION,
                &format!("/api/v1/contacts/{}", contact.id),
            );
            set_header(
                &mut response,
                header::ETAG,
                &etag::for_version(contact.version),
            );
            if let Some(claim) = ctx.idempotency() {
                claim.record(tx, &response).await?;
            }
            Ok(response)
        })
        .await;
    match created {
        Err(ApiError::Conflict { detail, errors, .. }) => {
            // The failed transaction is gone; name the contact that holds the email in a fresh one.
            let existing = db
                .transaction(tenant, async |tx: &Tx| {
                    repository::live_owner_of_email(tx, tenant, email_keys).await
                })
                .await?;
            let mut extra = Map::new();
            if let Some(existing) = existing {
                extra.insert(
                    "existing_contact_id".into(),
                    Value::from(existing.to_string()),
                );
            }
            Err(ApiError::Conflict {
                detail,
                errors,
                extra,
            })
        }
        other => other,
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        detail: "another live contact of this tenant already has this email address".into(),
        errors: vec![FieldError::new(
            "/emails",
            "duplicate",
            "is already used by another contact",
        )],
        extra: Map::new(),
    }
}

/// `GET /api/v1/contacts/{id}`, answering 304 when `If-None-Match` names the current version.
pub async fn get_contact(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ContactId::parse(ctx.param("id")?).ok_or(ApiError::NotFound)?;
    let contact = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    let tag = etag::for_version(contact.version);
    let mut response = if etag::if_none_match_hits(&ctx.request.headers, contact.version) {
        let mut not_modified = ApiResponse::new(bytes_empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified
    } else {
        json(StatusCode::OK, &contact)?
    };
    set_header(&mut response, header::ETAG, &tag);
    Ok(response)
}

/// `GET /api/v1/contacts?limit=&cursor=`: live contacts in creation order, keyset-paginated.
pub async fn list_contacts(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["limit", "cursor"])?;
    let page: PageRequest<ContactId> = PageRequest::from_query(&query)?;
    let contacts = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, page.after, page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(contacts, page.limit, |c| c.id),
    )
}

fn bytes_empty() -> crm_platform::http::ResponseBody {
    Default::default()
}
