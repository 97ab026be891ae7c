//! Rate limiting and the read cache, on the native key-value backends (in-process and Redis).

use crm_http_tests::{
    count_rows, harness, in_process_only, start_server_with, test_config_with, Reply, TestTenant,
};
use crm_platform::edge::kv::KeyValue;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A server of its own with the given limits (per minute): tenant, principal, expensive.
async fn limited_server(kv: KeyValue, tenant: u64, principal: u64, expensive: u64) -> String {
    let (tenant, principal, expensive) = (
        tenant.to_string(),
        principal.to_string(),
        expensive.to_string(),
    );
    let config = test_config_with(
        harness().app_url.clone(),
        &[
            ("rate_limit_enabled", "true"),
            ("rate_limit_tenant_per_minute", &tenant),
            ("rate_limit_principal_per_minute", &principal),
            ("rate_limit_expensive_per_minute", &expensive),
        ],
    );
    start_server_with(config, kv).await
}

/// Waits until a burst of a few seconds cannot straddle two one-minute windows.
async fn away_from_a_window_edge() {
    let second = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second >= 50 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
}

async fn send(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the server answers");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap_or_default(),
    }
}

/// The deployment under test.
fn base() -> &'static str {
    &harness().base_url
}

async fn burst(base: &str, token: &str, path: &str, n: usize) -> Vec<Reply> {
    futures::future::join_all((0..n).map(|_| send(base, token, Method::GET, path, None))).await
}

fn statuses(replies: &[Reply]) -> (usize, usize) {
    let admitted = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies.iter().filter(|r| r.status == 429).count();
    (admitted, refused)
}

/// A tenant whose rate limits are `overrides` (as `crm tenant set --rate-limits` sets them), set
/// before its first request: the deployment under test limits every request, with defaults far
/// above what any test sends, so each test's limits are its tenant's own.
async fn limited_tenant(overrides: &str) -> TestTenant {
    let tenant = TestTenant::create("US").await;
    tenant.set_rate_limits(overrides).await;
    tenant
}

#[tokio::test]
async fn a_burst_above_the_limit_admits_exactly_the_limit() {
    let tenant = limited_tenant(r#"{"tenant_per_minute": 1000, "principal_per_minute": 5}"#).await;
    let id = tenant
        .client()
        .create_contact(&json!({"first_name": "Limited"}))
        .await;
    let token = tenant.token_as("burst", "contacts:read");
    away_from_a_window_edge().await;
    let replies = burst(base(), &token, &format!("/api/v1/contacts/{id}"), 20).await;
    assert_eq!(statuses(&replies), (5, 15));

    let admitted = replies.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(
        admitted.header("ratelimit-policy"),
        Some("\"tenant\";q=1000;w=60, \"principal\";q=5;w=60")
    );
    assert!(admitted
        .header("ratelimit")
        .unwrap()
        .starts_with("\"principal\";r="));
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.json()["type"], "/problems/rate-limited");
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let state = refused.header("ratelimit").unwrap();
    assert!(state.starts_with("\"principal\";r=0;t="), "{state}");
    assert!(refused.header("ratelimit-policy").is_some());
}

#[tokio::test]
async fn a_refused_request_does_no_work() {
    let tenant = limited_tenant(r#"{"principal_per_minute": 2}"#).await;
    let token = tenant.token_as("writer", "contacts:read contacts:write");
    away_from_a_window_edge().await;
    let mut created = 0;
    for n in 0..5 {
        let reply = send(
            base(),
            &token,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"first_name": format!("P{n}")})),
        )
        .await;
        created += usize::from(reply.status == 201);
    }
    assert_eq!(created, 2);
    assert_eq!(count_rows("contacts", tenant.id).await, 2);
    assert_eq!(count_rows("audit_log", tenant.id).await, 2);
}

#[tokio::test]
async fn expensive_routes_have_their_own_stricter_limit() {
    let tenant = limited_tenant(r#"{"expensive_per_minute": 3}"#).await;
    let id = tenant
        .client()
        .create_contact(&json!({"first_name": "Searchable"}))
        .await;
    let token = tenant.token_as("searcher", "contacts:read");
    away_from_a_window_edge().await;
    let searches = burst(base(), &token, "/api/v1/contacts?limit=5", 6).await;
    assert_eq!(statuses(&searches), (3, 3));
    assert!(searches[0]
        .header("ratelimit-policy")
        .unwrap()
        .contains("\"expensive\";q=3;w=60"));
    // Reads by id are not expensive and still pass.
    assert_eq!(
        send(
            base(),
            &token,
            Method::GET,
            &format!("/api/v1/contacts/{id}"),
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn a_tenant_override_replaces_the_default() {
    let tenant = limited_tenant(r#"{"principal_per_minute": 3}"#).await;
    let id = tenant
        .client()
        .create_contact(&json!({"first_name": "Override"}))
        .await;
    let token = tenant.token_as("reader", "contacts:read");
    away_from_a_window_edge().await;
    let replies = burst(base(), &token, &format!("/api/v1/contacts/{id}"), 10).await;
    assert_eq!(statuses(&replies), (3, 7));
    let other = TestTenant::create("US").await;
    let other_id = other
        .client()
        .create_contact(&json!({"first_name": "Default"}))
        .await;
    let replies = burst(
        base(),
        &other.token_as("reader", "contacts:read"),
        &format!("/api/v1/contacts/{other_id}"),
        10,
    )
    .await;
    assert_eq!(
        statuses(&replies),
        (10, 0),
        "other tenants keep the default"
    );
}

#[tokio::test]
async fn principals_are_counted_apart() {
    let tenant = limited_tenant(r#"{"principal_per_minute": 2}"#).await;
    let id = tenant
        .client()
        .create_contact(&json!({"first_name": "Shared"}))
        .await;
    away_from_a_window_edge().await;
    let path = format!("/api/v1/contacts/{id}");
    let alice = tenant.token_as("alice", "contacts:read");
    let bob = tenant.token_as("bob", "contacts:read");
    assert_eq!(statuses(&burst(base(), &alice, &path, 4).await), (2, 2));
    assert_eq!(statuses(&burst(base(), &bob, &path, 4).await), (2, 2));
}

/// Each component counts its own routes against the same tenant and principal.
#[tokio::test]
async fn every_component_limits_its_routes() {
    let tenant =
        limited_tenant(r#"{"principal_per_minute": 2, "expensive_per_minute": 1000}"#).await;
    for (path, scope) in [
        ("/api/v1/contacts?limit=1", "contacts:read"),
        ("/api/v1/calls?limit=1", "calls:read"),
        ("/api/v1/audit/events?limit=1", "audit:read"),
        ("/api/v1/webhooks", "webhooks:manage"),
    ] {
        // A principal per route: each route's component is limited on its own count.
        let token = tenant.token_as(path, scope);
        away_from_a_window_edge().await;
        let replies = burst(base(), &token, path, 3).await;
        assert_eq!(statuses(&replies), (2, 1), "{path}: {:?}", replies[0].text);
    }
}

/// On Redis (the native server's Redis store; on Spin, `redis_url`) a request's counters are
/// raised by one script, and each window's key expires on its own: a tenant leaves one key per
/// counter, under its own prefix, none without an expiry.
#[tokio::test]
async fn redis_counters_are_namespaced_and_expire() {
    let url = std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let base = if harness().in_process {
        limited_server(KeyValue::redis(&url).await, 1000, 2, 1000).await
    } else {
        harness().base_url.clone()
    };
    let tenant = limited_tenant(r#"{"principal_per_minute": 2}"#).await;
    away_from_a_window_edge().await;
    for subject in ["alice", "bob"] {
        let token = tenant.token_as(subject, "contacts:read");
        let reply = send(&base, &token, Method::GET, "/api/v1/contacts?limit=1", None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("rl:{}:*", tenant.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    // The tenant's counter, and each principal's: the list is an expensive route too.
    assert_eq!(keys.len(), 1 + 2 * 2, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!((1..=120).contains(&ttl), "{key} expires in {ttl} s");
    }
}

#[tokio::test]
async fn reads_hit_the_cache_after_the_first_and_see_a_write_at_once() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({"first_name": "Cached"}))
        .await;
    let first = client.get_contact(&id).await;
    assert_eq!(first.header("cache-status"), Some("crm; fwd=miss"));
    let second = client.get_contact(&id).await;
    assert_eq!(second.header("cache-status"), Some("crm; hit"));
    assert_eq!(second.json(), first.json());

    assert_eq!(
        client
            .patch_contact(&id, &json!({"last_name": "Fresh"}), None)
            .await
            .status,
        200
    );
    let after_write = client.get_contact(&id).await;
    assert_eq!(after_write.json()["last_name"], "Fresh");
    assert_eq!(after_write.json()["version"], 2);
    assert_eq!(
        client.get_contact(&id).await.header("cache-status"),
        Some("crm; hit")
    );

    // If-None-Match is answered from the cache.
    let not_modified = client
        .send(
            client
                .request(Method::GET, &format!("/api/v1/contacts/{id}"))
                .header("if-none-match", "\"v2\""),
        )
        .await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("cache-status"), Some("crm; hit"));

    // Deletes and erasure invalidate too.
    client
        .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{id}")))
        .await;
    assert_eq!(client.get_contact(&id).await.status, 404);
    assert!(client
        .get(&format!("/api/v1/contacts/{id}?include_deleted=true"))
        .await
        .json()["deleted_at"]
        .is_string());
    let eraser = crm_http_tests::TestClient::new(Some(tenant.token("contacts:erase")));
    eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{id}/erase")))
        .await;
    assert_eq!(client.get_contact(&id).await.status, 404);
}

#[tokio::test]
async fn cached_contacts_never_reach_another_tenant() {
    let owner = TestTenant::create("US").await;
    let id = owner
        .client()
        .create_contact(&json!({"first_name": "Mine"}))
        .await;
    owner.client().get_contact(&id).await;
    assert_eq!(
        owner.client().get_contact(&id).await.header("cache-status"),
        Some("crm; hit")
    );
    let stranger = TestTenant::create("US").await;
    assert_eq!(stranger.client().get_contact(&id).await.status, 404);
}

#[tokio::test]
async fn a_broken_store_degrades_to_no_caching_and_no_limiting_not_errors() {
    if in_process_only("starts servers of its own with their own limits and stores") {
        return;
    }
    // Nothing listens on port 1.
    let base = limited_server(KeyValue::redis("redis://127.0.0.1:1").await, 1, 1, 1).await;
    let tenant = TestTenant::create("US").await;
    let token = tenant.token("contacts:read contacts:write");
    let created = send(
        &base,
        &token,
        Method::POST,
        "/api/v1/contacts",
        Some(json!({"first_name": "Resilient"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let read = send(
            &base,
            &token,
            Method::GET,
            &format!("/api/v1/contacts/{id}"),
            None,
        )
        .await;
        assert_eq!(
            read.status, 200,
            "limits of 1 are not enforced without a store"
        );
        assert_eq!(read.header("cache-status"), Some("crm; fwd=miss"));
        assert!(read.header("ratelimit").is_none());
        assert!(read.header("ratelimit-policy").is_some());
    }
}

#[tokio::test]
async fn redis_shares_counters_and_cache_between_servers() {
    if in_process_only("starts servers of its own with their own limits and stores") {
        return;
    }
    let url = std::env::var("CRM_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let one = limited_server(KeyValue::redis(&url).await, 1000, 6, 1000).await;
    let two = limited_server(KeyValue::redis(&url).await, 1000, 6, 1000).await;
    let tenant = TestTenant::create("US").await;
    let token = tenant.token("contacts:read contacts:write");
    let id = tenant
        .client()
        .create_contact(&json!({"first_name": "Replicated"}))
        .await;
    away_from_a_window_edge().await;
    let path = format!("/api/v1/contacts/{id}");
    let (a, b) =
        futures::future::join(burst(&one, &token, &path, 8), burst(&two, &token, &path, 8)).await;
    let admitted = statuses(&a).0 + statuses(&b).0;
    assert_eq!(
        admitted, 6,
        "two replicas on one Redis store share one limit"
    );
    // One server's fill is the other's hit (another principal: the first one's limit is spent).
    let reader = tenant.token_as("reader", "contacts:read");
    let filled = send(&one, &reader, Method::GET, &path, None).await;
    assert_eq!(filled.status, 200);
    let shared = send(&two, &reader, Method::GET, &path, None).await;
    assert_eq!(shared.header("cache-status"), Some("crm; hit"));
    assert_eq!(shared.json(), filled.json());
}

/// A batch counts each of its operations against the expensive limit, not one per call: a batch
/// that would exhaust it is refused whole, and one larger than a whole window admits is a 422.
#[tokio::test]
async fn a_batch_counts_its_operations_against_the_expensive_limit() {
    let tenant = limited_tenant(r#"{"expensive_per_minute": 10}"#).await;
    let creates = |n: usize| {
        let operations: Vec<_> = (0..n)
            .map(|i| json!({"op": "create", "contact": {"first_name": format!("B{i}")}}))
            .collect();
        json!({ "operations": operations })
    };
    let writer = tenant.token_as("batcher", "contacts:read contacts:write");
    away_from_a_window_edge().await;
    let first = send(
        base(),
        &writer,
        Method::POST,
        "/api/v1/contacts/batch",
        Some(creates(8)),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = send(
        base(),
        &writer,
        Method::POST,
        "/api/v1/contacts/batch",
        Some(creates(5)),
    )
    .await;
    assert_eq!(second.status, 429, "{}", second.text);
    assert!(second.header("retry-after").is_some());
    assert_eq!(count_rows("contacts", tenant.id).await, 8);

    let other = tenant.token_as("another-batcher", "contacts:read contacts:write");
    let whole = send(
        base(),
        &other,
        Method::POST,
        "/api/v1/contacts/batch",
        Some(creates(11)),
    )
    .await;
    assert_eq!(whole.status, 422, "{}", whole.text);
    assert_eq!(whole.error_fields(), ["/operations"]);
    assert_eq!(count_rows("contacts", tenant.id).await, 8);
}
