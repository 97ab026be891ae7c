//! The request pipeline, one for every component and both hosts: routing, authentication, scopes,
//! rate limits, the body limit, Idempotency-Key claims, the handler, problem+json, and the
//! request's log span.

use crate::app::App;
use crate::auth::Principal;
use crate::config::Overrides;
use crate::edge::ratelimit;
use crate::http::idempotency::{self, ClaimOutcome, IdempotencyClaim};
use crate::http::router::{Access, PathParams, Router};
use crate::http::{request_id, ApiRequest, ApiResponse};
use crate::store::unit_of_work::UnitOfWork;
use crate::ApiError;
use bytes::Bytes;
use http::{HeaderValue, Method};
use std::sync::Arc;
use tracing::Instrument;

/// A request body as an entry point read it: whole, cut off at the configured limit, or broken off
/// by the client.
enum Body {
    Complete(Bytes),
    TooLarge,
    Incomplete,
}

/// How much of an oversized body is read and discarded before answering 413, so that a client still
/// sending can read the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a request body of at most `limit` bytes. A larger one is drained (up to 16 MiB) and
/// reported as [`Body::TooLarge`]; one the client breaks off is [`Body::Incomplete`].
async fn read_body<B>(mut body: B, limit: usize) -> Body
where
    B: http_body::Body + Unpin,
{
    use bytes::Buf;
    use http_body_util::BodyExt;
    let mut buffer = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Body::Incomplete;
        };
        if let Ok(mut data) = frame.into_data() {
            let length = data.remaining();
            seen = seen.saturating_add(length);
            if seen <= limit {
                buffer.extend_from_slice(&data.copy_to_bytes(length));
            } else if seen > DRAIN_LIMIT {
                return Body::TooLarge;
            }
        }
    }
    if seen > limit {
        Body::TooLarge
    } else {
        Body::Complete(buffer.freeze())
    }
}

/// What a handler receives.
pub struct RequestContext {
    pub app: Arc<App>,
    pub request: ApiRequest,
    pub request_id: String,
    pub params: PathParams,
    principal: Option<Principal>,
    /// The tenant's rate-limit overrides, when rate limiting is on.
    rate_limits: Option<Overrides>,
    idempotency: Option<Arc<IdempotencyClaim>>,
}

impl RequestContext {
    /// The caller of an authenticated route.
    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal
            .as_ref()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("principal() on a public route")))
    }

    /// A path parameter declared by the route pattern.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .get(name)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route has no parameter {name}")))
    }

    /// The entity id in the path parameter `name`: a value that is not a UUID names no entity (404).
    pub fn path_id<T: crm_domain::EntityId>(&self, name: &str) -> Result<T, ApiError> {
        T::parse(self.param(name)?).ok_or(ApiError::NotFound)
    }

    /// Counts a batch's `operations` against the principal's expensive limit, which counted its
    /// request as one: 429 when they exhaust it (nothing is done), 422 at `/operations` when the
    /// batch holds more than the limit admits in a whole window.
    pub async fn charge_operations(&self, operations: usize) -> Result<(), ApiError> {
        let (Some(limiter), Some(overrides)) = (&self.app.rate_limiter, self.rate_limits) else {
            return Ok(());
        };
        let principal = self.principal()?;
        let operations = u64::try_from(operations).unwrap_or(u64::MAX);
        let limit = limiter.expensive_limit(overrides);
        if operations > limit {
            return Err(ApiError::invalid_field(
                "/operations",
                "too_many",
                format!(
                    "this principal may send at most {limit} operations a minute; split the batch"
                ),
            ));
        }
        if operations <= 1 {
            return Ok(());
        }
        let decision = limiter
            .charge(
                &self.app.kv,
                overrides,
                principal.tenant_id,
                &principal.subject,
                operations - 1,
                unix_now(),
            )
            .await;
        if decision.admitted {
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                retry_after: decision.reset_seconds,
            })
        }
    }

    /// Makes one change as this request's principal, in a [`UnitOfWork`] whose correlation id is
    /// the request id. `work` returns the response, which is recorded in the same transaction as
    /// the answer to replays of the request's Idempotency-Key (when it sent one). Every mutation
    /// goes through here.
    pub async fn write(
        &self,
        work: impl AsyncFnOnce(&UnitOfWork<'_>) -> Result<ApiResponse, ApiError>,
    ) -> Result<ApiResponse, ApiError> {
        let principal = self.principal()?;
        let claim = self.idempotency.as_deref();
        // On Spin nothing renews the claim beside the request (`IdempotencyClaim::hold` runs only
        // natively), so the write renews it as it begins; in a transaction of its own, since inside
        // the write's the claim's row would stay locked until the commit and a concurrent duplicate
        // would wait instead of hearing 409.
        #[cfg(target_arch = "wasm32")]
        if let Some(claim) = claim {
            claim.renew(&self.app.db).await?;
        }
        self.app
            .unit_of_work(
                principal.tenant_id,
                &principal.actor(),
                &self.request_id,
                async |uow: &UnitOfWork<'_>| {
                    let response = work(uow).await?;
                    if let Some(claim) = claim {
                        claim.record(uow.tx(), &response).await?;
                    }
                    Ok(response)
                },
            )
            .await
    }
}

impl App {
    /// Answers one request. Never fails: every error becomes problem+json carrying the request id.
    pub async fn handle<B>(
        self: Arc<Self>,
        router: &Router,
        parts: http::request::Parts,
        body: B,
    ) -> ApiResponse
    where
        B: http_body::Body + Unpin,
    {
        let started = std::time::Instant::now();
        let server_timing = self.config.server_timing;
        let request_id = request_id::from_headers(&parts.headers);
        let mut limits = None;
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %parts.method,
            route = tracing::field::Empty,
            tenant = tracing::field::Empty,
            principal = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let (outcome, cost) =
            crate::metering::measure(self.dispatch(router, parts, body, &request_id, &mut limits))
                .instrument(span.clone())
                .await;
        let mut response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if error.status().is_server_error() {
                    span.in_scope(|| log_error(&request_id, &error));
                }
                error.to_response(&request_id)
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        if server_timing {
            let timing = cost.server_timing(started.elapsed());
            if let Ok(value) = HeaderValue::from_str(&timing) {
                response.headers_mut().insert("server-timing", value);
            }
        }
        // The span ends with the request's outcome; its closing line carries every field.
        span.record("status", response.status().as_u16());
        span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
        span.in_scope(|| tracing::info!("request"));
        if let Some(decision) = limits {
            let headers = response.headers_mut();
            if let Ok(policy) = HeaderValue::from_str(&decision.policy) {
                headers.insert("ratelimit-policy", policy);
            }
            if let Some(Ok(state)) = decision.state.as_deref().map(HeaderValue::from_str) {
                headers.insert("ratelimit", state);
            }
        }
        response
    }

    async fn dispatch<B>(
        self: Arc<Self>,
        router: &Router,
        parts: http::request::Parts,
        body: B,
        request_id: &str,
        limits: &mut Option<ratelimit::Decision>,
    ) -> Result<ApiResponse, ApiError>
    where
        B: http_body::Body + Unpin,
    {
        let (route, params) = router.resolve(&parts.method, parts.uri.path())?;
        tracing::Span::current().record("route", route.pattern);
        let mut rate_limits = None;
        let principal = match route.access {
            Access::Public => None,
            Access::Operator => {
                crate::auth::authenticate_operator(
                    self.config.operator_token.as_deref(),
                    &parts.headers,
                )?;
                None
            }
            Access::Scope(scope) => {
                let principal = self.auth.authenticate(&parts.headers)?;
                let span = tracing::Span::current();
                span.record("tenant", tracing::field::display(principal.tenant_id));
                span.record("principal", principal.subject.as_str());
                // The token must name a tenant that exists and is active (what the process last
                // read of it, at most `tenant_cache_seconds` old).
                let tenant = self
                    .tenants
                    .get(&self.db, principal.tenant_id, unix_now())
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("the token's tenant does not exist"))?;
                if !tenant.active {
                    return Err(ApiError::TenantSuspended);
                }
                if !principal.has_scope(scope) {
                    return Err(ApiError::Forbidden { scope });
                }
                if let Some(limiter) = &self.rate_limiter {
                    let decision = limiter
                        .check(
                            &self.kv,
                            tenant.rate_limits,
                            principal.tenant_id,
                            &principal.subject,
                            route.expensive,
                            unix_now(),
                        )
                        .await;
                    let (admitted, retry_after) = (decision.admitted, decision.reset_seconds);
                    *limits = Some(decision);
                    rate_limits = Some(tenant.rate_limits);
                    if !admitted {
                        return Err(ApiError::RateLimited { retry_after });
                    }
                }
                Some(principal)
            }
        };
        // The body is read only now: a request refused by authentication, its tenant's state, its
        // scope or a rate limit is answered without reading it (and an anonymous client learns
        // nothing from our limits).
        let body_limit = route
            .body_limit
            .map_or(self.config.max_body_bytes, |limit| {
                limit.max(self.config.max_body_bytes)
            });
        let body = match read_body(body, body_limit).await {
            Body::Complete(body) => body,
            Body::TooLarge => return Err(ApiError::PayloadTooLarge { limit: body_limit }),
            Body::Incomplete => {
                return Err(ApiError::bad_request(
                    "the request body could not be read: broken off, or not sent in time",
                ))
            }
        };
        let request = ApiRequest {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
        };
        let claim = match (&principal, request.method == Method::POST) {
            (Some(principal), true) => match idempotency::key_of(&request)? {
                Some(key) => match idempotency::claim(
                    &self.db,
                    principal,
                    &key,
                    &request,
                    self.config.idempotency_lease,
                )
                .await?
                {
                    ClaimOutcome::Replay(response) => return Ok(response),
                    ClaimOutcome::Claimed(claim) => Some(Arc::new(claim)),
                },
                None => None,
            },
            _ => None,
        };
        let context = RequestContext {
            app: self.clone(),
            request,
            request_id: request_id.to_owned(),
            params,
            principal,
            rate_limits,
            idempotency: claim.clone(),
        };
        let outcome = match &claim {
            Some(claim) => {
                crate::timer::while_running((route.handler)(context), claim.hold(&self.db)).await
            }
            None => (route.handler)(context).await,
        };
        if let Some(claim) = claim {
            claim.settle(&self.db, &outcome).await?;
        }
        outcome
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One log line per server error, with the full cause chain and the request id to find it by.
pub fn log_error(request_id: &str, error: &ApiError) {
    let cause = match error {
        ApiError::Internal(cause) | ApiError::Unavailable(cause) => format!("{cause:#}"),
        other => other.to_string(),
    };
    tracing::error!(
        request_id,
        status = error.status().as_u16(),
        error = cause,
        "server error"
    );
}
