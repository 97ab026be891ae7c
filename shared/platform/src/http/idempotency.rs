//! `Idempotency-Key` on POST: the same key and request replay the stored response; the same key with
//! another request is 422; a key whose first request is still running is 409. Keys live 24 hours,
//! and belong to one principal of one tenant: another user's key, however equal, is another key.
//!
//! The key is claimed in its own short transaction (so a concurrent duplicate sees it in flight), and
//! the response is recorded in the *mutation's* transaction: a change is never committed without
//! the response that a replay will return. A failed request releases its claim, so a retry runs anew.
//! A claim is leased (`idempotency_lease_seconds`) and its request renews the lease while it runs, so
//! it never lapses under a running request; a claim abandoned by a crashed process is retaken once
//! its lease lapses. Only the claim's owner records or releases it: a request whose claim was
//! retaken cannot commit.

use crate::auth::Principal;
use crate::http::response::ShownOnce;
use crate::http::{ApiRequest, ApiResponse};
use crate::store::db::{Db, DbError, SqlValue, Tx};
use crate::ApiError;
use bytes::Bytes;
use crm_domain::TenantId;
use http::{header, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
/// Response headers a replay repeats; the request id is per request and is not among them.
const STORED_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

const CLAIM: &str = "
    insert into idempotency_keys as k (tenant_id, key, request_hash, status, locked_until, claim_token)
    values ($1, $2, $3, 'in_flight', now() + $5::int8 * interval '1 second', $4)
    on conflict (tenant_id, key) do update
        set request_hash = excluded.request_hash, status = 'in_flight',
            claim_token = excluded.claim_token,
            locked_until = excluded.locked_until, response_status = null,
            response_headers = null, response_body = null,
            created_at = now(), expires_at = now() + interval '24 hours'
        where k.expires_at < now() or (k.status = 'in_flight' and k.locked_until < now())
    returning true";
const EXISTING: &str = "
    select request_hash, status, response_status::int8 as response_status, response_headers,
           response_body
    from idempotency_keys where tenant_id = $1 and key = $2";
const RECORD: &str = "
    update idempotency_keys
    set status = 'completed', response_status = $4::int8::int2, response_headers = $5, response_body = $6
    where tenant_id = $1 and key = $2 and claim_token = $3";
const RENEW: &str = "
    update idempotency_keys set locked_until = now() + $4::int8 * interval '1 second'
    where tenant_id = $1 and key = $2 and claim_token = $3 and status = 'in_flight'";
const RELEASE: &str = "delete from idempotency_keys
    where tenant_id = $1 and key = $2 and claim_token = $3 and status = 'in_flight'";

/// How often a release meeting a lost connection is tried again, each time on another connection.
const RELEASE_ATTEMPTS: usize = 5;

/// A claimed key whose response has yet to be recorded.
pub struct IdempotencyClaim {
    tenant: TenantId,
    key: String,
    /// This request's mark on the claim: only its owner records or releases it.
    token: uuid::Uuid,
    /// How long the claim holds without renewal.
    lease: Duration,
    recorded: AtomicBool,
}

pub enum ClaimOutcome {
    Claimed(IdempotencyClaim),
    Replay(ApiResponse),
}

/// The request's key, if it sent one.
///
/// # Errors
/// 422 when the header is empty, too long or not visible ASCII.
pub fn key_of(request: &ApiRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers.get(HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_LEN)
        .map(|key| Some(key.to_owned()))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "invalid_header",
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
        })
}

/// The stored key of `key` sent by `subject`: the principal's hash, then the key, so that equal keys
/// of two principals of a tenant never meet.
pub fn principal_key(subject: &str, key: &str) -> String {
    let principal = Sha256::digest(subject.as_bytes());
    format!("{}:{key}", hex::encode(&principal[..8]))
}

/// What "the same request" means: method, path, query and body.
fn fingerprint(request: &ApiRequest) -> String {
    let mut hash = Sha256::new();
    hash.update(request.method.as_str());
    hash.update(b" ");
    hash.update(&request.path);
    hash.update(b"?");
    hash.update(request.query.as_deref().unwrap_or_default());
    hash.update(b"\n");
    hash.update(&request.body);
    hex::encode(hash.finalize())
}

/// Claims `key` for `request`, or answers from what an earlier request with it left.
///
/// # Errors
/// 409 while the first request is in flight; 422 when the key came with another request.
pub async fn claim(
    db: &Db,
    principal: &Principal,
    key: &str,
    request: &ApiRequest,
    lease: Duration,
) -> Result<ClaimOutcome, ApiError> {
    let tenant = principal.tenant_id;
    let key = principal_key(&principal.subject, key);
    let hash = fingerprint(request);
    let claim = IdempotencyClaim {
        tenant,
        key,
        token: uuid::Uuid::now_v7(),
        lease,
        recorded: AtomicBool::new(false),
    };
    // `None`: claimed; `Some`: the stored response to replay.
    let replay = db
        .transaction(tenant, async |tx: &Tx| {
            let params = [
                tenant.into(),
                SqlValue::from(claim.key.as_str()),
                hash.as_str().into(),
                claim.token.into(),
                claim.lease_seconds().into(),
            ];
            if tx.query_opt(CLAIM, &params).await?.is_some() {
                return Ok(None);
            }
            let row = tx.query_one(EXISTING, &params[..2]).await?;
            // A key in flight is busy whatever it came with: the client retries once it settles.
            if row.get::<String>("status")? != "completed" {
                return Err(ApiError::IdempotencyKeyInFlight);
            }
            if row.get::<String>("request_hash")? != hash {
                return Err(ApiError::IdempotencyKeyReused);
            }
            Ok(Some(stored_response(
                row.get("response_status")?,
                row.get("response_headers")?,
                row.get("response_body")?,
            )?))
        })
        .await;
    match replay {
        Ok(None) => Ok(ClaimOutcome::Claimed(claim)),
        Ok(Some(response)) => Ok(ClaimOutcome::Replay(response)),
        Err(error) => {
            if let ApiError::Unavailable(_) = error {
                // The connection may have been lost after the claim committed: release it if it
                // is ours, so that the client's retry is not refused as in flight until it lapses.
                let _best_effort = claim.release(db).await;
            }
            Err(error)
        }
    }
}

fn stored_response(status: i64, headers: Value, body: Vec<u8>) -> Result<ApiResponse, ApiError> {
    let mut response = http::Response::new(Bytes::from(body).into());
    *response.status_mut() = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| anyhow::anyhow!("stored idempotent status {status} is not a status"))?;
    for (name, value) in headers.as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(name.as_str()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

/// What a replay of `response` shows: its body, with the fields shown once set to `null`.
fn replayable_body(response: &ApiResponse) -> Vec<u8> {
    let Some(ShownOnce(fields)) = response.extensions().get::<ShownOnce>() else {
        return response.body().as_bytes().to_vec();
    };
    match serde_json::from_slice::<Value>(response.body().as_bytes()) {
        Ok(Value::Object(mut body)) => {
            for field in *fields {
                if let Some(value) = body.get_mut(*field) {
                    *value = Value::Null;
                }
            }
            serde_json::to_vec(&body).unwrap_or_default()
        }
        // Only JSON objects have fields shown once; anything else is not kept at all.
        _ => Vec::new(),
    }
}

impl IdempotencyClaim {
    /// Keeps the claim from lapsing for as long as it is awaited (natively): renews the lease
    /// every third of it. Run it alongside the request ([`crate::timer::while_running`], which on
    /// Spin does not run it: there the write renews the claim as it begins, [`Self::renew`]). A
    /// renewal that fails is tried again at the next; the record checks ownership whatever happened.
    pub async fn hold(&self, db: &Db) -> std::convert::Infallible {
        #[cfg(target_arch = "wasm32")]
        {
            let _ = db;
            std::future::pending().await
        }
        #[cfg(not(target_arch = "wasm32"))]
        loop {
            crate::timer::sleep(self.lease / 3).await;
            if let Err(error) = self.renew(db).await {
                tracing::warn!(error = %error, "renewing an Idempotency-Key claim failed");
            }
        }
    }

    /// Extends the lease from now, if this request still owns the claim: every third of the lease
    /// natively ([`Self::hold`]), as a keyed write begins on Spin.
    pub async fn renew(&self, db: &Db) -> Result<u64, DbError> {
        db.transaction(self.tenant, async |tx: &Tx| {
            let params = [
                self.tenant.into(),
                self.key.as_str().into(),
                self.token.into(),
                self.lease_seconds().into(),
            ];
            tx.execute(RENEW, &params).await
        })
        .await
    }

    fn lease_seconds(&self) -> i64 {
        i64::try_from(self.lease.as_secs()).unwrap_or(i64::MAX)
    }

    /// Stores `response` as the answer to every replay, inside the caller's transaction.
    ///
    /// # Errors
    /// 409 when this request no longer owns the claim (its lease lapsed and another request took
    /// the key): the caller's transaction must not commit, or the change would be made twice.
    pub async fn record(&self, tx: &Tx, response: &ApiResponse) -> Result<(), ApiError> {
        let headers: Map<String, Value> = STORED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), Value::from(value)))
            })
            .collect();
        let recorded = tx
            .execute(
                RECORD,
                &[
                    self.tenant.into(),
                    self.key.as_str().into(),
                    self.token.into(),
                    i64::from(response.status().as_u16()).into(),
                    Value::Object(headers).into(),
                    replayable_body(response).into(),
                ],
            )
            .await?;
        if recorded == 0 {
            return Err(ApiError::IdempotencyKeyInFlight);
        }
        self.recorded.store(true, Ordering::Release);
        Ok(())
    }

    /// Settles the claim once the handler has answered: a success not yet recorded (a route that
    /// wrote nothing transactional) is recorded now; a failure releases the key for a retry, even
    /// when the handler had recorded its response (its commit then failed; a committed record is
    /// `completed`, which the release leaves alone). A release that meets a lost connection is tried
    /// again on another, so that the client's retry is not refused as in flight for a minute.
    pub async fn settle(
        &self,
        db: &Db,
        outcome: &Result<ApiResponse, ApiError>,
    ) -> Result<(), ApiError> {
        match outcome {
            Ok(_) if self.recorded.load(Ordering::Acquire) => Ok(()),
            Ok(response) => {
                db.transaction(self.tenant, async |tx: &Tx| self.record(tx, response).await)
                    .await
            }
            Err(_) => Ok(self.release(db).await?),
        }
    }

    /// Deletes the claim if this request still holds it in flight; a lost connection is met with
    /// another attempt on another connection.
    async fn release(&self, db: &Db) -> Result<(), DbError> {
        let mut attempts = 0;
        loop {
            let released = db
                .transaction(self.tenant, async |tx: &Tx| {
                    let params = [
                        self.tenant.into(),
                        self.key.as_str().into(),
                        self.token.into(),
                    ];
                    tx.execute(RELEASE, &params).await
                })
                .await;
            match released {
                Err(DbError::Unavailable(_)) if attempts < RELEASE_ATTEMPTS => attempts += 1,
                other => return other.map(|_| ()),
            }
        }
    }
}
