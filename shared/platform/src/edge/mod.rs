//! What sits between a request and the outside world besides the database: the key-value store, the
//! read cache on it, rate limiting, and the webhook dispatcher's wake-ups.

pub mod cache;
pub mod kv;
pub mod ratelimit;
#[cfg(target_arch = "wasm32")]
mod spin_redis;
pub mod wakeup;
