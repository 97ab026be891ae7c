//! The export handlers: the request read into a search (the list's filters or a search body), the
//! first page read before answering (so that a bad request or a failure is a problem, not a cut
//! body), then the rest streamed a page at a time, each page read in a short transaction of its own
//! and resumed from the last row's keyset cursor.

use super::repository;
use crate::custom_fields::repository as custom_fields;
use crate::search::{self, ListMembership};
use bytes::Bytes;
use crm_domain::contact::export::{ndjson_line, Columns};
use crm_domain::contact::filter::{ContactFilter, SAVED_FILTERS};
use crm_domain::contact::search::{Search, SearchCursor};
use crm_domain::{FieldError, TenantId, ValidationErrors};
use crm_platform::http::json::parse_body;
use crm_platform::http::query::Query;
use crm_platform::http::response::set_header;
use crm_platform::http::{ApiResponse, ResponseBody};
use crm_platform::store::db::Tx;
use crm_platform::store::tenants;
use crm_platform::{ApiError, App, RequestContext};
use futures::StreamExt;
use http::header;
use serde_json::Value;
use std::sync::Arc;

/// Contacts read per page: each page is one short read transaction and one chunk of the body.
const PAGE: usize = 1_000;

/// The query parameters of `GET /api/v1/contacts/export` beside the list's filters.
const EXPORT_PARAMETERS: &[&str] = &["sort", "include_deleted", "format"];

/// The fields of a search body that page it, which an export (every match) refuses.
const PAGING_FIELDS: &[&str] = &["limit", "cursor", "count"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// `format=csv|ndjson`, else what `Accept` prefers of the two, else CSV.
    fn of(ctx: &RequestContext, query: &Query) -> Result<Self, ApiError> {
        match query.get("format") {
            Some("csv") => return Ok(Format::Csv),
            Some("ndjson") => return Ok(Format::Ndjson),
            Some(_) => return Err(ApiError::bad_request("format must be csv or ndjson")),
            None => {}
        }
        let accept = ctx
            .request
            .headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        Ok(if accept.contains("application/x-ndjson") {
            Format::Ndjson
        } else {
            Format::Csv
        })
    }

    fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// `GET /api/v1/contacts/export`: the contacts `GET /api/v1/contacts` would list with the same
/// filters and sort, every page of them.
pub async fn export_listed(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let allowed = [SAVED_FILTERS, EXPORT_PARAMETERS].concat();
    let query = Query::parse(ctx.request.query.as_deref(), &allowed)?;
    let format = Format::of(&ctx, &query)?;
    let (search, columns) = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            let region = if query.get("phone").is_some() {
                tenants::settings(tx, tenant)
                    .await?
                    .region(ctx.app.config.default_phone_region)
            } else {
                ctx.app.config.default_phone_region
            };
            let filter = ContactFilter::from_params(|name| query.get(name), region)?;
            let search = filter.search(Vec::new(), None, PAGE);
            Ok::<_, ApiError>((search, columns(tx, tenant, format).await?))
        })
        .await?;
    let export = Export {
        app: ctx.app.clone(),
        tenant,
        search,
        lists: ListMembership::new(),
        format,
        columns,
    };
    export.respond().await
}

/// `POST /api/v1/contacts/export`: the contacts a `POST /api/v1/contacts/search` body matches
/// (without its paging fields), every one of them.
pub async fn export_searched(ctx: RequestContext) -> Result<ApiResponse, ApiError> {
    let tenant = ctx.principal()?.tenant_id;
    let query = Query::parse(ctx.request.query.as_deref(), &["format"])?;
    let format = Format::of(&ctx, &query)?;
    let body: Value = parse_body(&ctx.request)?;
    let paged: Vec<FieldError> = PAGING_FIELDS
        .iter()
        .filter(|field| body.get(**field).is_some())
        .map(|field| {
            FieldError::new(
                format!("/{field}"),
                "not_allowed",
                "an export reads every match; it has no pages",
            )
        })
        .collect();
    if !paged.is_empty() {
        return Err(ValidationErrors(paged).into());
    }
    let (search, lists, columns) = ctx
        .app
        .db
        .read(tenant, async |tx: &Tx| {
            let (mut search, lists) = search::handlers::prepare(&ctx, tx, &body).await?;
            search.limit = PAGE;
            Ok::<_, ApiError>((search, lists, columns(tx, tenant, format).await?))
        })
        .await?;
    let export = Export {
        app: ctx.app.clone(),
        tenant,
        search,
        lists,
        format,
        columns,
    };
    export.respond().await
}

/// The columns a CSV export adds for this tenant: every custom field (archived ones too, whose
/// values are still stored) and every consent purpose it has recorded.
async fn columns(tx: &Tx, tenant: TenantId, format: Format) -> Result<Columns, ApiError> {
    if format == Format::Ndjson {
        return Ok(Columns::default());
    }
    let mut custom: Vec<String> = custom_fields::list(tx, tenant, true)
        .await?
        .into_iter()
        .map(|field| field.key)
        .collect();
    custom.sort();
    Ok(Columns {
        custom,
        purposes: repository::purposes(tx, tenant).await?,
    })
}

/// An export under way: owned, since its body is produced after the handler has returned.
struct Export {
    app: Arc<App>,
    tenant: TenantId,
    /// Its cursor advances past each page written.
    search: Search,
    lists: ListMembership,
    format: Format,
    columns: Columns,
}

impl Export {
    /// Reads the first page now, then answers with it and a stream of the pages after it.
    async fn respond(mut self) -> Result<ApiResponse, ApiError> {
        let mut first = match self.format {
            Format::Csv => self.columns.header(),
            Format::Ndjson => String::new(),
        };
        let more = self.write_page(&mut first).await?;
        let format = self.format;
        let rest = futures::stream::try_unfold((self, more), |(mut export, more)| async move {
            if !more {
                return Ok(None);
            }
            let mut chunk = String::new();
            let more = export.write_page(&mut chunk).await?;
            Ok(Some((Bytes::from(chunk), (export, more))))
        });
        let chunks = futures::stream::once(async { Ok(Bytes::from(first)) }).chain(rest);
        let mut response = ApiResponse::new(ResponseBody::streamed(Box::pin(chunks)));
        set_header(&mut response, header::CONTENT_TYPE, format.media_type());
        set_header(
            &mut response,
            header::CONTENT_DISPOSITION,
            &format!("attachment; filename=\"contacts.{}\"", format.extension()),
        );
        // Personal data: no shared cache keeps a copy.
        set_header(&mut response, header::CACHE_CONTROL, "no-store");
        Ok(response)
    }

    /// Appends the next page of contacts to `out` and moves the cursor past it; whether another
    /// page follows.
    async fn write_page(&mut self, out: &mut String) -> Result<bool, ApiError> {
        let tenant = self.tenant;
        let (rows, mut extras) = self
            .app
            .db
            .read(tenant, async |tx: &Tx| {
                let rows = search::page(tx, tenant, &self.search, &self.lists).await?;
                let ids: Vec<_> = rows
                    .iter()
                    .take(self.search.limit)
                    .map(|(contact, _)| contact.id)
                    .collect();
                let extras = repository::extras(tx, tenant, &ids).await?;
                Ok::<_, ApiError>((rows, extras))
            })
            .await?;
        let more = rows.len() > self.search.limit;
        for (contact, key) in rows.into_iter().take(self.search.limit) {
            let extras = extras.remove(&contact.id).unwrap_or_default();
            match self.format {
                Format::Csv => out.push_str(&self.columns.row(&contact, &extras)),
                Format::Ndjson => out.push_str(&ndjson_line(&contact, &extras)),
            }
            self.search.after = Some(SearchCursor {
                sort: self.search.sort.clone(),
                key,
                id: contact.id,
            });
        }
        Ok(more)
    }
}
