//! Authentication and scopes: every kind of bad token answers 401 with a Bearer challenge.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_http_tests::{harness, TestClient, TestTenant};
use crm_platform::auth::CrmClaims;
use jwt_simple::prelude::*;
use serde_json::json;

/// Claims as `crm token` would issue them, for a tenant, with one field spoiled by `spoil`.
fn token_with(
    tenant: &TestTenant,
    spoil: impl FnOnce(JWTClaims<CrmClaims>) -> JWTClaims<CrmClaims>,
) -> String {
    let jwt = &harness().jwt;
    let claims = Claims::with_custom_claims(
        CrmClaims {
            tid: tenant.id.to_string(),
            scope: "contacts:read contacts:write".into(),
            client_id: None,
        },
        Duration::from_mins(10),
    )
    .with_issuer(&jwt.issuer)
    .with_audience(&jwt.audience)
    .with_subject("user-test");
    let key = HS256Key::from_bytes(
        jwt.hs256_secret
            .as_ref()
            .expect("an HS256 test secret")
            .as_bytes(),
    );
    key.authenticate(spoil(claims)).expect("signing")
}

async fn assert_unauthorized(token: Option<String>, why: &str) {
    let reply = TestClient::new(token).get("/api/v1/contacts").await;
    assert_eq!(reply.status, 401, "{why}: {}", reply.text);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "{why}: no Bearer challenge"
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{why}"
    );
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let tenant = TestTenant::create("US").await;
    let reply = TestClient::new(Some(token_with(&tenant, |c| c)))
        .get("/api/v1/contacts")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn a_missing_token_is_401() {
    assert_unauthorized(None, "missing").await;
}

#[tokio::test]
async fn a_non_bearer_authorization_is_401() {
    let client = TestClient::anonymous();
    let reply = client
        .send(
            client
                .request(reqwest::Method::GET, "/api/v1/contacts")
                .header("authorization", "Basic YWxhZGRpbjpvcGVu"),
        )
        .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let tenant = TestTenant::create("US").await;
    let token = token_with(&tenant, |mut claims| {
        // Expired well beyond the 30 s leeway.
        let past = Clock::now_since_epoch() - Duration::from_mins(5);
        claims.issued_at = Some(past - Duration::from_mins(10));
        claims.expires_at = Some(past);
        claims
    });
    assert_unauthorized(Some(token), "expired").await;
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let tenant = TestTenant::create("US").await;
    let token = token_with(&tenant, |mut claims| {
        claims.expires_at = None;
        claims
    });
    assert_unauthorized(Some(token), "no exp").await;
}

#[tokio::test]
async fn a_wrong_issuer_is_401() {
    let tenant = TestTenant::create("US").await;
    assert_unauthorized(
        Some(token_with(&tenant, |c| c.with_issuer("someone-else"))),
        "issuer",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_audience_is_401() {
    let tenant = TestTenant::create("US").await;
    assert_unauthorized(
        Some(token_with(&tenant, |c| c.with_audience("another-api"))),
        "audience",
    )
    .await;
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_401() {
    let tenant = TestTenant::create("US").await;
    let signed = token_with(&tenant, |c| c);
    let payload = signed.split('.').nth(1).unwrap();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    assert_unauthorized(Some(format!("{header}.{payload}.")), "alg none").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_401() {
    let tenant = TestTenant::create("US").await;
    let jwt = &harness().jwt;
    let claims = Claims::with_custom_claims(
        CrmClaims {
            tid: tenant.id.to_string(),
            scope: "contacts:read".into(),
            client_id: None,
        },
        Duration::from_mins(10),
    )
    .with_issuer(&jwt.issuer)
    .with_audience(&jwt.audience)
    .with_subject("user-test");
    let other = HS256Key::from_bytes(b"another-secret-of-at-least-32-bytes!!");
    assert_unauthorized(
        Some(other.authenticate(claims.clone()).unwrap()),
        "wrong HS256 key",
    )
    .await;
    let rsa_as_hs = ES256KeyPair::generate();
    assert_unauthorized(Some(rsa_as_hs.sign(claims).unwrap()), "unknown ES256 key").await;
}

#[tokio::test]
async fn an_oversized_token_is_401() {
    let tenant = TestTenant::create("US").await;
    let token = token_with(&tenant, |mut claims| {
        claims.custom.scope = format!("contacts:read {}", "padding ".repeat(2000));
        claims
    });
    assert!(token.len() > 8192);
    assert_unauthorized(Some(token), "oversized").await;
}

#[tokio::test]
async fn a_token_whose_tenant_is_not_a_uuid_is_401() {
    let tenant = TestTenant::create("US").await;
    let token = token_with(&tenant, |mut claims| {
        claims.custom.tid = "acme".into();
        claims
    });
    assert_unauthorized(Some(token), "tid").await;
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_it() {
    let tenant = TestTenant::create("US").await;
    let reader = TestClient::new(Some(tenant.token("contacts:read")));
    let reply = reader.post_contact(&json!({"first_name": "Ada"})).await;
    assert_eq!(reply.status, 403);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("contacts:write"));
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    let writer_only = TestClient::new(Some(tenant.token("contacts:write")));
    assert_eq!(writer_only.get("/api/v1/contacts").await.status, 403);
}

#[tokio::test]
async fn an_anonymous_oversized_body_is_refused_as_unauthenticated_first() {
    let reply = TestClient::anonymous()
        .post_contact(&json!({"first_name": "x".repeat(2 * 1024 * 1024)}))
        .await;
    assert_eq!(reply.status, 401);
}

/// A client-credentials token (RFC 9068: `client_id` is the `sub`) acts as the integration itself;
/// a token issued to a client for a user acts as the user.
#[tokio::test]
async fn an_integration_acting_for_itself_is_recorded_as_an_api_client() {
    let tenant = TestTenant::create("US").await;
    let as_token = |subject: &'static str, client: &'static str| {
        token_with(&tenant, |mut claims| {
            claims.subject = Some(subject.into());
            claims.custom.client_id = Some(client.into());
            claims
        })
    };
    let mut actors = Vec::new();
    for (token, name) in [
        (as_token("sync-bot", "sync-bot"), "Integration"),
        (as_token("alice", "sync-bot"), "Delegated"),
    ] {
        let created = TestClient::new(Some(token))
            .send_json(
                reqwest::Method::POST,
                "/api/v1/contacts",
                &json!({"first_name": name}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json()["id"].as_str().unwrap().to_owned();
        let audit = TestClient::new(Some(tenant.token("audit:read")))
            .get(&format!("/api/v1/audit/events?entity_id={id}"))
            .await
            .json();
        let record = &audit["data"][0];
        actors.push((
            record["actor"].as_str().unwrap().to_owned(),
            record["actor_type"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        actors,
        [
            ("sync-bot".to_owned(), "api_client".to_owned()),
            ("alice".to_owned(), "user".to_owned()),
        ]
    );
}

/// The scheme is matched case-insensitively, with any number of spaces before the token (RFC 9110);
/// another scheme is refused.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let tenant = TestTenant::create("US").await;
    let token = tenant.token("contacts:read");
    for header in [
        format!("Bearer {token}"),
        format!("BEARER {token}"),
        format!("bEaReR   {token}"),
    ] {
        let client = TestClient::new(None);
        let reply = client
            .send(
                client
                    .request(reqwest::Method::GET, "/api/v1/contacts?limit=1")
                    .header("authorization", &header),
            )
            .await;
        assert_eq!(reply.status, 200, "{header:.12}: {}", reply.text);
    }
    let client = TestClient::new(None);
    let basic = client
        .send(
            client
                .request(reqwest::Method::GET, "/api/v1/contacts?limit=1")
                .header("authorization", format!("Basic {token}")),
        )
        .await;
    assert_eq!(basic.status, 401);
}

/// A token must expire, and within `jwt_max_lifetime_seconds` (a day by default) of its issue.
#[tokio::test]
async fn a_token_without_expiry_or_living_too_long_is_refused() {
    let tenant = TestTenant::create("US").await;
    assert_unauthorized(
        Some(token_with(&tenant, |mut claims| {
            claims.expires_at = None;
            claims
        })),
        "no exp",
    )
    .await;
    assert_unauthorized(
        Some(token_with(&tenant, |mut claims| {
            let issued = claims.issued_at.unwrap();
            claims.expires_at = Some(issued + Duration::from_days(30));
            claims
        })),
        "a 30-day token",
    )
    .await;
    let day = token_with(&tenant, |mut claims| {
        let issued = claims.issued_at.unwrap();
        claims.expires_at = Some(issued + Duration::from_hours(23));
        claims
    });
    assert_eq!(
        TestClient::new(Some(day))
            .get("/api/v1/contacts?limit=1")
            .await
            .status,
        200
    );
}

/// A token is only as good as its tenant: one naming no tenant is refused, reads and writes alike.
#[tokio::test]
async fn a_token_for_a_tenant_that_does_not_exist_is_401() {
    let ghost = crm_domain::TenantId::generate();
    let token = crm_platform::auth::issue_hs256_token(
        &harness().jwt,
        "user-test",
        ghost,
        "contacts:read contacts:write",
        std::time::Duration::from_secs(600),
    )
    .unwrap();
    let client = TestClient::new(Some(token));
    let read = client.get("/api/v1/contacts").await;
    assert_eq!(read.status, 401, "{}", read.text);
    let write = client
        .send_json(
            reqwest::Method::POST,
            "/api/v1/contacts",
            &json!({"first_name": "Nobody"}),
        )
        .await;
    assert_eq!(write.status, 401, "{}", write.text);
    assert_eq!(write.json()["type"], "/problems/unauthorized");
}

/// `crm tenant set ID --status suspended` closes the API to the tenant's tokens (403) until it is
/// active again.
#[tokio::test]
async fn a_suspended_tenant_answers_403_until_active_again() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client.create_contact(&json!({"first_name": "Kept"})).await;
    let set_status = async |status: &'static str| {
        tenant
            .set(crm::tenants::TenantUpdate {
                status: Some(status),
                ..Default::default()
            })
            .await;
    };
    set_status("suspended").await;
    let read = client.get_contact(&id).await;
    assert_eq!(read.status, 403, "{}", read.text);
    assert_eq!(read.json()["type"], "/problems/tenant-suspended");
    let write = client
        .send_json(
            reqwest::Method::POST,
            "/api/v1/contacts",
            &json!({"first_name": "Refused"}),
        )
        .await;
    assert_eq!(write.status, 403);
    assert_eq!(crm_http_tests::count_rows("contacts", tenant.id).await, 1);
    set_status("active").await;
    assert_eq!(client.get_contact(&id).await.status, 200);
}

/// What a server read of a tenant is trusted for `tenant_cache_seconds`: a request costs no
/// database read for it (so a suspension applies within that time, not at once).
#[tokio::test]
async fn a_tenants_state_is_read_once_per_period_not_per_request() {
    if crm_http_tests::in_process_only(
        "starts a server of its own with its own tenant cache period",
    ) {
        return;
    }
    let config = crm_http_tests::test_config_with(
        harness().app_url.clone(),
        &[("tenant_cache_seconds", "60"), ("server_timing", "true")],
    );
    let base = crm_http_tests::start_server(config).await;
    let tenant = TestTenant::create("US").await;
    let client = TestClient::at(&base, Some(tenant.token("contacts:read")));
    let first = client.get("/api/v1/contacts?limit=1").await;
    assert_eq!(first.status, 200);
    tenant
        .set(crm::tenants::TenantUpdate {
            status: Some("suspended"),
            ..Default::default()
        })
        .await;
    let second = client.get("/api/v1/contacts?limit=1").await;
    assert_eq!(second.status, 200, "trusted for the period");
    let statements = |reply: &crm_http_tests::Reply| {
        let timing = reply.header("server-timing").unwrap_or_default().to_owned();
        timing
            .split(',')
            .find(|part| part.trim_start().starts_with("db;"))
            .and_then(|part| part.split("desc=\"").nth(1))
            .and_then(|desc| desc.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no database count in {timing:?}"))
    };
    assert!(
        statements(&first) > statements(&second),
        "the first request read the tenant, the second did not: {} and {} database calls",
        statements(&first),
        statements(&second)
    );
}

/// Sends the head of a request that announces a 10 MB body and never sends it; returns the status
/// line of the answer, or `None` when none came within 5 seconds.
async fn answer_without_sending_the_body(
    path: &str,
    authorization: Option<&str>,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = harness()
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let authorization = authorization
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         {authorization}Content-Length: 10000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer[..read]).to_string();
    answer.lines().next().map(str::to_owned)
}

/// A request refused for who sent it (no token) or for how much they send (over their limit) is
/// answered at once, without waiting for, or reading, its body.
#[tokio::test]
async fn refusals_do_not_read_the_body() {
    let anonymous = answer_without_sending_the_body("/api/v1/contacts", None).await;
    assert_eq!(anonymous.as_deref(), Some("HTTP/1.1 401 Unauthorized"));
    let tenant = TestTenant::create("US").await;
    tenant
        .set(crm::tenants::TenantUpdate {
            rate_limits: Some(r#"{"principal_per_minute": 1}"#),
            ..Default::default()
        })
        .await;
    let token = tenant.token("contacts:read contacts:write");
    // Both requests in one rate-limit window (a minute).
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second >= 50 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second)).await;
    }
    let first = TestClient::new(Some(token.clone()))
        .get("/api/v1/contacts?limit=1")
        .await;
    assert_eq!(first.status, 200);
    let limited = answer_without_sending_the_body("/api/v1/contacts", Some(&token)).await;
    assert_eq!(limited.as_deref(), Some("HTTP/1.1 429 Too Many Requests"));
}
