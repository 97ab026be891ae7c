//! `Idempotency-Key`: replays, conflicts and keys in flight.

use crm_http_tests::{count_rows, owner_db, TestClient, TestTenant};
use crm_platform::http::idempotency::principal_key;
use reqwest::Method;
use serde_json::json;

async fn post_with_key(
    tenant: &TestTenant,
    key: &str,
    body: &serde_json::Value,
) -> crm_http_tests::Reply {
    let client = tenant.client();
    client
        .send(
            client
                .request(Method::POST, "/api/v1/contacts")
                .header("idempotency-key", key)
                .json(body),
        )
        .await
}

async fn contact_count(tenant: &TestTenant) -> i64 {
    count_rows("contacts", tenant.id).await
}

#[tokio::test]
async fn a_replay_returns_the_identical_response_and_creates_nothing() {
    let tenant = TestTenant::create("US").await;
    let body = json!({"first_name": "Once", "emails": [{"address": "once@example.com"}]});
    let first = post_with_key(&tenant, "key-1", &body).await;
    assert_eq!(first.status, 201);
    let replay = post_with_key(&tenant, "key-1", &body).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.header("location"), first.header("location"));
    assert_eq!(replay.header("etag"), first.header("etag"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(contact_count(&tenant).await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let tenant = TestTenant::create("US").await;
    assert_eq!(
        post_with_key(&tenant, "key-2", &json!({"first_name": "A"}))
            .await
            .status,
        201
    );
    let reused = post_with_key(&tenant, "key-2", &json!({"first_name": "B"})).await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.json()["type"], "/problems/idempotency-key-reused");
    assert_eq!(contact_count(&tenant).await, 1);
}

#[tokio::test]
async fn keys_are_per_tenant() {
    let one = TestTenant::create("US").await;
    let two = TestTenant::create("US").await;
    let body = json!({"first_name": "Same"});
    let a = post_with_key(&one, "shared-key", &body).await;
    let b = post_with_key(&two, "shared-key", &body).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.json()["id"], b.json()["id"]);
}

/// Two users of one tenant choosing the same key make two requests: neither is answered with the
/// other's response (which would show one user what another created).
#[tokio::test]
async fn keys_are_per_principal() {
    let tenant = TestTenant::create("US").await;
    let as_user = |subject: &str| {
        TestClient::new(Some(
            tenant.token_as(subject, "contacts:read contacts:write"),
        ))
    };
    let post = async |client: &TestClient, name: &str| {
        client
            .send(
                client
                    .request(Method::POST, "/api/v1/contacts")
                    .header("idempotency-key", "everyones-key")
                    .json(&json!({"first_name": name})),
            )
            .await
    };
    let (alice, bob) = (as_user("alice"), as_user("bob"));
    let from_alice = post(&alice, "Alice's").await;
    let from_bob = post(&bob, "Bob's").await;
    assert_eq!(
        (from_alice.status, from_bob.status),
        (201, 201),
        "{}",
        from_bob.text
    );
    assert_ne!(from_alice.json()["id"], from_bob.json()["id"]);
    assert_eq!(from_bob.json()["first_name"], "Bob's");
    assert_eq!(from_bob.header("idempotent-replayed"), None);
    let replay = post(&alice, "Alice's").await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["id"], from_alice.json()["id"]);
    assert_eq!(contact_count(&tenant).await, 2);
}

#[tokio::test]
async fn a_key_still_in_flight_is_409() {
    let tenant = TestTenant::create("US").await;
    // A request with this key is being processed right now (claimed, not yet completed).
    owner_db()
        .await
        .execute(
            "insert into idempotency_keys (tenant_id, key, request_hash, status, locked_until)
             values ($1, $2, 'whatever', 'in_flight', now() + interval '1 minute')",
            &[
                &tenant.id.as_uuid(),
                &principal_key("user-test", "busy-key"),
            ],
        )
        .await
        .unwrap();
    let reply = post_with_key(&tenant, "busy-key", &json!({"first_name": "Busy"})).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.json()["type"], "/problems/idempotency-key-in-flight");
    assert_eq!(contact_count(&tenant).await, 0);
}

#[tokio::test]
async fn an_abandoned_claim_is_retaken_after_its_lock_lapses() {
    let tenant = TestTenant::create("US").await;
    owner_db()
        .await
        .execute(
            "insert into idempotency_keys (tenant_id, key, request_hash, status, locked_until)
             values ($1, $2, 'whatever', 'in_flight', now() - interval '1 second')",
            &[
                &tenant.id.as_uuid(),
                &principal_key("user-test", "crashed-key"),
            ],
        )
        .await
        .unwrap();
    let reply = post_with_key(&tenant, "crashed-key", &json!({"first_name": "Retry"})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[tokio::test]
async fn a_failed_request_releases_its_key_for_a_corrected_retry() {
    let tenant = TestTenant::create("US").await;
    let invalid = post_with_key(&tenant, "fix-me", &json!({"emails": [{"address": "nope"}]})).await;
    assert_eq!(invalid.status, 422);
    let fixed = post_with_key(
        &tenant,
        "fix-me",
        &json!({"emails": [{"address": "yes@example.com"}]}),
    )
    .await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_contact() {
    let tenant = TestTenant::create("US").await;
    let body = json!({"first_name": "Racer"});
    let replies =
        futures::future::join_all((0..8).map(|_| post_with_key(&tenant, "race-key", &body))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(contact_count(&tenant).await, 1);
}

#[tokio::test]
async fn the_longest_key_is_accepted() {
    let tenant = TestTenant::create("US").await;
    let key = "k".repeat(255);
    let body = json!({"first_name": "Long key"});
    assert_eq!(post_with_key(&tenant, &key, &body).await.status, 201);
    let replay = post_with_key(&tenant, &key, &body).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let tenant = TestTenant::create("US").await;
    let reply = post_with_key(
        &tenant,
        &"k".repeat(300),
        &json!({"first_name": "Long key"}),
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.error_fields(), vec!["Idempotency-Key"]);
}

/// A server of its own on a database of its own, with 3-second Idempotency-Key leases, whose
/// contact inserts the returned transaction holds up until it ends.
async fn server_with_inserts_held() -> (
    String,
    TestTenant,
    tokio_postgres::Client,
    tokio_postgres::Client,
) {
    let (owner_url, app_url) = crm_http_tests::fresh_migrated_database().await;
    let base = crm_http_tests::start_server(crm_http_tests::test_config_with(
        app_url,
        &[("idempotency_lease_seconds", "3")],
    ))
    .await;
    let tenant = TestTenant::create_in(&owner_url, "US").await;
    let holder = crm::connect(&owner_url).await.unwrap();
    holder
        .batch_execute("begin; lock table contacts in share mode")
        .await
        .unwrap();
    (
        base,
        tenant,
        holder,
        crm::connect(&owner_url).await.unwrap(),
    )
}

async fn post_at(base: &str, tenant: &TestTenant, key: &str) -> crm_http_tests::Reply {
    let client = TestClient::at(base, Some(tenant.token("contacts:write")));
    client
        .send(
            client
                .request(Method::POST, "/api/v1/contacts")
                .header("idempotency-key", key)
                .json(&json!({"first_name": "Slow"})),
        )
        .await
}

#[tokio::test]
async fn a_claim_never_lapses_while_its_request_runs() {
    if crm_http_tests::in_process_only("holds up the inserts of a database of its own") {
        return;
    }
    let (base, tenant, holder, owner) = server_with_inserts_held().await;
    let first = post_at(&base, &tenant, "slow-key");
    let retry = async {
        // Past the lease: had the running request not renewed it, the retry would take the key.
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        let reply = post_at(&base, &tenant, "slow-key").await;
        holder.batch_execute("commit").await.unwrap();
        reply
    };
    let (first, retry) = tokio::join!(first, retry);
    assert_eq!(retry.status, 409, "still in flight: {}", retry.text);
    assert_eq!(first.status, 201, "{}", first.text);
    let contacts: i64 = owner
        .query_one("select count(*) from contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(contacts, 1);
    let replay = post_at(&base, &tenant, "slow-key").await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn a_request_whose_claim_was_taken_over_commits_nothing() {
    if crm_http_tests::in_process_only("holds up the inserts of a database of its own") {
        return;
    }
    let (base, tenant, holder, owner) = server_with_inserts_held().await;
    let first = post_at(&base, &tenant, "taken-key");
    let take_over = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // What a process that found the claim lapsed would have done.
        let taken = owner
            .execute(
                "update idempotency_keys set claim_token = gen_random_uuid()
                 where tenant_id = $1 and status = 'in_flight'",
                &[&tenant.id.as_uuid()],
            )
            .await
            .unwrap();
        assert_eq!(taken, 1);
        holder.batch_execute("commit").await.unwrap();
    };
    let (first, ()) = tokio::join!(first, take_over);
    assert_eq!(first.status, 409, "{}", first.text);
    let contacts: i64 = owner
        .query_one("select count(*) from contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(contacts, 0, "the request that lost its claim wrote nothing");
}
