//! The search handler: the body read against the tenant's custom fields and lists, one page, and
//! the total when asked for.

use super::conditions::ListMembership;
use super::repository;
use crate::custom_fields::repository as custom_fields;
use crm_domain::contact::filter::ContactFilter;
use crm_domain::contact::search::{lists_named, Node, Search, SearchContext, SearchCursor};
use crm_domain::contact::Contact;
use crm_domain::{FieldError, ValidationErrors};
use crm_platform::http::json::parse_body;
use crm_platform::http::pagination::{decode_cursor, Page};
use crm_platform::http::response::json;
use crm_platform::http::ApiResponse;
use crm_platform::store::db::Tx;
use crm_platform::store::lists as store_lists;
use crm_platform::store::tenants;
use crm_platform::{ApiError, RequestContext};
use http::StatusCode;
use serde_json::{json, Value};

/// `POST /api/v1/contacts/search`: `{"data": [...], "next_cursor": ..., "total": ...}`.
pub async fn search(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let body: Value = parse_body(&ctx.request)?;
    let (search, rows, total) = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            let region = ctx.app.config.default_phone_region;
            let (search, lists) = prepare(region, tenant, tx, &body).await?;
            let rows = repository::page(tx, tenant, &search, &lists).await?;
            let total = if search.count {
                Some(repository::total(tx, tenant, &search, &lists).await?)
            } else {
                None
            };
            Ok::<_, ApiError>((search, rows, total))
        })
        .await?;
    let sort = search.sort.clone();
    let page = Page::from_keyed_rows(rows, search.limit, |contact: &Contact, key: &String| {
        SearchCursor {
            sort: sort.clone(),
            key: key.clone(),
            id: contact.id,
        }
    });
    json(
        StatusCode::OK,
        &json!({ "data": page.data, "next_cursor": page.next_cursor, "total": total }),
    )
}

/// A search body read against the tenant's custom fields, region (`default_region` when it has
/// none) and lists: the search (its fuzzy words narrowed) and what each list it names is. The
/// search, the export and export jobs read bodies here.
pub(crate) async fn prepare(
    default_region: crm_domain::Region,
    tenant: crm_domain::TenantId,
    tx: &Tx,
    body: &Value,
) -> Result<(Search, ListMembership), ApiError> {
    // The tenant's custom fields and region are read only when the search names a custom field or
    // a phone (each mention is in the body's text).
    let text = body.to_string();
    let fields = if text.contains("custom.") {
        custom_fields::list(tx, tenant, true).await?
    } else {
        Vec::new()
    };
    let region = if text.contains("phone") || text.contains("\"lists\"") {
        tenants::settings(tx, tenant).await?.region(default_region)
    } else {
        default_region
    };
    let decode = |raw: &str| decode_cursor::<SearchCursor>(raw).ok();
    let context = SearchContext {
        fields: &fields,
        region,
        decode_cursor: &decode,
    };
    let mut search = Search::parse(body, &context)?;
    repository::narrow_fuzzy(tx, &mut search).await?;
    let lists = list_membership(tx, tenant, &search, region).await?;
    Ok((search, lists))
}

/// What each list the filter names is: a static list's members, or a smart list's saved
/// conditions, read in one statement. A list the tenant does not have is a 422.
async fn list_membership(
    tx: &Tx,
    tenant: crm_domain::TenantId,
    search: &Search,
    region: crm_domain::Region,
) -> Result<ListMembership, ApiError> {
    let mut ids = Vec::new();
    if let Some(filter) = &search.filter {
        lists_named(filter, &mut ids);
    }
    if ids.is_empty() {
        return Ok(ListMembership::new());
    }
    let found = store_lists::definitions(tx, tenant, &ids).await?;
    if let Some(missing) = ids
        .iter()
        .find(|id| !found.iter().any(|l| l.summary.id == **id))
    {
        return Err(ValidationErrors(vec![FieldError::new(
            "/filter",
            "unknown_list",
            format!("there is no list {missing}"),
        )])
        .into());
    }
    // A saved filter that no longer reads matches no one; reading the list says why.
    let lists = found
        .into_iter()
        .map(|list| {
            let saved = list.filter.as_ref().map(|filter| {
                ContactFilter::from_saved(filter, region, "")
                    .map(|filter| filter.conditions())
                    .unwrap_or_else(|_| vec![Node::Any(Vec::new())])
            });
            (list.summary.id, saved)
        })
        .collect();
    Ok(lists)
}
