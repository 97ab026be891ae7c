//! One HTTP attempt: POST, no redirects followed, a per-attempt timeout. Natively reqwest, whose
//! resolver refuses the addresses the URL policy forbids (so a host name that resolves, or later
//! re-resolves, to a private address is never connected to); on Spin, outbound HTTP, which never
//! follows redirects and whose runtime config blocks private networks (`block_networks`).

use crm_domain::webhook::{Endpoint, UrlPolicy, UrlProblem};
use std::time::Duration;

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `Retry-After`, in seconds or as an HTTP date.
    pub retry_after: Option<Duration>,
}

/// Why an attempt got no HTTP answer, as an attempt records it: a category, never the network's own
/// words, so that the delivery log cannot serve to map networks (which hosts exist, which ports
/// answer). A receiver that answered is recorded by its status instead ([`HTTP_STATUS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within `webhook_timeout_seconds` (connecting, or waiting for the response).
    Timeout,
    /// The receiver's host refused the connection.
    Refused,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The address is not one webhooks may reach (the URL policy, or the host's network blocking).
    Blocked,
    /// The host name did not resolve.
    Dns,
    /// The connection failed or broke off otherwise, or the answer was not HTTP.
    Connection,
}

/// The recorded error of an attempt the receiver answered with a status other than 2xx.
pub const HTTP_STATUS: &str = "http_status";

impl Failure {
    /// The category as recorded and shown (`error` of an attempt).
    pub fn code(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Refused => "connection_refused",
            Failure::Tls => "tls_error",
            Failure::Blocked => "blocked_address",
            Failure::Dns => "dns_error",
            Failure::Connection => "connection_error",
        }
    }
}

/// The parts of a receiver's answer a delivery acts on.
fn reply(status: u16, headers: &http::HeaderMap) -> Reply {
    Reply {
        status,
        retry_after: headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after),
    }
}

/// Reads a `Retry-After` value.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = (date.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(seconds as u64))
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{check_resolution, Sender};
#[cfg(target_arch = "wasm32")]
pub use spin::{check_resolution, Sender};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;

    pub struct Sender {
        client: reqwest::Client,
    }

    /// Resolves host names and drops every address the policy forbids; a name left with none fails.
    struct GuardedResolver {
        policy: Arc<UrlPolicy>,
    }

    /// Why the resolver gave a connection no address: the category an attempt records.
    #[derive(Debug)]
    struct Unresolved(Failure);

    impl std::fmt::Display for Unresolved {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0.code())
        }
    }

    impl std::error::Error for Unresolved {}

    impl reqwest::dns::Resolve for GuardedResolver {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let policy = self.policy.clone();
            let host = name.as_str().to_owned();
            Box::pin(async move {
                let addresses = allowed_addresses(&policy, &host).await?;
                let addrs: reqwest::dns::Addrs = Box::new(addresses.into_iter());
                Ok(addrs)
            })
        }
    }

    async fn allowed_addresses(
        policy: &UrlPolicy,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| Unresolved(Failure::Dns))?
            .collect();
        if policy.is_local(host) {
            return Ok(resolved);
        }
        let allowed: Vec<SocketAddr> = resolved
            .iter()
            .copied()
            .filter(|a| !crm_domain::webhook::is_forbidden_address(a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(Unresolved(Failure::Blocked).into());
        }
        Ok(allowed)
    }

    impl Sender {
        pub fn new(policy: UrlPolicy, timeout: Duration) -> anyhow::Result<Self> {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent("crm-webhooks/1")
                .dns_resolver(Arc::new(GuardedResolver {
                    policy: Arc::new(policy),
                }))
                .build()?;
            Ok(Self { client })
        }

        pub async fn post(
            &self,
            endpoint: &Endpoint,
            headers: Vec<(&'static str, String)>,
            body: bytes::Bytes,
        ) -> Result<Reply, Failure> {
            let mut request = self.client.post(&endpoint.url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.map_err(|error| {
                let failure = classify(&error);
                tracing::debug!(error = %error, category = failure.code(), "webhook attempt failed");
                failure
            })?;
            Ok(reply(response.status().as_u16(), response.headers()))
        }
    }

    /// The category of a failed attempt, from the causes reqwest chains together.
    fn classify(error: &reqwest::Error) -> Failure {
        if error.is_timeout() {
            return Failure::Timeout;
        }
        let tls_possible = error.is_connect();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if let Some(failure) = category_of(cause, tls_possible) {
                return failure;
            }
            source = cause.source();
        }
        Failure::Connection
    }

    /// The category one cause names, if any. An I/O error wrapping another (as the TLS connector
    /// wraps rustls's) is looked into: its `source` skips the wrapped error.
    fn category_of(
        cause: &(dyn std::error::Error + 'static),
        tls_possible: bool,
    ) -> Option<Failure> {
        if let Some(Unresolved(failure)) = cause.downcast_ref::<Unresolved>() {
            return Some(*failure);
        }
        let io = cause.downcast_ref::<std::io::Error>()?;
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => Some(Failure::Refused),
            std::io::ErrorKind::TimedOut => Some(Failure::Timeout),
            // rustls reports a failed handshake as invalid data.
            std::io::ErrorKind::InvalidData if tls_possible => Some(Failure::Tls),
            _ => io
                .get_ref()
                .and_then(|inner| category_of(inner, tls_possible)),
        }
    }

    /// Checks what a subscription's host name resolves to now: every address must be allowed. A
    /// name that does not resolve, or not within two seconds, passes (it may be created later;
    /// each delivery checks again, at connect time).
    pub async fn check_resolution(
        policy: &UrlPolicy,
        endpoint: &Endpoint,
    ) -> Result<(), UrlProblem> {
        if endpoint.local || endpoint.host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((endpoint.host.as_str(), 0));
        let Ok(Ok(resolved)) = tokio::time::timeout(Duration::from_secs(2), lookup).await else {
            return Ok(());
        };
        for address in resolved {
            policy.check_resolved(endpoint, address.ip())?;
        }
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
mod spin {
    use super::*;
    use spin_sdk::wasip3::http::types::{ErrorCode, RequestOptions};
    use spin_sdk::wasip3::http_compat::RequestOptionsExtension;

    pub struct Sender {
        timeout: Duration,
    }

    impl Sender {
        pub fn new(_policy: UrlPolicy, timeout: Duration) -> anyhow::Result<Self> {
            Ok(Self { timeout })
        }

        pub async fn post(
            &self,
            endpoint: &Endpoint,
            headers: Vec<(&'static str, String)>,
            body: bytes::Bytes,
        ) -> Result<Reply, Failure> {
            // Spin sends a body without a declared length chunked; receivers that read only
            // `content-length` would see it empty and fail the signature check.
            let mut builder = http::Request::post(endpoint.url.as_str())
                .header(http::header::CONTENT_LENGTH, body.len());
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            let mut request = builder
                .body(spin_sdk::http::FullBody::new(body))
                .map_err(|_| Failure::Connection)?;
            let options = RequestOptions::new();
            let nanos = u64::try_from(self.timeout.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            request
                .extensions_mut()
                .insert(RequestOptionsExtension(options));
            let response = spin_sdk::http::send(request).await.map_err(describe)?;
            Ok(reply(response.status().as_u16(), response.headers()))
        }
    }

    /// The category of a failed attempt, as the native sender records it.
    fn describe(error: ErrorCode) -> Failure {
        let failure = match error {
            ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => Failure::Timeout,
            ErrorCode::ConnectionRefused => Failure::Refused,
            ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_) => Failure::Tls,
            // Spin's `block_networks` and `allowed_outbound_hosts`.
            ErrorCode::DestinationIpProhibited | ErrorCode::HttpRequestDenied => Failure::Blocked,
            ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => Failure::Dns,
            ref other => {
                tracing::debug!(error = ?other, "webhook attempt failed");
                Failure::Connection
            }
        };
        failure
    }

    /// Spin offers components no DNS lookups: resolved addresses are policed by the runtime
    /// config's `block_networks` at connect time instead.
    pub async fn check_resolution(
        _policy: &UrlPolicy,
        _endpoint: &Endpoint,
    ) -> Result<(), UrlProblem> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(90);
        let parsed = parse_retry_after(&later.to_rfc2822()).unwrap();
        assert!((88..=90).contains(&parsed.as_secs()), "{parsed:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
