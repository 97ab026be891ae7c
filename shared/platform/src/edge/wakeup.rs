//! Wake-ups for background workers. After a mutation that wrote an outbox event commits, the
//! request publishes a wake-up on the webhook channel; whatever dispatches (the `webhook-dispatcher`
//! component's Redis trigger on Spin, the native server's dispatcher loop) fans the outbox out and
//! sends what is due. Starting an import or an export job (and a worker pass that leaves work
//! behind) publishes on the job channel, which runs the job worker. A wake-up is only a hint: the work is already
//! in the database, and the periodic passes find it when no wake-up arrives (Redis down, a message
//! lost), so a failed publish delays work and never loses it.

/// The Redis channel webhook wake-ups travel on.
pub const CHANNEL: &str = "crm-webhook-dispatch";
/// The Redis channel job wake-ups (imports, export jobs) travel on.
pub const JOB_CHANNEL: &str = "crm-jobs";

#[cfg(not(target_arch = "wasm32"))]
pub use native::Wakeup;
#[cfg(target_arch = "wasm32")]
pub use spin::Wakeup;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::sync::Arc;
    use tokio::sync::{Notify, OnceCell};

    /// Natively a wake-up is published both in-process (to this server's own dispatcher loop) and
    /// on Redis (to every other dispatcher), the latter in the background: a request never waits
    /// for Redis.
    #[derive(Clone)]
    pub struct Wakeup {
        local: Arc<Notify>,
        redis: Option<Arc<Redis>>,
    }

    struct Redis {
        channel: &'static str,
        client: redis::Client,
        connection: OnceCell<redis::aio::ConnectionManager>,
        /// Whether the last publish failed: an outage is logged once, not per mutation.
        failing: std::sync::atomic::AtomicBool,
    }

    impl Wakeup {
        /// Publishes on `channel` of `redis_url` when given (an unparsable URL is reported and
        /// skipped).
        pub fn new(redis_url: Option<&str>, channel: &'static str) -> Self {
            let redis = redis_url.and_then(|url| match redis::Client::open(url) {
                Ok(client) => Some(Arc::new(Redis {
                    channel,
                    client,
                    connection: OnceCell::new(),
                    failing: Default::default(),
                })),
                Err(error) => {
                    tracing::warn!(error = %error, "redis_url is not usable; no wake-ups over Redis");
                    None
                }
            });
            Self {
                local: Arc::default(),
                redis,
            }
        }

        /// What this server's dispatcher loop waits on.
        pub fn local(&self) -> Arc<Notify> {
            self.local.clone()
        }

        pub async fn publish(&self) {
            self.local.notify_one();
            if let Some(redis) = self.redis.clone() {
                tokio::spawn(async move {
                    use std::sync::atomic::Ordering;
                    match redis.publish().await {
                        Ok(()) => redis.failing.store(false, Ordering::Relaxed),
                        Err(error) => {
                            if !redis.failing.swap(true, Ordering::Relaxed) {
                                tracing::warn!(error = %error, channel = redis.channel, "wake-ups not published until Redis answers; work waits for the periodic passes");
                            }
                        }
                    }
                });
            }
        }
    }

    impl Redis {
        async fn publish(&self) -> redis::RedisResult<()> {
            let connection = self
                .connection
                .get_or_try_init(|| async {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(std::time::Duration::from_secs(1))
                        .set_response_timeout(std::time::Duration::from_secs(1))
                        .set_number_of_retries(1);
                    redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
                        .await
                })
                .await?;
            redis::cmd("PUBLISH")
                .arg(self.channel)
                .arg("wake")
                .query_async::<i64>(&mut connection.clone())
                .await
                .map(|_| ())
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod spin {
    /// On Spin a wake-up is a publish through Spin's outbound Redis, on the instance's connection.
    #[derive(Clone)]
    pub struct Wakeup {
        redis_url: Option<String>,
        channel: &'static str,
    }

    impl Wakeup {
        pub fn new(redis_url: Option<&str>, channel: &'static str) -> Self {
            Self {
                redis_url: redis_url.map(str::to_owned),
                channel,
            }
        }

        pub async fn publish(&self) {
            let Some(url) = &self.redis_url else {
                return;
            };
            let published = crate::edge::spin_redis::run(url, async |connection| {
                connection.publish(self.channel, b"wake").await
            })
            .await;
            if let Err(error) = published {
                tracing::warn!(error = ?error, channel = self.channel, "wake-up not published");
            }
        }
    }
}
