//! What a tenant has configured: its settings, read inside a change's transaction, and its state
//! (active or suspended, rate-limit overrides), which the pipeline checks before a request runs.

use crate::config::Overrides;
use crate::store::db::{Db, DbError, Tx};
use crm_domain::{Region, TenantId};
use std::collections::HashMap;
use std::sync::Mutex;

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

/// What the pipeline knows of a tenant before a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantState {
    /// `false` while the tenant is suspended.
    pub active: bool,
    /// Its overrides of the rate limits.
    pub rate_limits: Overrides,
}

const STATE: &str = "
    select status = 'active' as active, settings->'rate_limits' as rate_limits
    from tenants where id = $1";

/// Tenants' states as last read, kept by the process (the instance on Spin) for
/// `tenant_cache_seconds`: a request costs no database read for them, a tenant at most one read per
/// period. A tenant that does not exist is not remembered (its token is refused either way).
pub struct TenantDirectory {
    ttl_seconds: u64,
    states: Mutex<HashMap<TenantId, (u64, TenantState)>>,
}

/// How many tenants one process remembers before it starts again from empty.
const DIRECTORY_CAPACITY: usize = 10_000;

impl TenantDirectory {
    pub fn new(ttl_seconds: u64) -> Self {
        Self {
            ttl_seconds,
            states: Mutex::default(),
        }
    }

    /// The state of `tenant` at `now` (Unix seconds); `None` when no such tenant exists.
    pub async fn get(
        &self,
        db: &Db,
        tenant: TenantId,
        now: u64,
    ) -> Result<Option<TenantState>, DbError> {
        if let Some((fetched, state)) = self.lock().get(&tenant).copied() {
            if now.saturating_sub(fetched) < self.ttl_seconds {
                return Ok(Some(state));
            }
        }
        let row = db
            .read(tenant, async |tx: &Tx| {
                tx.query_opt(STATE, &[tenant.into()]).await
            })
            .await?;
        let Some(row) = row else {
            self.lock().remove(&tenant);
            return Ok(None);
        };
        let state = TenantState {
            active: row.get("active")?,
            // A malformed override keeps the defaults (`crm tenant set` validates what it writes).
            rate_limits: row
                .get::<Option<serde_json::Value>>("rate_limits")?
                .and_then(|value| serde_json::from_value(value).ok())
                .unwrap_or_default(),
        };
        let mut states = self.lock();
        if states.len() >= DIRECTORY_CAPACITY {
            states.clear();
        }
        states.insert(tenant, (now, state));
        Ok(Some(state))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, (u64, TenantState)>> {
        self.states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
