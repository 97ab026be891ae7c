//! What the benchmarks share: a token for the tenant under test.

use anyhow::Context;
use crm_domain::TenantId;
use crm_platform::config::JwtConfig;
use std::time::Duration;

/// The tenant of `--tenant` and an hour-long development token for it with `scopes`, signed with
/// `SPIN_VARIABLE_JWT_HS256_SECRET` (the server's).
pub fn tenant_token(
    tenant: &str,
    subject: &str,
    scopes: &str,
) -> anyhow::Result<(TenantId, String)> {
    let tenant = TenantId::parse(tenant).context("--tenant is not a UUID")?;
    let jwt = JwtConfig::from_env()?;
    let token = crm_platform::auth::issue_hs256_token(
        &jwt,
        subject,
        tenant,
        scopes,
        Duration::from_secs(3600),
    )?;
    Ok((tenant, token))
}
