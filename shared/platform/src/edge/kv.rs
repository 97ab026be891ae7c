//! The key-value port: rate-limit counters and the read cache. On Spin it is the component's
//! `default` store through `wasi:keyvalue` (store + atomics), with rate-limit counters in Redis
//! (`redis_url`) when one is configured; natively an in-process map or Redis.
//!
//! Every caller treats a failure as "no store": nothing here may fail a request.

use std::fmt;

#[derive(Debug)]
pub struct KvError(pub String);

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key-value store: {}", self.0)
    }
}

impl std::error::Error for KvError {}

/// Raises every key of `KEYS` by `ARGV[2]`, giving a key its expiry (`ARGV[1]` seconds) when the
/// increment created it, and answers the new counts: a request's rate-limit counters in one round
/// trip, and finished windows that expire on their own.
const COUNT_SCRIPT: &str = "local counts = {} \
for i, key in ipairs(KEYS) do \
  counts[i] = redis.call('INCRBY', key, ARGV[2]) \
  if counts[i] == tonumber(ARGV[2]) then redis.call('EXPIRE', key, ARGV[1]) end \
end \
return counts";

/// The key of `counter`'s `window`.
fn window_key(counter: &str, window: u64) -> String {
    format!("{counter}:{window}")
}

/// [`KeyValue::count_in_window`] for a store without scripts: one counter after another. The
/// increment that opens a window deletes the window this counter used before (its pointer says
/// which), so finished windows do not pile up.
async fn count_each(
    kv: &KeyValue,
    counters: &[String],
    amount: u64,
    window: u64,
) -> Result<Vec<u64>, KvError> {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    let mut counts = Vec::with_capacity(counters.len());
    for counter in counters {
        let count = kv.increment(&window_key(counter, window), amount).await?;
        if count == amount {
            let pointer = format!("{counter}:window");
            if let Some(previous) = kv.get(&pointer).await? {
                let previous = String::from_utf8_lossy(&previous).to_string();
                if previous != window.to_string() {
                    kv.delete(&format!("{counter}:{previous}")).await?;
                }
            }
            kv.set(&pointer, window.to_string().as_bytes()).await?;
        }
        counts.push(u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{KeyValue, MEMORY_CAPACITY};
#[cfg(target_arch = "wasm32")]
pub use spin::KeyValue;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::KvError;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// An in-process store (one process, exact counts) or Redis (shared by every replica).
    #[derive(Clone)]
    pub enum KeyValue {
        Memory(Arc<Mutex<HashMap<String, Vec<u8>>>>),
        Redis(redis::aio::ConnectionManager),
        /// A store that could not be reached at start-up: every operation fails.
        Unavailable(Arc<str>),
    }

    impl KeyValue {
        pub fn memory() -> Self {
            KeyValue::Memory(Arc::default())
        }

        /// Connects to `url` (`redis://host:port`); a store that cannot be reached yields one whose
        /// every operation fails, which callers degrade around.
        pub async fn redis(url: &str) -> Self {
            let connect = async {
                let client = redis::Client::open(url)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(std::time::Duration::from_secs(1))
                    .set_response_timeout(std::time::Duration::from_secs(1))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(client, config).await
            };
            match connect.await {
                Ok(manager) => KeyValue::Redis(manager),
                Err(error) => {
                    tracing::warn!(error = %error, "key-value store unavailable");
                    KeyValue::Unavailable(Arc::from(error.to_string()))
                }
            }
        }

        fn memory_map(
            map: &Mutex<HashMap<String, Vec<u8>>>,
        ) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
            map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
            crate::metering::kv_async(async {
                match self {
                    KeyValue::Memory(map) => Ok(Self::memory_map(map).get(key).cloned()),
                    KeyValue::Redis(redis) => run(redis, redis::cmd("GET").arg(key)).await,
                    KeyValue::Unavailable(why) => Err(KvError(why.to_string())),
                }
            })
            .await
        }

        pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
            crate::metering::kv_async(async {
                match self {
                    KeyValue::Memory(map) => {
                        let mut map = Self::memory_map(map);
                        if map.len() >= MEMORY_CAPACITY && !map.contains_key(key) {
                            evict_cache_entries(&mut map);
                        }
                        map.insert(key.to_owned(), value.to_vec());
                        Ok(())
                    }
                    KeyValue::Redis(redis) => {
                        run(redis, redis::cmd("SET").arg(key).arg(value)).await
                    }
                    KeyValue::Unavailable(why) => Err(KvError(why.to_string())),
                }
            })
            .await
        }

        pub async fn delete(&self, key: &str) -> Result<(), KvError> {
            crate::metering::kv_async(async {
                match self {
                    KeyValue::Memory(map) => {
                        Self::memory_map(map).remove(key);
                        Ok(())
                    }
                    KeyValue::Redis(redis) => run(redis, redis::cmd("DEL").arg(key)).await,
                    KeyValue::Unavailable(why) => Err(KvError(why.to_string())),
                }
            })
            .await
        }

        /// Adds `delta` to the counter at `key` (absent: 0) atomically and returns the new value.
        pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
            crate::metering::kv_async(async {
                match self {
                    KeyValue::Memory(map) => {
                        let mut map = Self::memory_map(map);
                        let current = map
                            .get(key)
                            .and_then(|bytes| std::str::from_utf8(bytes).ok()?.parse::<i64>().ok())
                            .unwrap_or(0);
                        let next = current + delta;
                        map.insert(key.to_owned(), next.to_string().into_bytes());
                        Ok(next)
                    }
                    KeyValue::Redis(redis) => {
                        run(redis, redis::cmd("INCRBY").arg(key).arg(delta)).await
                    }
                    KeyValue::Unavailable(why) => Err(KvError(why.to_string())),
                }
            })
            .await
        }

        /// Adds `amount` to each of `counters` in `window` and answers their counts, in that order:
        /// one round trip on Redis, where a window's key expires `ttl_seconds` after it opened.
        pub async fn count_in_window(
            &self,
            counters: &[String],
            amount: u64,
            window: u64,
            ttl_seconds: u64,
        ) -> Result<Vec<u64>, KvError> {
            let KeyValue::Redis(redis) = self else {
                return super::count_each(self, counters, amount, window).await;
            };
            let keys: Vec<String> = counters
                .iter()
                .map(|counter| super::window_key(counter, window))
                .collect();
            let mut eval = redis::cmd("EVAL");
            eval.arg(super::COUNT_SCRIPT)
                .arg(keys.len())
                .arg(keys)
                .arg(ttl_seconds)
                .arg(amount);
            let counts: Vec<u64> = crate::metering::kv_async(run(redis, &eval)).await?;
            Ok(counts)
        }

        /// How many keys the store holds under `prefix` (tests check that counters are cleaned up).
        pub async fn count_prefix(&self, prefix: &str) -> Result<usize, KvError> {
            match self {
                KeyValue::Memory(map) => Ok(Self::memory_map(map)
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .count()),
                KeyValue::Redis(redis) => {
                    let keys: Vec<String> =
                        run(redis, redis::cmd("KEYS").arg(format!("{prefix}*"))).await?;
                    Ok(keys.len())
                }
                KeyValue::Unavailable(why) => Err(KvError(why.to_string())),
            }
        }
    }

    /// The in-process store holds at most this many keys before it drops cached entries.
    pub const MEMORY_CAPACITY: usize = 200_000;

    /// Drops a tenth of the cached entries (`c:...:{generation}`), never a generation counter or a
    /// rate-limit key: losing an entry is a miss, losing a counter could revive a stale entry.
    fn evict_cache_entries(map: &mut HashMap<String, Vec<u8>>) {
        let victims: Vec<String> = map
            .keys()
            .filter(|key| key.starts_with("c:") && !key.ends_with(":gen"))
            .take(MEMORY_CAPACITY / 10)
            .cloned()
            .collect();
        for key in victims {
            map.remove(&key);
        }
    }

    fn redis_error(error: redis::RedisError) -> KvError {
        KvError(error.to_string())
    }

    /// Sends one command on the shared connection.
    async fn run<T: redis::FromRedisValue>(
        redis: &redis::aio::ConnectionManager,
        command: &redis::Cmd,
    ) -> Result<T, KvError> {
        command
            .query_async(&mut redis.clone())
            .await
            .map_err(redis_error)
    }
}

#[cfg(target_arch = "wasm32")]
mod spin {
    use super::KvError;
    use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
    use spin_sdk::redis::{RedisParameter, RedisResult};
    use std::rc::Rc;

    /// The component's `default` store (declared in `spin.toml`; Redis in production through the
    /// runtime-config file), and the Redis that keeps rate-limit counters when one is configured.
    #[derive(Clone)]
    pub struct KeyValue {
        counters_redis: Option<String>,
    }

    thread_local! {
        /// The bucket, opened once per instance: Spin reuses an instance (and its handles) across
        /// requests, and opening costs a round trip of its own (Spin's Redis store pings on open).
        static BUCKET: std::cell::RefCell<Option<Rc<store::Bucket>>> =
            const { std::cell::RefCell::new(None) };
    }

    fn bucket() -> Result<Rc<store::Bucket>, KvError> {
        if let Some(bucket) = BUCKET.with(|cell| cell.borrow().clone()) {
            return Ok(bucket);
        }
        let bucket = Rc::new(store::open("default").map_err(kv_error)?);
        BUCKET.with(|cell| *cell.borrow_mut() = Some(bucket.clone()));
        Ok(bucket)
    }

    fn kv_error(error: store::Error) -> KvError {
        KvError(format!("{error:?}"))
    }

    impl KeyValue {
        /// The `default` store; rate-limit counters go to `redis_url` when given (one script per
        /// request instead of an increment per counter through `wasi:keyvalue`).
        pub fn spin_default(redis_url: Option<&str>) -> Self {
            KeyValue {
                counters_redis: redis_url.map(str::to_owned),
            }
        }

        /// Adds `amount` to each of `counters` in `window` and answers their counts, in that
        /// order: one script on Redis when `redis_url` is configured (a window's key expires
        /// `ttl_seconds` after it opened), else an increment per counter in the `default` store.
        pub async fn count_in_window(
            &self,
            counters: &[String],
            amount: u64,
            window: u64,
            ttl_seconds: u64,
        ) -> Result<Vec<u64>, KvError> {
            let Some(url) = &self.counters_redis else {
                return super::count_each(self, counters, amount, window).await;
            };
            let mut arguments = vec![
                RedisParameter::Binary(super::COUNT_SCRIPT.as_bytes().to_vec()),
                RedisParameter::Int64(i64::try_from(counters.len()).unwrap_or(0)),
            ];
            arguments.extend(counters.iter().map(|counter| {
                RedisParameter::Binary(super::window_key(counter, window).into_bytes())
            }));
            arguments.push(RedisParameter::Int64(
                i64::try_from(ttl_seconds).unwrap_or(i64::MAX),
            ));
            arguments.push(RedisParameter::Int64(
                i64::try_from(amount).unwrap_or(i64::MAX),
            ));
            let results = crate::edge::spin_redis::run(url, async |connection| {
                connection.execute("EVAL", arguments.clone()).await
            })
            .await
            .map_err(|error| KvError(format!("{error:?}")))?;
            // Spin flattens the script's array reply into its integers.
            let counts: Vec<u64> = results
                .iter()
                .filter_map(|result| match result {
                    RedisResult::Int64(count) => u64::try_from(*count).ok(),
                    _ => None,
                })
                .collect();
            if counts.len() == counters.len() {
                Ok(counts)
            } else {
                Err(KvError(format!("unexpected script reply: {results:?}")))
            }
        }

        pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
            crate::metering::kv(|| bucket()?.get(key).map_err(kv_error))
        }

        pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
            crate::metering::kv(|| bucket()?.set(key, value).map_err(kv_error))
        }

        pub async fn delete(&self, key: &str) -> Result<(), KvError> {
            crate::metering::kv(|| bucket()?.delete(key).map_err(kv_error))
        }

        pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
            crate::metering::kv(|| {
                let bucket = bucket()?;
                atomics::increment(&bucket, key, delta).map_err(kv_error)
            })
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_window_deletes_the_previous_one() {
        let kv = KeyValue::memory();
        let counters = ["rl:t:principal:p".to_owned()];
        let mut counts = Vec::new();
        for window in [10, 10, 11, 15] {
            counts.extend(kv.count_in_window(&counters, 1, window, 120).await.unwrap());
        }
        assert_eq!(counts, [1, 2, 1, 1]);
        // One live window and its pointer remain.
        assert_eq!(kv.count_prefix("rl:t:principal:p:").await.unwrap(), 2);
        assert_eq!(
            kv.get("rl:t:principal:p:15").await.unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(kv.get("rl:t:principal:p:10").await.unwrap(), None);
    }
}
