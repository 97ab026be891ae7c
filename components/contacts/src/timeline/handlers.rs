//! The timeline handler: query in, one read, a page out.

use super::repository::{self, TimelineCursor, TimelineQuery};
use crm_domain::timeline::{TimelineEntry, KINDS};
use crm_domain::ContactId;
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// `GET /api/v1/contacts/{id}/timeline?kinds=&from=&to=`: newest first, keyset-paginated.
pub async fn timeline(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let contact = ctx.path_id::<ContactId>("id")?;
    let query = Query::parse(
        ctx.request.query.as_deref(),
        &["limit", "cursor", "kinds", "from", "to"],
    )?;
    let kinds: Vec<String> = match query.get("kinds") {
        None => Vec::new(),
        Some(raw) => raw
            .split(',')
            .map(|kind| {
                let kind = kind.trim();
                KINDS
                    .iter()
                    .find(|known| **known == kind)
                    .map(|known| (*known).to_owned())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "kinds must be comma-separated kinds of {}",
                            KINDS.join(", ")
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let from = query.time("from")?;
    let to = query.time("to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(ApiError::bad_request("from must be before to"));
        }
    }
    let page: PageRequest<TimelineCursor> = PageRequest::from_query(&query)?;
    let read = TimelineQuery {
        kinds: &kinds,
        from: from.map(rfc3339),
        to: to.map(rfc3339),
        after: page.after.as_ref(),
        limit: page.fetch_limit(),
    };
    let entries = repository::timeline(&ctx.app.db, tenant, contact, &read).await?;
    // No entries: a contact that is not live (404), or none that match.
    if entries.is_empty() {
        let live = ctx
            .app
            .db
            .read(tenant, async |tx: &Tx| {
                contacts::is_live(tx, tenant, contact, Hold::Nothing).await
            })
            .await?;
        if !live {
            return Err(ApiError::NotFound);
        }
    }
    json(
        StatusCode::OK,
        &Page::from_rows(entries, page.limit, |e: &TimelineEntry| {
            (e.at.clone(), e.id.clone())
        }),
    )
}
