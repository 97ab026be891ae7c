//! Audit handlers: the trail, one record, and reports as JSON or CSV.

use crate::repository::{self, EventFilter};
use crm_domain::csv;
use crm_domain::AuditRecordId;
use crm_platform::http::pagination::{CursorTime, Page, PageRequest};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// `GET /api/v1/audit/events`: newest first, filtered, keyset-paginated.
pub async fn list_events(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(
        ctx.request.query.as_deref(),
        &[
            "limit",
            "cursor",
            "entity_type",
            "entity_id",
            "actor",
            "action",
            "from",
            "to",
        ],
    )?;
    let page: PageRequest<(CursorTime, AuditRecordId)> = PageRequest::from_query(&query)?;
    let filter = EventFilter {
        entity_type: query.get("entity_type").map(str::to_owned),
        entity_id: query
            .get("entity_id")
            .map(|raw| {
                Uuid::try_parse(raw).map_err(|_| ApiError::bad_request("entity_id must be a UUID"))
            })
            .transpose()?,
        actor: query.get("actor").map(str::to_owned),
        action: query.get("action").map(str::to_owned),
        from: query.time("from")?.map(rfc3339),
        to: query.time("to")?.map(rfc3339),
    };
    let events = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::list(tx, tenant, &filter, page.after.as_ref(), page.fetch_limit()).await
        })
        .await?;
    json(
        StatusCode::OK,
        &Page::from_rows(events, page.limit, |event| {
            (event.occurred_at.clone(), event.id)
        }),
    )
}

/// `GET /api/v1/audit/events/{id}`.
pub async fn get_event(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let id = ctx.path_id::<AuditRecordId>("id")?;
    let event = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            repository::find(tx, tenant, id).await
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    json(StatusCode::OK, &event)
}

/// `GET /api/v1/audit/reports?from=&to=&group_by=actor|action|entity_type`: record counts per group
/// in `[from, to)` (default: the last 30 days), as JSON, or as CSV for `Accept: text/csv`.
pub async fn report(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let csv = wants_csv(&ctx);
    report_as(ctx, csv).await
}

/// `GET /api/v1/audit/reports.csv`: the same report as CSV, whatever `Accept` says (clients
/// generated from the OpenAPI document do not negotiate content types).
pub async fn report_csv(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    report_as(ctx, true).await
}

async fn report_as(ctx: RequestContext, as_csv: bool) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["from", "to", "group_by"])?;
    let (from, to) = query.time_range(30)?;
    let group_by = query.get("group_by").unwrap_or("action");
    let column = match group_by {
        "actor" => "actor",
        "action" => "action",
        "entity_type" => "entity_type",
        _ => {
            return Err(ApiError::bad_request(
                "group_by must be actor, action or entity_type",
            ))
        }
    };
    let (from, to) = (rfc3339(from), rfc3339(to));
    let groups = ctx
        .app
        .db
        .transaction(tenant, async |tx: &Tx| {
            repository::report(tx, tenant, column, &from, &to).await
        })
        .await?;
    if as_csv {
        let mut body = csv::line(&[group_by, "count"]);
        for (key, count) in &groups {
            body.push_str(&csv::line(&[key, &count.to_string()]));
        }
        let mut response = ApiResponse::new(body.into());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
        );
        return Ok(response);
    }
    let groups: Vec<_> = groups
        .into_iter()
        .map(|(key, count)| json!({"key": key, "count": count}))
        .collect();
    json(
        StatusCode::OK,
        &json!({"from": from, "to": to, "group_by": group_by, "groups": groups}),
    )
}

fn wants_csv(ctx: &RequestContext) -> bool {
    ctx.request
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|media| media.trim().starts_with("text/csv"))
        })
}
