//! Tenant administration, run as the schema owner (tenants are created outside any tenant's scope).

use anyhow::{bail, Context};
use crm_domain::{Region, TenantId};

pub async fn create(owner_url: &str, name: &str, region: &str) -> anyhow::Result<TenantId> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("a tenant name must be 1 to 200 characters");
    }
    let Some(region) = Region::parse(region) else {
        bail!("{region:?} is not a region code libphonenumber knows (use ISO 3166-1 alpha-2, e.g. GB)");
    };
    let client = crate::connect(owner_url).await?;
    let id = TenantId::generate();
    client
        .execute(
            "insert into tenants (id, name, default_region) values ($1, $2, $3)",
            &[&id.as_uuid(), &name, &region.to_string()],
        )
        .await
        .context("creating the tenant (has `crm migrate` run?)")?;
    Ok(id)
}
