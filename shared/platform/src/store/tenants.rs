//! What a tenant has configured, read inside a request's transaction.

use crate::store::db::{DbError, Tx};
use crm_domain::{Region, TenantId};

const SETTINGS: &str = "
    select default_region,
           coalesce((settings->>'require_if_match')::boolean, false) as require_if_match
    from tenants where id = $1";

pub struct TenantSettings {
    pub default_region: Option<Region>,
    /// Every change must carry `If-Match` (428 without it).
    pub require_if_match: bool,
}

impl TenantSettings {
    /// The region numbers without a country code are read with: the tenant's, else `fallback`.
    pub fn region(&self, fallback: Region) -> Region {
        self.default_region.unwrap_or(fallback)
    }
}

pub async fn settings(tx: &Tx, tenant: TenantId) -> Result<TenantSettings, DbError> {
    let row = tx.query_opt(SETTINGS, &[tenant.into()]).await?;
    Ok(match row {
        Some(row) => TenantSettings {
            default_region: Region::parse(&row.get::<String>("default_region")?),
            require_if_match: row.get("require_if_match")?,
        },
        None => TenantSettings {
            default_region: None,
            require_if_match: false,
        },
    })
}
