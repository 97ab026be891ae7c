//! An export under way, whoever reads it (the HTTP handlers stream it, `crm export` writes it to a
//! file): the search it reads, the columns it writes, and its cursor, which advances a page at a
//! time, each page read in a short transaction of its own.

use super::repository;
use crate::custom_fields::repository as custom_fields;
use crate::search::{self, ListMembership};
use crm_domain::contact::export::{ndjson_line, Columns};
use crm_domain::contact::filter::ContactFilter;
use crm_domain::contact::search::{Search, SearchCursor};
use crm_domain::import::Format;
use crm_domain::TenantId;
use crm_platform::store::db::Tx;
use crm_platform::store::tenants;
use crm_platform::{ApiError, App};
use std::sync::Arc;

/// Contacts read per page: each page is one short read transaction and one chunk of the output.
pub const PAGE: usize = 1_000;

/// An export under way: owned, since an HTTP body is produced after its handler has returned.
pub struct Export {
    app: Arc<App>,
    tenant: TenantId,
    /// Its cursor advances past each page written.
    search: Search,
    lists: ListMembership,
    format: Format,
    columns: Columns,
}

impl Export {
    /// An export of what `search` matches (with `lists`, what each list it names is), in `format`.
    pub async fn new(
        app: Arc<App>,
        tenant: TenantId,
        mut search: Search,
        lists: ListMembership,
        format: Format,
    ) -> Result<Self, ApiError> {
        search.limit = PAGE;
        let columns = app
            .db
            .read(tenant, async |tx: &Tx| columns(tx, tenant, format).await)
            .await?;
        Ok(Self {
            app,
            tenant,
            search,
            lists,
            format,
            columns,
        })
    }

    /// An export of the contacts the list's filters (`param` reads each query parameter) match.
    pub async fn listed<'a>(
        app: Arc<App>,
        tenant: TenantId,
        param: impl Fn(&str) -> Option<&'a str>,
        format: Format,
    ) -> Result<Self, ApiError> {
        let default_region = app.config.default_phone_region;
        let region = if param("phone").is_some() {
            app.db
                .read(tenant, async |tx: &Tx| tenants::settings(tx, tenant).await)
                .await?
                .region(default_region)
        } else {
            default_region
        };
        let filter = ContactFilter::from_params(param, region)?;
        let search = filter.search(Vec::new(), None, PAGE);
        Self::new(app, tenant, search, ListMembership::new(), format).await
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Where the export stands: the last contact written (none before the first page).
    pub fn position(&self) -> Option<&SearchCursor> {
        self.search.after.as_ref()
    }

    /// Goes on after `position` (a job's next step).
    pub fn resume(&mut self, position: Option<SearchCursor>) {
        self.search.after = position;
    }

    /// What the output starts with: a CSV's header line (nothing for NDJSON).
    pub fn header(&self) -> String {
        match self.format {
            Format::Csv => self.columns.header(),
            Format::Ndjson => String::new(),
        }
    }

    /// Appends the next page of contacts to `out` and moves the cursor past it; how many contacts
    /// it wrote, and whether another page follows.
    pub async fn write_page(&mut self, out: &mut String) -> Result<(usize, bool), ApiError> {
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
        let mut written = 0;
        for (contact, key) in rows.into_iter().take(self.search.limit) {
            let extras = extras.remove(&contact.id).unwrap_or_default();
            match self.format {
                Format::Csv => out.push_str(&self.columns.row(&contact, &extras)),
                Format::Ndjson => out.push_str(&ndjson_line(&contact, &extras)),
            }
            written += 1;
            self.search.after = Some(SearchCursor {
                sort: self.search.sort.clone(),
                key,
                id: contact.id,
            });
        }
        Ok((written, more))
    }
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
