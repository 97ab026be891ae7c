//! The application: what every entry point shares and outlives a request (configuration, key
//! material, the database, the key-value store, wake-ups, the rate limiter), and the unit of work
//! runner that gives every change its transaction and its after-commit effects.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::edge::cache::EntityCache;
use crate::edge::kv::KeyValue;
use crate::edge::ratelimit;
use crate::edge::wakeup::Wakeup;
use crate::store::db::{Db, DbError, Tx};
use crate::store::tenants::TenantDirectory;
use crate::store::unit_of_work::{AfterCommit, UnitOfWork};
use anyhow::Context;
use crm_domain::{Actor, TenantId};

/// Everything a request may use that outlives it: configuration, key material, the database.
pub struct App {
    pub config: Config,
    pub auth: Authenticator,
    pub db: Db,
    /// Rate-limit counters and the read cache.
    pub kv: KeyValue,
    /// Wakes the webhook dispatcher after a mutation commits.
    pub wakeup: Wakeup,
    /// Wakes the job worker when an import or an export job starts (and when a pass leaves work
    /// behind).
    pub job_wakeup: Wakeup,
    /// `None` when rate limiting is off.
    pub rate_limiter: Option<ratelimit::Limiter>,
    /// What this process last read of each tenant (exists, active, rate-limit overrides).
    pub tenants: TenantDirectory,
}

impl App {
    /// An app whose key-value store is `kv` (Spin's `default` store, in-process memory or Redis).
    pub fn new(config: Config, kv: KeyValue) -> anyhow::Result<Self> {
        let auth = Authenticator::new(&config.jwt).context("loading JWT keys")?;
        let db = Db::connect(&config.database_url)?;
        let wakeup = Wakeup::new(config.redis_url.as_deref(), crate::edge::wakeup::CHANNEL);
        let job_wakeup = Wakeup::new(
            config.redis_url.as_deref(),
            crate::edge::wakeup::JOB_CHANNEL,
        );
        let rate_limiter = config.rate_limits.map(ratelimit::Limiter::new);
        let tenants = TenantDirectory::new(config.tenant_cache_seconds);
        Ok(Self {
            config,
            auth,
            db,
            kv,
            wakeup,
            job_wakeup,
            rate_limiter,
            tenants,
        })
    }

    /// Runs `work` as one change of `tenant` by `actor`: committed when it returns `Ok`, rolled
    /// back otherwise; what the change asked to follow its commit (cache invalidation, a
    /// dispatcher wake-up) runs once it has committed, and never when it has not.
    pub async fn unit_of_work<T, E>(
        &self,
        tenant: TenantId,
        actor: &Actor,
        correlation_id: &str,
        work: impl AsyncFnOnce(&UnitOfWork<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let fallback_region = self.config.default_phone_region;
        let (value, after_commit) = self
            .db
            .transaction(tenant, async |tx: &Tx| {
                let uow = UnitOfWork::new(tx, tenant, actor, correlation_id, fallback_region);
                let value = work(&uow).await?;
                Ok::<_, E>((value, uow.into_after_commit()))
            })
            .await?;
        self.after_commit(tenant, after_commit).await;
        Ok(value)
    }

    async fn after_commit(&self, tenant: TenantId, after_commit: AfterCommit) {
        for (kind, id) in &after_commit.invalidations {
            if let Some(cache) = self.cache(tenant, kind) {
                cache.invalidate(id).await;
            }
        }
        if after_commit.wake_dispatcher {
            self.wakeup.publish().await;
        }
    }

    /// The read cache for `kind` resources of `tenant`, when caching is on.
    pub fn cache(&self, tenant: TenantId, kind: &'static str) -> Option<EntityCache<'_>> {
        self.config
            .cache_enabled
            .then(|| EntityCache::new(&self.kv, tenant, kind))
    }
}
