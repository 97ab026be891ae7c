//! Configuration, read once from Spin variables (natively: `SPIN_VARIABLE_*` environment variables,
//! the same names Spin's own environment provider reads) into one typed `Config`.

use anyhow::bail;
#[cfg(target_arch = "wasm32")]
use anyhow::Context;
use crm_domain::Region;
use serde::{Deserialize, Serialize};

/// Every variable the application reads: its name, its default (`None`: required) and its meaning.
/// `spin.toml` declares each one and the README documents each one; a test keeps the three in step.
pub const VARIABLES: &[Variable] = &[
    Variable::required("database_url", "PostgreSQL URL the application connects with, as the non-owner role `crm_app` (secret). Local: `postgres://crm_app@127.0.0.1:5432/crm?sslmode=disable`."),
    Variable::optional("database_host", "127.0.0.1:5432", "host:port of PostgreSQL; builds the components' `allowed_outbound_hosts` (`postgres://{{ database_host }}`). Not read by the code."),
    Variable::optional("jwt_issuer", "crm-dev", "Required `iss` claim of every token."),
    Variable::optional("jwt_audience", "crm-api", "Required `aud` claim of every token."),
    Variable::optional("jwt_hs256_secret", "", "Development HS256 secret (at least 32 bytes, secret). Empty disables HS256, as production should."),
    Variable::optional("jwt_public_keys", "", "Production verification keys: a JWKS document (`{\"keys\": [...]}`, RSA/EC P-256/Ed25519) or a JSON array of `{\"kid\", \"alg\", \"pem\"}`. Selected by the token's `kid`."),
    Variable::optional("jwt_leeway_seconds", "30", "Clock skew tolerated on `exp`/`nbf`, at most 60."),
    Variable::optional("default_phone_region", "US", "Region for numbers without a country code when a tenant sets none (ISO 3166-1 alpha-2)."),
    Variable::optional("rate_limit_tenant_per_minute", "6000", "Requests per minute per tenant, all routes (a tenant may override it: settings.rate_limits)."),
    Variable::optional("rate_limit_principal_per_minute", "1200", "Requests per minute per principal (token `sub`) within a tenant."),
    Variable::optional("rate_limit_expensive_per_minute", "6000", "Operations per minute per principal on expensive routes: a search or a page of the contacts list is one, a batch one per operation."),
    Variable::optional("tenant_cache_seconds", "60", "How long an instance trusts what it read of a tenant (exists, suspended, rate-limit overrides) before reading it again; a suspension applies within this time. `0` reads it on every request."),
    Variable::optional("idempotency_lease_seconds", "60", "How long a claimed `Idempotency-Key` stays locked without its request renewing it (a running request renews it every third of this): a retry after a crash waits at most this long. At least 3."),
    Variable::optional("rate_limit_enabled", "true", "`false` turns rate limiting off (benchmarks, trusted internal deployments)."),
    Variable::optional("cache_enabled", "false", "`true` turns the read cache on: worth it with Redis as the store and reads that repeat (docs/adr/0009-fast-on-spin.md); a miss costs more than no cache, and Spin's built-in store costs more than the database."),
    Variable::optional("server_timing", "false", "`true` adds a `Server-Timing` header to every response: database calls and checkouts, key-value operations, and the time in each (benchmarks, diagnosis)."),
    Variable::optional("merge_undo_days", "30", "How long a contact merge can be undone (`POST /api/v1/merges/{id}/undo`); the merge keeps the merged contacts' snapshots until then. At least 1."),
    Variable::optional("max_body_bytes", "1048576", "Largest request body accepted; larger ones answer 413."),
    Variable::optional("max_token_bytes", "8192", "Longest bearer token accepted; longer ones answer 401."),
    Variable::optional("jwt_max_lifetime_seconds", "86400", "Longest lifetime a token may have, from `iat` (or from now without one) to `exp`; a token without `exp` or living longer answers 401."),
    Variable::optional("operator_token", "", "Bearer token of operator-only routes (`POST /api/v1/webhooks/dispatch`), at least 32 bytes (secret). Empty disables them."),
    Variable::optional("redis_url", "redis://127.0.0.1:6379", "Redis that carries webhook dispatcher wake-ups: mutations publish on it, the `webhook-dispatcher` component's Redis trigger subscribes to it. On Spin it also keeps the rate-limit counters (one script per request). `none`: no wake-ups (deliveries wait for the periodic dispatch; an empty value means the default, as for every variable)."),
    Variable::optional("redis_host", "127.0.0.1:6379", "host:port of `redis_url`; builds `allowed_outbound_hosts` (`redis://{{ redis_host }}`). Not read by the code."),
    Variable::optional("webhook_local_hosts", "", "Comma-separated hosts webhooks may reach over plain http and at loopback/private addresses: local testing only, empty in production."),
    Variable::optional("webhook_timeout_seconds", "10", "Per-attempt timeout of a webhook delivery (connect and first byte)."),
    Variable::optional("webhook_concurrency", "8", "Deliveries one dispatcher sends at once."),
    Variable::optional("webhook_retry_schedule", "0,5,300,1800,7200,18000,36000,50400,72000,86400", "Seconds before each delivery attempt (Standard Webhooks schedule; up to +20% jitter). After the last, a dead letter."),
    Variable::optional("webhook_disable_after_seconds", "432000", "A subscription whose deliveries have failed for this long (no success since) is disabled, with a `webhook.disabled` event."),
];

pub struct Variable {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub meaning: &'static str,
}

impl Variable {
    const fn required(name: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            default: None,
            meaning,
        }
    }

    const fn optional(name: &'static str, default: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            default: Some(default),
            meaning,
        }
    }
}

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub jwt: JwtConfig,
    pub default_phone_region: Region,
    pub max_body_bytes: usize,
    /// `None` when rate limiting is turned off.
    pub rate_limits: Option<RateLimits>,
    pub cache_enabled: bool,
    /// How long an instance trusts what it read of a tenant.
    pub tenant_cache_seconds: u64,
    /// How long an `Idempotency-Key` claim holds without renewal.
    pub idempotency_lease: std::time::Duration,
    /// How long a contact merge can be undone, in days.
    pub merge_undo_days: u64,
    /// Report each request's database and key-value cost in `Server-Timing`.
    pub server_timing: bool,
    /// The bearer token of operator routes; `None` disables them.
    pub operator_token: Option<String>,
    /// Where wake-ups for the webhook dispatcher are published; `None`: nowhere.
    pub redis_url: Option<String>,
    pub webhooks: WebhookConfig,
}

/// How webhooks are delivered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub local_hosts: Vec<String>,
    pub timeout: std::time::Duration,
    pub concurrency: usize,
    /// Seconds before each attempt.
    pub retry_schedule: Vec<u64>,
    pub disable_after_seconds: u64,
}

#[derive(Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub hs256_secret: Option<String>,
    pub public_keys: Option<String>,
    pub leeway_seconds: u64,
    pub max_token_bytes: usize,
    pub max_lifetime_seconds: u64,
}

impl std::fmt::Debug for Config {
    // Hand-written so that the database URL and secrets can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("jwt_issuer", &self.jwt.issuer)
            .field("jwt_audience", &self.jwt.audience)
            .field(
                "default_phone_region",
                &self.default_phone_region.to_string(),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Builds the configuration from a lookup of raw variable values (`None` or empty: unset).
    ///
    /// # Errors
    /// Names every variable that is missing or malformed, in one message.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let values = Values::new(lookup);
        let mut problems = Vec::new();
        let jwt = JwtConfig::read(&values, &mut problems);
        let max_body_bytes = values.number("max_body_bytes", &mut problems) as usize;
        let rate_limits = RateLimits {
            tenant_per_minute: values.number("rate_limit_tenant_per_minute", &mut problems),
            principal_per_minute: values.number("rate_limit_principal_per_minute", &mut problems),
            expensive_per_minute: values.number("rate_limit_expensive_per_minute", &mut problems),
        };
        let rate_limits = values
            .flag("rate_limit_enabled", &mut problems)
            .then_some(rate_limits);
        let cache_enabled = values.flag("cache_enabled", &mut problems);
        let tenant_cache_seconds = values.number("tenant_cache_seconds", &mut problems);
        let idempotency_lease_seconds = values.number("idempotency_lease_seconds", &mut problems);
        if idempotency_lease_seconds < 3 {
            problems.push("idempotency_lease_seconds must be at least 3".into());
        }
        let merge_undo_days = values.number("merge_undo_days", &mut problems);
        if merge_undo_days < 1 {
            problems.push("merge_undo_days must be at least 1".into());
        }
        let server_timing = values.flag("server_timing", &mut problems);
        let operator_token = values.get("operator_token");
        if operator_token.as_ref().is_some_and(|t| t.len() < 32) {
            problems.push("operator_token must be at least 32 bytes".into());
        }
        let webhooks = WebhookConfig::read(&values, &mut problems);
        let database_url = values.get("database_url").unwrap_or_else(|| {
            problems.push("database_url is required".into());
            String::new()
        });
        let region_raw = values.get("default_phone_region").unwrap_or_default();
        let default_phone_region = Region::parse(&region_raw).unwrap_or_else(|| {
            problems.push(format!(
                "default_phone_region {region_raw:?} is not a known region"
            ));
            Region::parse("US").expect("US is a known region")
        });
        if !problems.is_empty() {
            bail!("incomplete configuration: {}", problems.join("; "));
        }
        Ok(Self {
            database_url,
            jwt,
            default_phone_region,
            max_body_bytes,
            rate_limits,
            cache_enabled,
            tenant_cache_seconds,
            idempotency_lease: std::time::Duration::from_secs(idempotency_lease_seconds),
            merge_undo_days,
            server_timing,
            operator_token,
            redis_url: values.get("redis_url").filter(|url| url.trim() != "none"),
            webhooks,
        })
    }

    /// Natively: from `SPIN_VARIABLE_<NAME>` environment variables.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(env_name(name)).ok())
    }

    /// On Spin: from the component's variables.
    #[cfg(target_arch = "wasm32")]
    pub async fn from_spin_variables() -> anyhow::Result<Self> {
        let mut values = std::collections::HashMap::new();
        for variable in VARIABLES {
            if let Ok(value) = spin_sdk::variables::get(variable.name).await {
                values.insert(variable.name, value);
            }
        }
        Self::from_lookup(|name| values.get(name).cloned()).context("reading Spin variables")
    }
}

impl WebhookConfig {
    fn read(values: &Values<impl Fn(&str) -> Option<String>>, problems: &mut Vec<String>) -> Self {
        let raw_schedule = values.get("webhook_retry_schedule").unwrap_or_default();
        let retry_schedule =
            crm_domain::webhook::parse_schedule(&raw_schedule).unwrap_or_else(|| {
                problems.push(format!(
                    "webhook_retry_schedule must be comma-separated seconds, got {raw_schedule:?}"
                ));
                crm_domain::webhook::DEFAULT_SCHEDULE.to_vec()
            });
        let concurrency = values.number("webhook_concurrency", problems).max(1) as usize;
        Self {
            local_hosts: values
                .get("webhook_local_hosts")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            timeout: std::time::Duration::from_secs(
                values.number("webhook_timeout_seconds", problems).max(1),
            ),
            concurrency,
            retry_schedule,
            disable_after_seconds: values.number("webhook_disable_after_seconds", problems),
        }
    }

    /// The URL rules of subscriptions and deliveries.
    pub fn url_policy(&self) -> crm_domain::webhook::UrlPolicy {
        crm_domain::webhook::UrlPolicy::new(self.local_hosts.iter().cloned())
    }
}

impl JwtConfig {
    /// Only the token settings (what `crm token` needs), from `SPIN_VARIABLE_*` variables.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> anyhow::Result<Self> {
        let values = Values::new(|name| std::env::var(env_name(name)).ok());
        let mut problems = Vec::new();
        let jwt = Self::read(&values, &mut problems);
        if !problems.is_empty() {
            bail!("incomplete configuration: {}", problems.join("; "));
        }
        Ok(jwt)
    }

    fn read(values: &Values<impl Fn(&str) -> Option<String>>, problems: &mut Vec<String>) -> Self {
        let leeway_seconds = values.number("jwt_leeway_seconds", problems);
        if leeway_seconds > 60 {
            problems.push("jwt_leeway_seconds must be at most 60".into());
        }
        let max_token_bytes = values.number("max_token_bytes", problems) as usize;
        let max_lifetime_seconds = values.number("jwt_max_lifetime_seconds", problems);
        let hs256_secret = values.get("jwt_hs256_secret");
        if hs256_secret.as_ref().is_some_and(|s| s.len() < 32) {
            problems.push("jwt_hs256_secret must be at least 32 bytes".into());
        }
        let public_keys = values.get("jwt_public_keys");
        if hs256_secret.is_none() && public_keys.is_none() {
            problems
                .push("set jwt_hs256_secret (development) or jwt_public_keys (production)".into());
        }
        Self {
            issuer: values.get("jwt_issuer").unwrap_or_default(),
            audience: values.get("jwt_audience").unwrap_or_default(),
            hs256_secret,
            public_keys,
            leeway_seconds,
            max_token_bytes,
            max_lifetime_seconds,
        }
    }
}

/// Raw variable values with the defaults of [`VARIABLES`] applied; empty counts as unset.
struct Values<F>(F);

impl<F: Fn(&str) -> Option<String>> Values<F> {
    fn new(lookup: F) -> Self {
        Self(lookup)
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty()).or_else(|| {
            VARIABLES
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.default)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
        })
    }

    fn flag(&self, name: &str, problems: &mut Vec<String>) -> bool {
        match self.get(name).as_deref().map(str::trim) {
            Some("true") | None => true,
            Some("false") => false,
            Some(other) => {
                problems.push(format!("{name} must be true or false, got {other:?}"));
                true
            }
        }
    }

    fn number(&self, name: &str, problems: &mut Vec<String>) -> u64 {
        let raw = self.get(name).unwrap_or_default();
        raw.trim().parse().unwrap_or_else(|_| {
            problems.push(format!("{name} must be a whole number, got {raw:?}"));
            0
        })
    }
}

/// The environment variable that carries a Spin variable natively (`SPIN_VARIABLE_DATABASE_URL`).
pub fn env_name(variable: &str) -> String {
    format!("SPIN_VARIABLE_{}", variable.to_ascii_uppercase())
}

/// Requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub tenant_per_minute: u64,
    pub principal_per_minute: u64,
    pub expensive_per_minute: u64,
}

/// A tenant's overrides of the rate limits, as stored in `tenants.settings.rate_limits`; absent
/// members keep the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub tenant_per_minute: Option<u64>,
    pub principal_per_minute: Option<u64>,
    pub expensive_per_minute: Option<u64>,
}

impl RateLimits {
    /// These limits with a tenant's `overrides`.
    pub fn with(self, overrides: Overrides) -> Self {
        Self {
            tenant_per_minute: overrides
                .tenant_per_minute
                .unwrap_or(self.tenant_per_minute),
            principal_per_minute: overrides
                .principal_per_minute
                .unwrap_or(self.principal_per_minute),
            expensive_per_minute: overrides
                .expensive_per_minute
                .unwrap_or(self.expensive_per_minute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn applies_defaults() {
        let config = Config::from_lookup(lookup(&[
            ("database_url", "postgres://crm_app@db/crm"),
            ("jwt_hs256_secret", &"s".repeat(32)),
        ]))
        .unwrap();
        assert_eq!(config.jwt.issuer, "crm-dev");
        assert_eq!(config.default_phone_region.to_string(), "US");
        assert_eq!(config.max_body_bytes, 1_048_576);
        // The read cache pays only on some stores: off unless a deployment turns it on.
        assert!(!config.cache_enabled);
        assert!(!config.server_timing);
    }

    #[test]
    fn names_every_problem_at_once() {
        let error = Config::from_lookup(lookup(&[
            ("jwt_hs256_secret", "short"),
            ("default_phone_region", "XX"),
            ("jwt_leeway_seconds", "600"),
        ]))
        .unwrap_err()
        .to_string();
        for expected in [
            "database_url",
            "jwt_hs256_secret",
            "default_phone_region",
            "jwt_leeway_seconds",
        ] {
            assert!(error.contains(expected), "{expected} missing from {error}");
        }
    }

    #[test]
    fn redis_wakeups_are_turned_off_by_none_not_by_an_empty_value() {
        let with = |value: &str| {
            Config::from_lookup(lookup(&[
                ("database_url", "postgres://crm_app@db/crm"),
                ("jwt_hs256_secret", &"s".repeat(32)),
                ("redis_url", value),
            ]))
            .unwrap()
            .redis_url
        };
        assert_eq!(with("none"), None);
        assert_eq!(with("").as_deref(), Some("redis://127.0.0.1:6379"));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let config = Config::from_lookup(lookup(&[
            ("database_url", "postgres://crm_app:hunter2@db/crm"),
            ("jwt_hs256_secret", "supersecretsupersecretsupersecret"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("supersecret"));
    }
}
