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

/// The settings `crm tenant set` changes; `None` keeps a setting's value.
#[derive(Debug, Default, Clone, Copy)]
pub struct TenantUpdate<'a> {
    pub require_if_match: Option<bool>,
    pub region: Option<&'a str>,
    pub rate_limits: Option<&'a str>,
    pub audit_retention_months: Option<i32>,
    /// `active` or `suspended`.
    pub status: Option<&'a str>,
}

/// Changes the settings given; the others keep their values.
pub async fn update(
    owner_url: &str,
    tenant: TenantId,
    changes: TenantUpdate<'_>,
) -> anyhow::Result<()> {
    let TenantUpdate {
        require_if_match,
        region,
        rate_limits,
        audit_retention_months,
        status,
    } = changes;
    if status.is_some_and(|s| s != "active" && s != "suspended") {
        bail!("--status must be active or suspended");
    }
    if audit_retention_months.is_some_and(|m| !(1..=1200).contains(&m)) {
        bail!("--audit-retention-months must be from 1 to 1200");
    }
    let region = region
        .map(|raw| {
            Region::parse(raw)
                .map(|r| r.to_string())
                .ok_or_else(|| anyhow::anyhow!("{raw:?} is not a region code libphonenumber knows"))
        })
        .transpose()?;
    let rate_limits = rate_limits
        .map(|raw| {
            let overrides: crm_platform::config::Overrides = serde_json::from_str(raw).context(
                "--rate-limits takes JSON such as {\"tenant_per_minute\": 20000, \"principal_per_minute\": 2000, \"expensive_per_minute\": 500}",
            )?;
            anyhow::Ok(serde_json::to_value(overrides)?)
        })
        .transpose()?;
    let client = crate::connect(owner_url).await?;
    let updated = client
        .execute(
            "update tenants
             set default_region = coalesce($2, default_region),
                 status = coalesce($6, status),
                 settings = settings
                     || case when $3::bool is null then '{}'::jsonb
                             else jsonb_build_object('require_if_match', $3::bool) end
                     || case when $4::jsonb is null then '{}'::jsonb
                             else jsonb_build_object('rate_limits', $4::jsonb) end
                     || case when $5::int4 is null then '{}'::jsonb
                             else jsonb_build_object('audit_retention_months', $5::int4) end
             where id = $1",
            &[
                &tenant.as_uuid(),
                &region,
                &require_if_match,
                &rate_limits,
                &audit_retention_months,
                &status,
            ],
        )
        .await?;
    if updated == 0 {
        bail!("no tenant {tenant}");
    }
    Ok(())
}
