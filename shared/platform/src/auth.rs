//! Bearer JWT authentication: verified tokens become a `Principal` with a tenant and scopes.
//!
//! Each configured key pins its algorithm; a token is checked against the key its `kid` names (or,
//! without a `kid`, the single key of its algorithm). `exp` is required, `iss` and `aud` must match,
//! leeway is at most 60 s and oversized tokens are refused before any parsing.

use crate::config::JwtConfig;
use crate::ApiError;
use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_domain::TenantId;
use http::{header, HeaderMap};
use jwt_simple::prelude::*;
use serde::Deserialize;
use std::collections::HashSet;

/// Who is calling, for which tenant, with which scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub`: the user or integration acting, recorded as the audit actor.
    pub subject: String,
    pub tenant_id: TenantId,
    scopes: HashSet<String>,
    /// The token was issued to this client for itself (`client_id` = `sub`, RFC 9068).
    is_client: bool,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Who the changes of this principal are recorded as: the integration itself for a
    /// client-credentials token, else the user named by `sub`.
    pub fn actor(&self) -> crm_domain::Actor {
        use crm_domain::Actor;
        if self.is_client {
            Actor::ApiClient(self.subject.clone())
        } else {
            Actor::User(self.subject.clone())
        }
    }
}

/// The claims this API reads beyond the registered ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrmClaims {
    /// The tenant id.
    pub tid: String,
    /// Space-separated scopes (RFC 8693 `scope`).
    #[serde(default)]
    pub scope: String,
    /// The OAuth client the token was issued to (RFC 9068). When it is also the `sub`, the
    /// integration acts for itself (a client-credentials grant), not for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

enum KeyMaterial {
    Hs256(HS256Key),
    Rs256(Box<RS256PublicKey>),
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl KeyMaterial {
    fn algorithm(&self) -> &'static str {
        match self {
            KeyMaterial::Hs256(_) => "HS256",
            KeyMaterial::Rs256(_) => "RS256",
            KeyMaterial::Es256(_) => "ES256",
            KeyMaterial::EdDsa(_) => "EdDSA",
        }
    }
}

struct VerificationKey {
    kid: Option<String>,
    material: KeyMaterial,
}

/// Verifies bearer tokens. Built once per process (or Spin instance): parsing keys is not cheap.
pub struct Authenticator {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    leeway: Duration,
    max_token_bytes: usize,
    max_lifetime_seconds: u64,
}

impl Authenticator {
    /// # Errors
    /// When a configured key cannot be parsed; the message names the key, never its material.
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            keys.push(VerificationKey {
                kid: None,
                material: KeyMaterial::Hs256(HS256Key::from_bytes(secret.as_bytes())),
            });
        }
        if let Some(document) = &config.public_keys {
            keys.extend(parse_public_keys(document).context("jwt_public_keys")?);
        }
        if keys.is_empty() {
            bail!("no JWT verification key is configured");
        }
        Ok(Self {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: Duration::from_secs(config.leeway_seconds.min(60)),
            max_token_bytes: config.max_token_bytes,
            max_lifetime_seconds: config.max_lifetime_seconds,
        })
    }

    /// The principal of the request's `Authorization: Bearer` token.
    ///
    /// # Errors
    /// 401 for a missing, malformed, oversized, expired, wrongly signed or wrongly addressed token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let token = bearer_token(headers)?;
        if token.len() > self.max_token_bytes {
            return Err(ApiError::unauthorized("the token is too long"));
        }
        let claims = self
            .verify(token)
            .map_err(|_| ApiError::unauthorized("the token is invalid or expired"))?;
        self.check_lifetime(&claims)?;
        let tenant_id = TenantId::parse(&claims.custom.tid)
            .ok_or_else(|| ApiError::unauthorized("the token's tid is not a tenant id"))?;
        let subject = claims
            .subject
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the token has no sub"))?;
        let is_client = claims.custom.client_id.as_deref() == Some(subject.as_str());
        Ok(Principal {
            subject,
            tenant_id,
            is_client,
            scopes: claims
                .custom
                .scope
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }

    /// A token must expire, and live at most `jwt_max_lifetime_seconds` from its issue (`iat`, or
    /// now when it has none): a stolen long-lived token is refused, whatever its signature.
    fn check_lifetime(&self, claims: &JWTClaims<CrmClaims>) -> Result<(), ApiError> {
        let expires = claims
            .expires_at
            .ok_or_else(|| ApiError::unauthorized("the token has no exp"))?;
        let issued = claims.issued_at.unwrap_or_else(Clock::now_since_epoch);
        let lifetime = expires.as_secs().saturating_sub(issued.as_secs());
        if lifetime > self.max_lifetime_seconds + self.leeway.as_secs() {
            return Err(ApiError::unauthorized(format!(
                "the token lives longer than {} seconds",
                self.max_lifetime_seconds
            )));
        }
        Ok(())
    }

    fn verify(&self, token: &str) -> anyhow::Result<JWTClaims<CrmClaims>> {
        let metadata = Token::decode_metadata(token)?;
        let algorithm = metadata.algorithm();
        let key = self.select_key(algorithm, metadata.key_id())?;
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([self.issuer.clone()])),
            allowed_audiences: Some(HashSet::from([self.audience.clone()])),
            time_tolerance: Some(self.leeway),
            max_token_length: Some(self.max_token_bytes),
            ..Default::default()
        };
        let claims = match &key.material {
            KeyMaterial::Hs256(k) => k.verify_token::<CrmClaims>(token, Some(options)),
            KeyMaterial::Rs256(k) => k.verify_token::<CrmClaims>(token, Some(options)),
            KeyMaterial::Es256(k) => k.verify_token::<CrmClaims>(token, Some(options)),
            KeyMaterial::EdDsa(k) => k.verify_token::<CrmClaims>(token, Some(options)),
        }?;
        if claims.expires_at.is_none() {
            bail!("the token has no exp");
        }
        Ok(claims)
    }

    /// The key a token must verify with: the one its `kid` names, whose algorithm must also match;
    /// without a `kid`, the only key of the token's algorithm. `none` matches nothing.
    fn select_key(&self, algorithm: &str, kid: Option<&str>) -> anyhow::Result<&VerificationKey> {
        let mut candidates = self.keys.iter().filter(|key| match kid {
            Some(kid) => key.kid.as_deref() == Some(kid),
            None => key.kid.is_none() || self.keys.len() == 1,
        });
        let key = candidates
            .next()
            .ok_or_else(|| anyhow!("no key for this token"))?;
        if candidates.next().is_some() {
            bail!("the token does not say which key signed it");
        }
        if key.material.algorithm() != algorithm {
            bail!("algorithm {algorithm} is not allowed for this key");
        }
        Ok(key)
    }
}

/// Parses `jwt_public_keys`: a JWKS document or a JSON array of `{kid, alg, pem}`.
fn parse_public_keys(document: &str) -> anyhow::Result<Vec<VerificationKey>> {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    #[derive(Deserialize)]
    struct Jwk {
        kid: String,
        kty: String,
        alg: Option<String>,
        crv: Option<String>,
        n: Option<String>,
        e: Option<String>,
        x: Option<String>,
        y: Option<String>,
    }
    #[derive(Deserialize)]
    struct PemKey {
        kid: String,
        alg: String,
        pem: String,
    }

    let value: serde_json::Value = serde_json::from_str(document).context("not JSON")?;
    if value.get("keys").is_some() {
        let jwks: Jwks = serde_json::from_value(value).context("not a JWKS document")?;
        jwks.keys
            .into_iter()
            .map(|jwk| {
                let b64 = |field: &Option<String>, name: &str| -> anyhow::Result<Vec<u8>> {
                    let text = field
                        .as_deref()
                        .ok_or_else(|| anyhow!("key {}: no {name}", jwk.kid))?;
                    URL_SAFE_NO_PAD
                        .decode(text)
                        .with_context(|| format!("key {}: {name} is not base64url", jwk.kid))
                };
                let material = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
                    ("RSA", _) => KeyMaterial::Rs256(Box::new(RS256PublicKey::from_components(
                        &b64(&jwk.n, "n")?,
                        &b64(&jwk.e, "e")?,
                    )?)),
                    ("EC", Some("P-256")) => {
                        let mut point = vec![0x04];
                        point.extend(b64(&jwk.x, "x")?);
                        point.extend(b64(&jwk.y, "y")?);
                        KeyMaterial::Es256(ES256PublicKey::from_bytes(&point)?)
                    }
                    ("OKP", Some("Ed25519")) => {
                        KeyMaterial::EdDsa(Ed25519PublicKey::from_bytes(&b64(&jwk.x, "x")?)?)
                    }
                    (kty, crv) => bail!("key {}: unsupported kty {kty} / crv {crv:?}", jwk.kid),
                };
                if let Some(alg) = &jwk.alg {
                    if alg != material.algorithm() {
                        bail!("key {}: alg {alg} does not fit a {} key", jwk.kid, jwk.kty);
                    }
                }
                Ok(VerificationKey {
                    kid: Some(jwk.kid),
                    material,
                })
            })
            .collect()
    } else {
        let keys: Vec<PemKey> = serde_json::from_value(value)
            .context("expected {\"keys\": [...]} or [{kid, alg, pem}]")?;
        keys.into_iter()
            .map(|key| {
                let material = match key.alg.as_str() {
                    "RS256" => KeyMaterial::Rs256(Box::new(RS256PublicKey::from_pem(&key.pem)?)),
                    "ES256" => KeyMaterial::Es256(ES256PublicKey::from_pem(&key.pem)?),
                    "EdDSA" => KeyMaterial::EdDsa(Ed25519PublicKey::from_pem(&key.pem)?),
                    other => bail!("key {}: algorithm {other} is not supported", key.kid),
                };
                Ok(VerificationKey {
                    kid: Some(key.kid),
                    material,
                })
            })
            .collect()
    }
}

/// Issues a development HS256 token (the `crm token` command and the tests use it).
pub fn issue_hs256_token(
    config: &JwtConfig,
    subject: &str,
    tenant: TenantId,
    scopes: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<String> {
    let secret = config
        .hs256_secret
        .as_ref()
        .ok_or_else(|| anyhow!("jwt_hs256_secret is not set: HS256 tokens cannot be issued"))?;
    let claims = Claims::with_custom_claims(
        CrmClaims {
            tid: tenant.to_string(),
            scope: scopes.to_owned(),
            client_id: None,
        },
        Duration::from_secs(ttl.as_secs()),
    )
    .with_issuer(&config.issuer)
    .with_audience(&config.audience)
    .with_subject(subject);
    HS256Key::from_bytes(secret.as_bytes()).authenticate(claims)
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send a bearer token in the Authorization header"))?;
    // The scheme is case-insensitive and followed by one or more spaces (RFC 9110, 11.1 and 11.4).
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// Checks the operator credential of operator-only routes: the bearer token must equal
/// `operator_token` (compared in constant time). Without one configured the routes are closed.
pub fn authenticate_operator(
    operator_token: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let presented = bearer_token(headers)?;
    let expected = operator_token.ok_or_else(|| {
        ApiError::unauthorized("operator routes are disabled (no operator_token)")
    })?;
    let digest = |token: &str| <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes());
    let (a, b) = (digest(presented), digest(expected));
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if difference == 0 {
        Ok(())
    } else {
        Err(ApiError::unauthorized("the operator token is not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "0192d7a4-5b6c-7d8e-9f00-112233445566";

    fn config(public_keys: Option<String>) -> JwtConfig {
        JwtConfig {
            issuer: "iss".into(),
            audience: "aud".into(),
            hs256_secret: Some("s".repeat(32)),
            public_keys,
            leeway_seconds: 30,
            max_token_bytes: 8192,
            max_lifetime_seconds: 86400,
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    fn claims() -> JWTClaims<CrmClaims> {
        Claims::with_custom_claims(
            CrmClaims {
                tid: TENANT.into(),
                scope: "contacts:read".into(),
                client_id: None,
            },
            Duration::from_mins(5),
        )
        .with_issuer("iss")
        .with_audience("aud")
        .with_subject("user-1")
    }

    #[test]
    fn accepts_an_es256_key_from_a_jwks_document_by_kid() {
        let pair = ES256KeyPair::generate().with_key_id("ec-1");
        let point = pair.public_key().public_key().to_bytes_uncompressed();
        let jwks = serde_json::json!({"keys": [{
            "kid": "ec-1", "kty": "EC", "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]});
        let auth = Authenticator::new(&config(Some(jwks.to_string()))).unwrap();
        let token = pair.sign(claims()).unwrap();
        let principal = auth.authenticate(&bearer(&token)).unwrap();
        assert_eq!(principal.subject, "user-1");
        assert!(principal.has_scope("contacts:read") && !principal.has_scope("contacts:write"));
    }

    #[test]
    fn accepts_an_rs256_key_from_a_jwks_document() {
        let pair = RS256KeyPair::generate(2048).unwrap().with_key_id("rsa-1");
        let components = pair.public_key().to_components();
        let jwks = serde_json::json!({"keys": [{
            "kid": "rsa-1", "kty": "RSA", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        }]});
        let auth = Authenticator::new(&config(Some(jwks.to_string()))).unwrap();
        assert!(auth
            .authenticate(&bearer(&pair.sign(claims()).unwrap()))
            .is_ok());
        // The same claims signed with the development HS256 secret but naming the RSA kid fail.
        let forged = HS256Key::from_bytes("s".repeat(32).as_bytes()).with_key_id("rsa-1");
        assert!(auth
            .authenticate(&bearer(&forged.authenticate(claims()).unwrap()))
            .is_err());
    }

    #[test]
    fn accepts_an_ed25519_key_from_pem() {
        let pair = Ed25519KeyPair::generate().with_key_id("ed-1");
        let keys = serde_json::json!([{
            "kid": "ed-1", "alg": "EdDSA", "pem": pair.public_key().to_pem(),
        }]);
        let auth = Authenticator::new(&config(Some(keys.to_string()))).unwrap();
        assert!(auth
            .authenticate(&bearer(&pair.sign(claims()).unwrap()))
            .is_ok());
    }

    #[test]
    fn a_kid_must_name_a_key_of_the_tokens_algorithm() {
        let signer = Ed25519KeyPair::generate().with_key_id("ed-1");
        let other = Ed25519KeyPair::generate().with_key_id("ed-2");
        let keys = serde_json::json!([{"kid": "ed-1", "alg": "EdDSA", "pem": signer.public_key().to_pem()}]);
        let auth = Authenticator::new(&config(Some(keys.to_string()))).unwrap();
        // Signed by a key we do not know, under a kid we do not know.
        assert!(auth
            .authenticate(&bearer(&other.sign(claims()).unwrap()))
            .is_err());
        // An HS256 token claiming the EdDSA key's kid.
        let forged = HS256Key::from_bytes(&[7; 32]).with_key_id("ed-1");
        assert!(auth
            .authenticate(&bearer(&forged.authenticate(claims()).unwrap()))
            .is_err());
    }

    #[test]
    fn refuses_unparseable_key_documents_without_echoing_them() {
        let error = Authenticator::new(&config(Some(
            "[{\"kid\":\"k\",\"alg\":\"RS256\",\"pem\":\"SECRETISH\"}]".into(),
        )))
        .err()
        .unwrap();
        assert!(!format!("{error:#}").contains("SECRETISH"));
    }

    #[test]
    fn issued_development_tokens_verify() {
        let config = config(None);
        let tenant = TenantId::parse(TENANT).unwrap();
        let token = issue_hs256_token(
            &config,
            "dev",
            tenant,
            "a b",
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        let principal = Authenticator::new(&config)
            .unwrap()
            .authenticate(&bearer(&token))
            .unwrap();
        assert_eq!(principal.tenant_id, tenant);
        assert!(principal.has_scope("a") && principal.has_scope("b"));
    }
}
