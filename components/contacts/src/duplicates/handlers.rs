//! The duplicates route: query in, one walk, a page of scored pairs out.

use super::repository;
use crm_domain::contact::duplicates::{score, DuplicatePair};
use crm_domain::ContactId;
use crm_platform::http::pagination::{Page, PageRequest};
use crm_platform::http::query::Query;
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;

/// How many contacts one page walks at most: a page may hold fewer pairs than `limit` (even none)
/// and still have a `next_cursor`; the walk ends when `next_cursor` is null.
const WALK_BUDGET: i64 = 500;

/// `GET /api/v1/contacts/duplicates?limit=&cursor=&contact_id=&min_score=`.
pub async fn list_duplicates(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(
        ctx.request.query.as_deref(),
        &["limit", "cursor", "contact_id", "min_score"],
    )?;
    let page: PageRequest<(ContactId, ContactId)> = PageRequest::from_query(&query)?;
    let contact = query
        .get("contact_id")
        .map(|raw| {
            ContactId::parse(raw.trim())
                .ok_or_else(|| ApiError::bad_request("contact_id must be a contact id"))
        })
        .transpose()?;
    let min_score = match query.get("min_score") {
        None => 0.0,
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=1.0).contains(s))
            .ok_or_else(|| ApiError::bad_request("min_score must be a number from 0 to 1"))?,
    };
    let walk = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            if let Some(contact) = contact {
                if !contacts::is_live(tx, tenant, contact, Hold::Nothing).await? {
                    return Err(ApiError::NotFound);
                }
            }
            Ok(repository::page(
                tx,
                tenant,
                page.after,
                WALK_BUDGET,
                contact,
                page.fetch_limit(),
            )
            .await?)
        })
        .await?;
    let mut found = walk.pairs;
    let next = if found.len() > page.limit {
        found.truncate(page.limit);
        found.last().map(|pair| (pair.a, pair.b))
    } else if contact.is_none() && walk.walked == WALK_BUDGET {
        // Every pair of the walked contacts is on this page: the next starts after the last.
        walk.last_walked
            .map(|last| (last, ContactId::from_uuid(uuid::Uuid::max())))
    } else {
        None
    };
    let pairs: Vec<DuplicatePair> = found
        .into_iter()
        .map(|pair| DuplicatePair {
            contact_ids: [pair.a, pair.b],
            score: score(&pair.reasons),
            contacts: [pair.a, pair.b]
                .iter()
                .filter_map(|id| walk.contacts.iter().find(|c| c.id == *id).cloned())
                .collect(),
            reasons: pair.reasons,
        })
        .filter(|pair| pair.score >= min_score)
        .collect();
    json(StatusCode::OK, &Page::with_next(pairs, next.as_ref()))
}
