//! Call handlers: HTTP in, domain rules and repository calls, HTTP out.

use crate::repository::{self, CallFilter};
use crate::service;
use crm_domain::call::{parse_choice, Call, CallDraft, CallStatus, Direction};
use crm_domain::{CallId, ContactId};
use crm_platform::edge::cache;
use crm_platform::http::etag;
use crm_platform::http::json::{parse_body, parse_merge_patch};
use crm_platform::http::pagination::{CursorTime, Page, PageRequest};
use crm_platform::http::query::rfc3339;
use crm_platform::http::query::Query;
use crm_platform::http::response::{self, json};
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
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

/// `POST /api/v1/calls`: logs a call (see [`service::log`]). Audit record and `call.logged` event
/// in the same transaction.
pub async fn log_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let draft: CallDraft = parse_body(&ctx.request)?;
    ctx.write(async |uow| {
        let logged = service::log(uow, draft).await?;
        call_response(StatusCode::CREATED, &logged)
    })
    .await
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
    let id = ctx.path_id::<CallId>("id")?;
    let patch = parse_merge_patch(&ctx.request)?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        let call = service::update(uow, id, &patch, if_match.as_ref()).await?;
        call_response(StatusCode::OK, &call)
    })
    .await
}

/// `DELETE /api/v1/calls/{id}`: removes the call (audited, `call.deleted`). 204.
pub async fn delete_call(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let id = ctx.path_id::<CallId>("id")?;
    let if_match = etag::if_match_version(&ctx.request.headers)?;
    ctx.write(async |uow| {
        service::delete(uow, id, if_match.as_ref()).await?;
        Ok(response::no_content())
    })
    .await
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
    let page: PageRequest<(CursorTime, CallId)> = PageRequest::from_query(query)?;
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

/// The call's JSON with its ETag (and `Location` on 201).
fn call_response(status: StatusCode, call: &Call) -> Result<ApiResponse, ApiError> {
    let location = format!("/api/v1/calls/{}", call.id);
    let created = status == StatusCode::CREATED;
    response::entity(
        status,
        call,
        call.version,
        created.then_some(location.as_str()),
    )
}
