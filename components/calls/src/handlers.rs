//! Call handlers: HTTP in, domain rules and repository calls, HTTP out.

use crate::repository::{self, CallFilter, UNKNOWN_CONTACT};
use crm_domain::audit::AuditRecord;
use crm_domain::call::{parse_choice, Call, CallDraft, CallStatus, Direction, NewCall};
use crm_domain::event::DomainEvent;
use crm_domain::{CallId, ContactId, TenantId};
use crm_platform::cache;
use crm_platform::changelog;
use crm_platform::db::{on_constraint, Tx};
use crm_platform::http::etag;
use crm_platform::http::json::{from_value, merge_patch, parse_body, parse_merge_patch};
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::rfc3339;
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::tenants;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::json;

const LIST_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "contact_id",
    "agent_id",
    "direction",
    "status",
    "started_after",
    "started_before",
];

/// `POST /api/v1/calls`: logs a call. Without `contact_id` it is linked to the tenant's one live
/// contact with the other party's number, if exactly one has it; the contact's last_contacted_at
/// follows. Audit record and `call.logged` event in the same transaction.
pub async fn log_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let draft: CallDraft = parse_body(&ctx.request)?;
    let (response, contact) = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let settings = tenants::settings(tx, tenant).await?;
            let call = NewCall::parse(draft, settings.region(ctx.app.config.default_phone_region))?;
            let contact = match call.contact_id {
                Some(contact) => Some(contact),
                None => {
                    repository::only_contact_with_number(tx, tenant, call.counterpart().e164())
                        .await?
                }
            };
            let logged = repository::insert(tx, tenant, CallId::generate(), contact, &call)
                .await
                .map_err(on_constraint(UNKNOWN_CONTACT, unknown_contact))?;
            if let Some(contact) = contact {
                repository::touch_contact(tx, tenant, contact).await?;
            }
            record(tx, &ctx, "create", "call.logged", None, &logged).await?;
            Ok::<_, ApiError>((
                respond(tx, &ctx, StatusCode::CREATED, &logged).await?,
                contact,
            ))
        })
        .await?;
    after_write(&ctx, tenant, None, &[contact]).await;
    Ok(response)
}

/// `GET /api/v1/calls/{id}`, from the read cache when it can be.
pub async fn get_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<CallId>("id")?;
    let load = async || {
        let db = &ctx.app.db;
        Ok(db
            .read(tenant, async |tx: &Tx| {
                repository::find(tx, tenant, id).await
            })
            .await?)
    };
    let (call, status) =
        cache::read_through(ctx.app.cache(tenant, cache::CALL), &id.to_string(), load)
            .await?
            .ok_or(ApiError::NotFound)?;
    response::versioned(&ctx.request.headers, &call, call.version, status)
}

/// `PATCH /api/v1/calls/{id}`: JSON Merge Patch of the writable fields, `If-Match` honoured.
pub async fn patch_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<CallId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let (response, contacts) = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let (settings, before) = locked_call(tx, tenant, id, if_match.as_ref()).await?;
            let mut view = before.writable_view();
            merge_patch(&mut view, &patch);
            let draft: CallDraft = from_value(view)?;
            let call = NewCall::parse(draft, settings.region(ctx.app.config.default_phone_region))?;
            let contact = call.contact_id;
            let after = repository::update(tx, tenant, id, contact, &call)
                .await
                .map_err(on_constraint(UNKNOWN_CONTACT, unknown_contact))?;
            let touched = [before.contact_id, contact];
            for contact in touched.iter().flatten() {
                repository::touch_contact(tx, tenant, *contact).await?;
            }
            record(tx, &ctx, "update", "call.updated", Some(&before), &after).await?;
            Ok::<_, ApiError>((respond(tx, &ctx, StatusCode::OK, &after).await?, touched))
        })
        .await?;
    after_write(&ctx, tenant, Some(id), &contacts).await;
    Ok(response)
}

/// `DELETE /api/v1/calls/{id}`: removes the call (audited, `call.deleted`). 204.
pub async fn delete_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<CallId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    let contact = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            let (_, before) = locked_call(tx, tenant, id, if_match.as_ref()).await?;
            repository::delete(tx, tenant, id).await?;
            let contact = before.contact_id;
            if let Some(contact) = contact {
                repository::touch_contact(tx, tenant, contact).await?;
            }
            let audit = AuditRecord::of::<Call>("delete", "call", id, Some(&before), None);
            changelog::record(
                tx,
                &ctx,
                &audit,
                &DomainEvent::of("call.deleted", "call", id, &before),
            )
            .await?;
            Ok::<_, ApiError>(contact)
        })
        .await?;
    after_write(&ctx, tenant, Some(id), &[contact]).await;
    let mut response = ApiResponse::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `GET /api/v1/calls`: newest first, filtered, keyset-paginated.
pub async fn list_calls(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let query = Query::parse(ctx.request.query.as_deref(), LIST_PARAMETERS)?;
    let filter = filter_of(&query)?;
    list(&ctx, &query, filter).await
}

/// `GET /api/v1/contacts/{id}/calls`: one contact's calls, as [`list_calls`].
pub async fn contact_calls(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(ctx.request.query.as_deref(), &LIST_PARAMETERS[..2])?;
    let exists = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::contact_exists(tx, tenant, contact).await
        })
        .await?;
    if !exists {
        return Err(ApiError::NotFound);
    }
    let filter = CallFilter {
        contact_id: Some(contact),
        ..Default::default()
    };
    list(&ctx, &query, filter).await
}

async fn list(
    ctx: &RequestContext,
    query: &Query,
    filter: CallFilter,
) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let page: PageRequest<(String, CallId)> = PageRequest::from_query(query)?;
    let calls = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, &filter, page.after.as_ref(), page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(calls, page.limit, |call| {
            (rfc3339(call.started_at), call.id)
        }),
    )
}

/// `GET /api/v1/calls/stats?from=&to=&group_by=day|agent|status|direction`: counts, total and
/// average duration of the calls that started in `[from, to)` (default: the last 30 days).
pub async fn call_stats(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["from", "to", "group_by"])?;
    let (from, to) = query.time_range(30)?;
    let group_by = query.get("group_by").unwrap_or("day");
    let key = match group_by {
        "day" => "to_char(started_at at time zone 'UTC', 'YYYY-MM-DD')",
        "agent" => "coalesce(agent_id, '')",
        "status" => "status",
        "direction" => "direction",
        _ => {
            return Err(ApiError::bad_request(
                "group_by must be day, agent, status or direction",
            ))
        }
    };
    let (from, to) = (rfc3339(from), rfc3339(to));
    let groups = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::stats(tx, tenant, key, &from, &to).await
        })
        .await?;
    json(
        StatusCode::OK,
        &json!({"from": from, "to": to, "group_by": group_by, "groups": groups}),
    )
}

fn filter_of(query: &Query) -> Result<CallFilter, ApiError> {
    let bad = |name: &str, e: crm_domain::FieldError| {
        ApiError::bad_request(format!("{name} {}", e.message))
    };
    Ok(CallFilter {
        contact_id: query
            .get("contact_id")
            .map(|raw| {
                ContactId::parse(raw)
                    .ok_or_else(|| ApiError::bad_request("contact_id must be a UUID"))
            })
            .transpose()?,
        agent_id: query.get("agent_id").map(str::to_owned),
        direction: query
            .get("direction")
            .map(|raw| {
                parse_choice(
                    raw,
                    "direction",
                    &[Direction::Inbound, Direction::Outbound],
                    Direction::as_str,
                )
            })
            .transpose()
            .map_err(|e| bad("direction", e))?,
        status: query
            .get("status")
            .map(|raw| parse_choice(raw, "status", &CallStatus::ALL, CallStatus::as_str))
            .transpose()
            .map_err(|e| bad("status", e))?,
        started_after: query.time("started_after")?.map(rfc3339),
        started_before: query.time("started_before")?.map(rfc3339),
    })
}

/// The tenant's settings and the call, locked for a change whose `If-Match` it satisfies.
async fn locked_call(
    tx: &Tx,
    tenant: TenantId,
    id: CallId,
    if_match: Option<&etag::IfMatch>,
) -> Result<(tenants::TenantSettings, Call), ApiError> {
    let settings = tenants::settings(tx, tenant).await?;
    let call = repository::find_for_update(tx, tenant, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    etag::check_precondition(if_match, settings.require_if_match, call.version)?;
    Ok((settings, call))
}

fn unknown_contact() -> ApiError {
    ApiError::invalid_field(
        "/contact_id",
        "not_found",
        "no contact of this tenant has this id",
    )
}

async fn record(
    tx: &Tx,
    ctx: &RequestContext,
    action: &'static str,
    event: &'static str,
    before: Option<&Call>,
    after: &Call,
) -> Result<(), ApiError> {
    changelog::record_change(tx, ctx, action, event, "call", after.id, before, after).await
}

/// The call's JSON with its ETag (and `Location` on 201), recorded for replay under an Idempotency-Key.
async fn respond(
    tx: &Tx,
    ctx: &RequestContext,
    status: StatusCode,
    call: &Call,
) -> Result<ApiResponse, ApiError> {
    let location = format!("/api/v1/calls/{}", call.id);
    let created = status == StatusCode::CREATED;
    let response = response::entity(
        status,
        call,
        call.version,
        created.then_some(location.as_str()),
    )?;
    ctx.recorded(tx, response).await
}

/// After a committed write: the call's cached copies and those of the contacts whose
/// last_contacted_at moved are made unreachable.
async fn after_write(
    ctx: &RequestContext,
    tenant: TenantId,
    call: Option<CallId>,
    contacts: &[Option<ContactId>],
) {
    if let (Some(call), Some(cache)) = (call, ctx.app.cache(tenant, cache::CALL)) {
        cache.invalidate(&call.to_string()).await;
    }
    if let Some(cache) = ctx.app.cache(tenant, cache::CONTACT) {
        for contact in contacts.iter().flatten() {
            cache.invalidate(&contact.to_string()).await;
        }
    }
}
