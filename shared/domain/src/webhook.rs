//! Webhook rules: what a subscription may point at and listen to, which addresses a delivery may
//! reach, and when a failed delivery is tried again.

use crate::error::{FieldError, ValidationErrors};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Every event type the API emits. Subscriptions name these, a family (`contact.*`) or `*`.
pub const EVENT_TYPES: &[&str] = &[
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "contact.restored",
    "contact.erased",
    "contact.merged",
    "contact.merged_into",
    "contact.unmerged",
    "contact.tags_changed",
    "contact.preferences_changed",
    "call.logged",
    "call.updated",
    "call.deleted",
    "note.created",
    "note.updated",
    "note.deleted",
    "tag.created",
    "tag.updated",
    "tag.deleted",
    "custom_field.created",
    "custom_field.updated",
    "list.created",
    "list.updated",
    "list.deleted",
    "list.member_added",
    "list.member_removed",
    "consent.recorded",
    "export.created",
    "export.completed",
    "import.created",
    "import.started",
    "import.completed",
    "import.failed",
    "import.cancelled",
    "relationship.created",
    "relationship.deleted",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.disabled",
    "webhook.ping",
];

/// What a delivery can be: waiting for an attempt, delivered, or a dead letter.
pub const DELIVERY_STATUSES: &[&str] = &["pending", "succeeded", "dead"];

/// How long a rotated-out signing secret stays valid (and is signed with) after a rotation.
pub const SECRET_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

pub const MAX_URL_LENGTH: usize = 2048;
pub const MAX_DESCRIPTION_LENGTH: usize = 500;
pub const MAX_EVENT_TYPES: usize = 50;
/// Subscriptions per tenant: each event fans out to every matching one.
pub const MAX_SUBSCRIPTIONS: i64 = 100;

/// A subscription as a client sends it (creation, or the result of a merge patch).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDraft {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

/// A valid subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
}

impl NewSubscription {
    /// Validates `draft`, checking its URL against `policy`. Host names are not resolved here: the
    /// caller checks what they resolve to (natively) or Spin's network blocking does (on Spin).
    pub fn parse(draft: SubscriptionDraft, policy: &UrlPolicy) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let url = errors.take(
            policy
                .check(&draft.url)
                .map_err(|problem| problem.at("/url")),
        );
        let event_types = errors.take(parse_event_types(&draft.event_types));
        let description = draft
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LENGTH)
        {
            errors.push(FieldError::new(
                "/description",
                "too_long",
                format!("must be at most {MAX_DESCRIPTION_LENGTH} characters"),
            ));
        }
        errors.into_result(|| Self {
            url: url.map(|u| u.url).unwrap_or_default(),
            event_types: event_types.unwrap_or_default(),
            description,
            active: draft.active,
        })
    }
}

fn parse_event_types(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "/event_types",
            "required",
            "name at least one event type, a family such as `contact.*`, or `*`",
        ));
    }
    if raw.len() > MAX_EVENT_TYPES {
        return Err(FieldError::new(
            "/event_types",
            "too_many",
            format!("at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    let mut types: Vec<String> = Vec::with_capacity(raw.len());
    for (index, pattern) in raw.iter().enumerate() {
        let pattern = pattern.trim();
        if !is_known_pattern(pattern) {
            return Err(FieldError::new(
                format!("/event_types/{index}"),
                "unknown_event_type",
                format!(
                    "{pattern:?} is not an event type, a family (`contact.*`) or `*`; known types: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !types.iter().any(|t| t == pattern) {
            types.push(pattern.to_owned());
        }
    }
    Ok(types)
}

fn is_known_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(family) => EVENT_TYPES
            .iter()
            .any(|t| t.split('.').next() == Some(family)),
        None => EVENT_TYPES.contains(&pattern),
    }
}

/// Whether a subscription listening to `patterns` receives `event_type` (the rule the fan-out SQL
/// applies).
pub fn matches(patterns: &[String], event_type: &str) -> bool {
    let family = event_type.split('.').next().unwrap_or_default();
    patterns
        .iter()
        .any(|p| p == "*" || p == event_type || p.strip_suffix(".*").is_some_and(|f| f == family))
}

/// Where webhooks may be sent: https anywhere public; plain http, and loopback or private addresses,
/// only to the hosts an operator lists for local testing.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    local_hosts: Vec<String>,
}

/// A URL that passed [`UrlPolicy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    /// Whether the operator allow-listed the host (its addresses are then not checked).
    pub local: bool,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlProblem {
    pub code: &'static str,
    pub message: String,
}

impl UrlProblem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn at(self, field: &str) -> FieldError {
        FieldError::new(field, self.code, self.message)
    }
}

/// Host names that name the machine itself or a cloud metadata service, whatever DNS says.
const FORBIDDEN_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Domains that are never public (RFC 6761, RFC 6762, RFC 8375 and common private practice): any
/// name under them is refused, whatever DNS says.
const PRIVATE_DOMAINS: &[&str] = &[
    "localhost",
    "localdomain",
    "local",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "corp",
    "private",
];

/// Whether `host` (lower-case, no trailing dot) can only name something off the public internet: a
/// name of the machine or a metadata service, a name under a private domain, or a single label
/// (which resolves through the machine's search domains, if at all).
fn is_private_name(host: &str) -> bool {
    FORBIDDEN_NAMES.contains(&host)
        || !host.contains('.')
        || PRIVATE_DOMAINS.iter().any(|domain| {
            host.strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.'))
        })
}

impl UrlPolicy {
    /// `local_hosts`: host names or IP literals (lower-case, no port) exempt from the https and
    /// address rules.
    pub fn new(local_hosts: impl IntoIterator<Item = String>) -> Self {
        Self {
            local_hosts: local_hosts
                .into_iter()
                .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    pub fn is_local(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.local_hosts.contains(&host)
    }

    /// Checks everything about `raw` that needs no DNS: scheme, credentials, host names and IP
    /// literals.
    pub fn check(&self, raw: &str) -> Result<Endpoint, UrlProblem> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(UrlProblem::new("required", "a URL is required"));
        }
        if raw.len() > MAX_URL_LENGTH {
            return Err(UrlProblem::new(
                "too_long",
                format!("must be at most {MAX_URL_LENGTH} characters"),
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| UrlProblem::new("invalid_url", format!("not an absolute URL: {e}")))?;
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(UrlProblem::new("invalid_url", "the URL has no host")),
        };
        let local = self.is_local(&host);
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            "http" => {
                return Err(UrlProblem::new(
                    "insecure_url",
                    "must use https (plain http only to hosts the operator allows for testing)",
                ))
            }
            other => {
                return Err(UrlProblem::new(
                    "invalid_url",
                    format!("scheme {other:?} is not http(s)"),
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlProblem::new(
                "invalid_url",
                "credentials in the URL are not accepted; verify deliveries by their signature",
            ));
        }
        if url.fragment().is_some() {
            return Err(UrlProblem::new("invalid_url", "a URL fragment is not sent"));
        }
        if !local {
            if let Ok(ip) = host.parse::<IpAddr>() {
                check_address(ip)?;
            } else if is_private_name(&host) {
                return Err(forbidden(&host));
            }
        }
        Ok(Endpoint {
            url: url.to_string(),
            host,
            local,
        })
    }

    /// Checks one address a host name resolved to (skipped for allow-listed hosts).
    pub fn check_resolved(&self, endpoint: &Endpoint, ip: IpAddr) -> Result<(), UrlProblem> {
        if endpoint.local {
            Ok(())
        } else {
            check_address(ip).map_err(|_| {
                UrlProblem::new(
                    "forbidden_address",
                    format!(
                        "{} resolves to {ip}, a loopback, private, link-local, multicast or metadata address",
                        endpoint.host
                    ),
                )
            })
        }
    }
}

fn forbidden(what: &str) -> UrlProblem {
    UrlProblem::new(
        "forbidden_address",
        format!("{what} is a loopback, private, link-local, multicast or metadata address"),
    )
}

fn check_address(ip: IpAddr) -> Result<(), UrlProblem> {
    if is_forbidden_address(ip) {
        Err(forbidden(&ip.to_string()))
    } else {
        Ok(())
    }
}

/// Loopback, private, shared (CGNAT), link-local (and so cloud metadata), multicast, broadcast,
/// unspecified, documentation and other reserved addresses: nothing a public webhook lives at.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_v4(v4);
            }
            let segments = v6.segments();
            let o = v6.octets();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits; so did the
            // deprecated IPv4-compatible form (::/96).
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6] {
                return v6.is_loopback()
                    || v6.is_unspecified()
                    || is_forbidden_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            // 6to4 (2002::/16) embeds one in bits 16-48.
            if segments[0] == 0x2002 && is_forbidden_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5])) {
                return true;
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
                || segments[0] == 0x3fff && segments[1] < 0x1000 // documentation 3fff::/20
                || segments[..4] == [0x100, 0, 0, 0] // discard-only 100::/64
                || segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 // local NAT64
                || v6 == Ipv6Addr::from([0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254])
        }
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// The default retry schedule (Standard Webhooks): the delay before each attempt, the first
/// immediate. After the last attempt fails the delivery is a dead letter.
pub const DEFAULT_SCHEDULE: &[u64] = &[0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this long.
    After(Duration),
    /// The schedule is exhausted: a dead letter.
    GiveUp,
}

/// After `attempts` attempts (counting the one that just failed), when to try again: the next step
/// of `schedule` (seconds) stretched by `jitter` (a fraction in 0..1, up to +20%), or later when the
/// receiver asked for it with `Retry-After` (capped at one day).
pub fn next_retry(
    schedule: &[u64],
    attempts: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Retry {
    let Some(&delay) = schedule.get(attempts as usize) else {
        return Retry::GiveUp;
    };
    let planned = Duration::from_secs_f64(delay as f64 * (1.0 + 0.2 * jitter.clamp(0.0, 1.0)));
    let asked = retry_after
        .unwrap_or_default()
        .min(Duration::from_secs(86400));
    Retry::After(planned.max(asked))
}

/// Parses a retry schedule: comma-separated seconds, at least one step.
pub fn parse_schedule(raw: &str) -> Option<Vec<u64>> {
    let steps: Option<Vec<u64>> = raw
        .split(',')
        .map(|step| step.trim().parse().ok())
        .collect();
    steps.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> UrlPolicy {
        UrlPolicy::new(["127.0.0.1".to_owned(), "receiver.test".to_owned()])
    }

    #[test]
    fn https_public_urls_pass_and_are_normalised() {
        let endpoint = UrlPolicy::default()
            .check(" https://Hooks.Example.com/in?x=1 ")
            .unwrap();
        assert_eq!(endpoint.url, "https://hooks.example.com/in?x=1");
        assert!(!endpoint.local);
    }

    #[test]
    fn plain_http_only_to_allowed_hosts() {
        let error = UrlPolicy::default()
            .check("http://hooks.example.com/in")
            .unwrap_err();
        assert_eq!(error.code, "insecure_url");
        assert!(policy().check("http://127.0.0.1:9000/in").unwrap().local);
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://2130706433/",
            "https://198.18.0.1/",
            "https://240.0.0.1/",
            "https://255.255.255.255/",
            "https://[::a00:1]/",
            "https://[2002:a00:1::1]/",
            "https://[64:ff9b:1::1]/",
            "https://[100::1]/",
            "https://localhost.localdomain/",
            "https://db.localdomain/",
            "https://printer.local/",
            "https://router.home.arpa/",
            "https://intranet/",
            "https://ip6-localhost/",
        ] {
            let error = UrlPolicy::default().check(url).unwrap_err();
            assert_eq!(error.code, "forbidden_address", "{url}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_forbidden_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn other_schemes_and_credentials_are_refused() {
        for url in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "not a url",
            "",
        ] {
            assert!(UrlPolicy::default().check(url).is_err(), "{url}");
        }
    }

    #[test]
    fn event_types_accept_types_families_and_everything() {
        let draft = |types: &[&str]| SubscriptionDraft {
            url: "https://example.com/hook".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        let parsed = NewSubscription::parse(
            draft(&["contact.*", "call.logged", "*", "call.logged"]),
            &policy(),
        )
        .unwrap();
        assert_eq!(parsed.event_types, ["contact.*", "call.logged", "*"]);
        let error =
            NewSubscription::parse(draft(&["contact.created", "contact.creatd"]), &policy())
                .unwrap_err();
        assert_eq!(error.0[0].field, "/event_types/1");
        assert!(NewSubscription::parse(draft(&["deal.*"]), &policy()).is_err());
        assert!(NewSubscription::parse(draft(&[]), &policy()).is_err());
    }

    #[test]
    fn matching_follows_patterns() {
        let patterns = vec!["contact.*".to_owned(), "call.logged".to_owned()];
        assert!(matches(&patterns, "contact.updated"));
        assert!(matches(&patterns, "call.logged"));
        assert!(!matches(&patterns, "call.deleted"));
        assert!(matches(&["*".to_owned()], "webhook.disabled"));
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_and_retry_after() {
        let schedule = DEFAULT_SCHEDULE;
        assert_eq!(
            next_retry(schedule, 1, None, 0.0),
            Retry::After(Duration::from_secs(5))
        );
        assert_eq!(
            next_retry(schedule, 2, None, 1.0),
            Retry::After(Duration::from_secs(360))
        );
        assert_eq!(
            next_retry(schedule, 1, Some(Duration::from_secs(120)), 0.0),
            Retry::After(Duration::from_secs(120))
        );
        assert_eq!(
            next_retry(schedule, 9, None, 0.5),
            Retry::After(Duration::from_secs(86400 + 8640))
        );
        assert_eq!(next_retry(schedule, 10, None, 0.0), Retry::GiveUp);
    }

    #[test]
    fn schedules_parse() {
        assert_eq!(parse_schedule("0, 1,2").unwrap(), vec![0, 1, 2]);
        assert!(parse_schedule("0,x").is_none());
        assert!(parse_schedule("").is_none());
    }
}
