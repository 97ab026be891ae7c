//! Cache-aside for single-resource reads, keyed by tenant, kind and id, in the key-value store.
//!
//! Each resource has a generation counter `c:{tenant}:{kind}:{id}:gen`; entries live at
//! `c:{tenant}:{kind}:{id}:{generation}`. A writer bumps the generation after its transaction
//! commits (and drops the entry it made stale), so a reader that raced the write and stores the old
//! row stores it under a generation no one will ask for: no client reads its own write stale.
//! Any store failure is a miss; the cache never fails a request.

use crate::edge::kv::KeyValue;
use crate::ApiError;
use crm_domain::TenantId;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The kinds of resource cached, shared by the components that read and write them.
pub const CONTACT: &str = "contact";
pub const CALL: &str = "call";

/// RFC 9211 `Cache-Status` values this API sends.
pub const HIT: &str = "crm; hit";
pub const MISS: &str = "crm; fwd=miss";

pub struct EntityCache<'a> {
    kv: &'a KeyValue,
    tenant: TenantId,
    kind: &'static str,
}

/// What a read found.
pub enum Lookup<T> {
    Hit(T),
    /// Not cached: fill it with this generation once read from the database.
    Miss(Option<i64>),
}

/// A cache-aside read of `key`: the cached copy when there is one, else `load` from the database
/// (`None`: no such resource), stored for the next reader. Also says what it did, as `Cache-Status`
/// (`None` when caching is off).
pub async fn read_through<T: Serialize + DeserializeOwned>(
    cache: Option<EntityCache<'_>>,
    key: &str,
    load: impl AsyncFnOnce() -> Result<Option<T>, ApiError>,
) -> Result<Option<(T, Option<&'static str>)>, ApiError> {
    let Some(cache) = cache else {
        return Ok(load().await?.map(|value| (value, None)));
    };
    let generation = match cache.lookup::<T>(key).await {
        Lookup::Hit(value) => return Ok(Some((value, Some(HIT)))),
        Lookup::Miss(generation) => generation,
    };
    let Some(value) = load().await? else {
        return Ok(None);
    };
    cache.fill(key, generation, &value).await;
    Ok(Some((value, Some(MISS))))
}

impl<'a> EntityCache<'a> {
    pub fn new(kv: &'a KeyValue, tenant: TenantId, kind: &'static str) -> Self {
        Self { kv, tenant, kind }
    }

    fn base(&self, id: &str) -> String {
        format!("c:{}:{}:{id}", self.tenant, self.kind)
    }

    async fn generation(&self, id: &str) -> Option<i64> {
        match self.kv.get(&format!("{}:gen", self.base(id))).await {
            Ok(Some(bytes)) => std::str::from_utf8(&bytes).ok()?.parse().ok(),
            Ok(None) => Some(0),
            Err(_) => None,
        }
    }

    pub async fn lookup<T: DeserializeOwned>(&self, id: &str) -> Lookup<T> {
        let Some(generation) = self.generation(id).await else {
            return Lookup::Miss(None);
        };
        match self
            .kv
            .get(&format!("{}:{generation}", self.base(id)))
            .await
        {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(value) => Lookup::Hit(value),
                Err(_) => Lookup::Miss(Some(generation)),
            },
            _ => Lookup::Miss(Some(generation)),
        }
    }

    /// Stores `value` as read under `generation` (from the [`Lookup::Miss`] that preceded the read).
    pub async fn fill<T: Serialize>(&self, id: &str, generation: Option<i64>, value: &T) {
        let Some(generation) = generation else { return };
        if let Ok(bytes) = serde_json::to_vec(value) {
            let _best_effort = self
                .kv
                .set(&format!("{}:{generation}", self.base(id)), &bytes)
                .await;
        }
    }

    /// Makes every cached copy of `id` unreachable. Call after the write's transaction commits.
    pub async fn invalidate(&self, id: &str) {
        let base = self.base(id);
        match self.kv.increment(&format!("{base}:gen"), 1).await {
            Ok(generation) => {
                let _best_effort = self.kv.delete(&format!("{base}:{}", generation - 1)).await;
            }
            Err(error) => tracing::warn!(key = base, error = %error, "cache invalidation failed"),
        }
    }
}
