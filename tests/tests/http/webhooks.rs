//! Webhooks through the HTTP interface, delivered to real receivers on loopback: subscriptions,
//! Standard Webhooks signatures (with rotation), retries, dead letters and redelivery, disabling,
//! at-least-once across crashes and concurrent dispatchers, wake-ups over Redis, SSRF guards.
//!
//! The suite's dispatchers use the schedule `0,1,1` (seconds) and a 2 s timeout.

use crm_http_tests::receiver::{verify, Answer, Received, Receiver};
use crm_http_tests::{
    drive_retries, fresh_migrated_database, harness, in_process_only, start_dispatcher,
    start_server, test_config_with, Reply, TestClient, TestTenant, TEST_OPERATOR_TOKEN,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SCOPES: &str = "webhooks:manage contacts:read contacts:write";
const WAIT: Duration = Duration::from_secs(15);

/// A client of the tenant's webhooks and contacts. Retries need periodic dispatch passes: this
/// binary has them on both tiers ([`drive_retries`]); `wakeups.rs` shows what a wake-up does alone.
fn client_of(tenant: &TestTenant, base_url: Option<&str>) -> TestClient {
    drive_retries();
    let token = Some(tenant.token(SCOPES));
    match base_url {
        Some(base) => TestClient::at(base, token),
        None => TestClient::new(token),
    }
}

/// Creates a subscription; returns its id and secret.
async fn subscribe(client: &TestClient, url: &str, event_types: &[&str]) -> (String, String) {
    let reply = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": url, "event_types": event_types, "description": "test receiver"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn create_contact(client: &TestClient, email: &str) -> String {
    let reply = client
        .send_json(
            Method::POST,
            "/api/v1/contacts",
            &json!({"first_name": "Ada", "emails": [{"address": email}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["id"].as_str().unwrap().to_owned()
}

fn unique_email() -> String {
    format!("hook-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// The subscription's deliveries (newest first), once `done` says they are as expected.
async fn deliveries_when(
    client: &TestClient,
    subscription: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = client
            .get(&format!("/api/v1/webhooks/{subscription}/deliveries"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let deliveries = reply.json()["data"].as_array().unwrap().clone();
        if done(&deliveries) {
            return deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries never settled: {deliveries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_status(status: &'static str, count: usize) -> impl Fn(&[Value]) -> bool {
    move |d| d.len() == count && d.iter().all(|d| d["status"] == status)
}

#[tokio::test]
async fn subscriptions_are_managed_and_their_secret_is_shown_once() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let reply = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "event_types": ["contact.*", "call.logged"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let created = reply.json();
    let id = created["id"].as_str().unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["active"], true);
    assert_eq!(created["event_types"], json!(["contact.*", "call.logged"]));
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/webhooks/{id}").as_str())
    );

    let fetched = client.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert!(fetched.json().get("secret").is_none(), "{}", fetched.text);
    assert!(!fetched.text.contains(created["secret"].as_str().unwrap()));
    let etag = fetched.header("etag").unwrap().to_owned();

    let patched = client
        .send(
            client
                .request(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .header("if-match", &etag)
                .json(&json!({"event_types": ["*"], "description": "all events"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["event_types"], json!(["*"]));
    assert_eq!(patched.json()["version"], 2);
    let stale = client
        .send(
            client
                .request(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
                .header("if-match", &etag)
                .json(&json!({"active": false})),
        )
        .await;
    assert_eq!(stale.status, 412);

    let listed = client.get("/api/v1/webhooks").await;
    assert_eq!(listed.json()["data"][0]["id"], id);

    // Another tenant sees nothing of it; a token without the scope is refused.
    let other = client_of(&TestTenant::create("US").await, None);
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        assert_eq!(other.get(&path).await.status, 404, "{path}");
    }
    assert_eq!(
        other
            .send(other.request(Method::POST, &format!("/api/v1/webhooks/{id}/ping")))
            .await
            .status,
        404
    );
    assert_eq!(
        other.get("/api/v1/webhooks").await.json()["data"],
        json!([])
    );
    let contacts_only = TestClient::new(Some(tenant.token("contacts:read")));
    assert_eq!(contacts_only.get("/api/v1/webhooks").await.status, 403);

    let deleted = client
        .send(client.request(Method::DELETE, &format!("/api/v1/webhooks/{id}")))
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        client.get(&format!("/api/v1/webhooks/{id}")).await.status,
        404
    );
}

#[tokio::test]
async fn bad_subscriptions_name_the_field_at_fault() {
    let client = client_of(&TestTenant::create("US").await, None);
    let reply = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": "ftp://example.com", "event_types": ["contact.created", "contact.creatd"]}),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_fields(), ["/url", "/event_types/1"]);
    let unknown = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": "https://example.com/hook", "event_types": ["*"], "secret": "mine"}),
        )
        .await;
    assert!(matches!(unknown.status, 400 | 422), "{}", unknown.text);
    assert_eq!(
        client.get("/api/v1/webhooks").await.json()["data"],
        json!([])
    );
}

#[tokio::test]
async fn ssrf_targets_are_refused_at_registration() {
    let client = client_of(&TestTenant::create("US").await, None);
    // This machine's own name: resolved, not recognised by name (it names no special host).
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("a host name")
        .trim()
        .to_owned();
    let resolved: Vec<std::net::IpAddr> = tokio::net::lookup_host((hostname.as_str(), 0))
        .await
        .expect("the machine's own name resolves")
        .map(|a| a.ip())
        .collect();
    assert!(
        resolved
            .iter()
            .all(|ip| crm_domain::webhook::is_forbidden_address(*ip)),
        "{hostname} resolves to {resolved:?}: this test needs a name that resolves to this machine"
    );
    let by_name = format!("https://{hostname}:8443/hook");
    let mut refused = vec![
        ("https://10.0.0.1/hook", "forbidden_address"),
        ("https://127.0.0.2/hook", "forbidden_address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "forbidden_address",
        ),
        ("https://[::1]/hook", "forbidden_address"),
        ("https://localhost/hook", "forbidden_address"),
        ("https://metadata.google.internal/", "forbidden_address"),
        ("https://localhost.localdomain/hook", "forbidden_address"),
        ("https://api.localhost/hook", "forbidden_address"),
        ("https://printer.local/hook", "forbidden_address"),
        ("https://[::ffff:10.0.0.1]/hook", "forbidden_address"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "forbidden_address"),
        ("https://100.64.0.1/hook", "forbidden_address"),
        ("https://198.18.0.1/hook", "forbidden_address"),
        ("https://240.0.0.1/hook", "forbidden_address"),
        ("http://example.com/hook", "insecure_url"),
    ];
    // Resolving at registration is the native server's; on Spin, block_networks stops it at send.
    if harness().in_process {
        refused.push((&by_name, "forbidden_address"));
    }
    for (url, code) in refused {
        let reply = client
            .send_json(
                Method::POST,
                "/api/v1/webhooks",
                &json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(reply.status, 422, "{url}: {}", reply.text);
        let error = &reply.json()["errors"][0];
        assert_eq!(
            (error["field"].as_str(), error["code"].as_str()),
            (Some("/url"), Some(code)),
            "{url}"
        );
    }
    assert_eq!(
        client.get("/api/v1/webhooks").await.json()["data"],
        json!([])
    );
}

#[tokio::test]
async fn committed_events_reach_matching_subscribers_signed() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    let (contacts_sub, secret) =
        subscribe(&client, &receiver.url("/contacts"), &["contact.*"]).await;
    let (_calls_sub, _) = subscribe(&client, &receiver.url("/calls"), &["call.logged"]).await;
    let contact = create_contact(&client, &unique_email()).await;

    let received = receiver.wait_for(1, WAIT).await;
    let message = &received[0];
    assert_eq!(message.path, "/contacts");
    assert_eq!(message.header("content-type"), "application/json");
    assert!(verify(&secret, message), "the signature does not verify");
    let body = message.json();
    assert_eq!(body["type"], "contact.created");
    assert_eq!(body["data"]["id"], contact.as_str());
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    // The body is the contact as the API returns it.
    let api_view = client
        .get(&format!("/api/v1/contacts/{contact}"))
        .await
        .json();
    assert_eq!(body["data"], api_view);

    // A forged or tampered message does not verify.
    let mut tampered = message.clone();
    let mut body = message.body.to_vec();
    body.extend_from_slice(b" ");
    tampered.body = bytes::Bytes::from(body);
    assert!(!verify(&secret, &tampered));

    let deliveries = deliveries_when(&client, &contacts_sub, all_status("succeeded", 1)).await;
    assert_eq!(deliveries[0]["event_id"], message.id());
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["last_status_code"], 204);
    // Nothing went to the call subscriber.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    let (id, old_secret) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    let rotated = client
        .send(client.request(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        ))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let expires = rotated.json()["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let overlap = chrono::DateTime::parse_from_rfc3339(&expires)
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp();
    assert!((86_300..=86_400).contains(&overlap), "{overlap}");

    create_contact(&client, &unique_email()).await;
    let message = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(message.header("webhook-signature").split(' ').count(), 2);
    assert!(
        verify(&new_secret, &message),
        "the new secret does not verify"
    );
    assert!(
        verify(&old_secret, &message),
        "the old secret does not verify"
    );
}

#[tokio::test]
async fn failures_and_timeouts_are_retried_with_the_same_webhook_id() {
    // Relies on the suite's schedule (0,1,1), which the Spin tier's deployment shares.
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    receiver.answer_next([
        Answer::status(500),
        // Longer than the 2 s per-attempt timeout.
        Answer::status(200).after(Duration::from_secs(4)),
    ]);
    let (id, secret) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&client, &unique_email()).await;

    let received = receiver.wait_for(3, WAIT).await;
    let ids: HashSet<&str> = received.iter().map(Received::id).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across attempts");
    assert!(received.iter().all(|m| verify(&secret, m)));
    // Retries wait their turn of the schedule (1 s each here).
    assert!(received[1].at - received[0].at >= Duration::from_millis(900));
    let deliveries = deliveries_when(&client, &id, all_status("succeeded", 1)).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["attempts"], 3);
    let history = delivery["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["status_code"], 500);
    assert_eq!(history[0]["error"], "http_status");
    assert_eq!(history[1]["status_code"], Value::Null);
    assert_eq!(history[1]["error"], "timeout");
    assert_eq!(history[2]["status_code"], 204);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "nothing is sent after success"
    );
}

#[tokio::test]
async fn exhausted_deliveries_become_dead_letters_that_can_be_redelivered() {
    // Relies on the suite's schedule (0,1,1), which the Spin tier's deployment shares.
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    receiver.answer_always(Answer::status(503));
    let (id, _) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    let started = chrono::Utc::now();
    create_contact(&client, &unique_email()).await;
    create_contact(&client, &unique_email()).await;

    let dead = deliveries_when(&client, &id, all_status("dead", 2)).await;
    assert_eq!(receiver.received().len(), 6, "three attempts each");
    assert!(dead
        .iter()
        .all(|d| d["attempts"] == 3 && d["last_status_code"] == 503));
    let filtered = client
        .get(&format!(
            "/api/v1/webhooks/{id}/deliveries?status=dead&limit=1"
        ))
        .await
        .json();
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    assert!(filtered["next_cursor"].is_string());

    // One delivery again, by id: same webhook-id.
    receiver.answer_always(Answer::status(204));
    let first = dead[1]["id"].as_str().unwrap();
    let redelivered = client
        .send(client.request(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/deliveries/{first}/redeliver"),
        ))
        .await;
    assert_eq!(redelivered.status, 202, "{}", redelivered.text);
    let message = receiver.wait_for(7, WAIT).await.remove(6);
    assert_eq!(message.id(), dead[1]["event_id"].as_str().unwrap());

    // Every remaining dead letter of a time range.
    let range = client
        .send_json(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/deliveries/redeliver"),
            &json!({"from": started.to_rfc3339()}),
        )
        .await;
    assert_eq!(range.status, 202, "{}", range.text);
    assert_eq!(range.json()["redelivered"], 1);
    deliveries_when(&client, &id, all_status("succeeded", 2)).await;
    let bad = client
        .send_json(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/deliveries/redeliver"),
            &json!({"from": "yesterday"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.error_fields(), ["/from"]);
}

#[tokio::test]
async fn gone_disables_the_subscription_and_an_event_says_so() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let gone = Receiver::start().await;
    gone.answer_always(Answer::status(410));
    let watcher = Receiver::start().await;
    let (id, _) = subscribe(&client, &gone.url("/gone"), &["contact.created"]).await;
    let (_, watcher_secret) =
        subscribe(&client, &watcher.url("/watch"), &["webhook.disabled"]).await;
    create_contact(&client, &unique_email()).await;

    let notice = watcher.wait_for(1, WAIT).await.remove(0);
    assert!(verify(&watcher_secret, &notice));
    assert_eq!(notice.json()["type"], "webhook.disabled");
    assert_eq!(notice.json()["data"]["id"], id.as_str());
    assert_eq!(notice.json()["data"]["disabled_reason"], "gone");
    let subscription = client.get(&format!("/api/v1/webhooks/{id}")).await.json();
    assert_eq!(subscription["active"], false);
    assert_eq!(subscription["disabled_reason"], "gone");
    assert_eq!(gone.received().len(), 1, "410 is not retried");

    // While disabled nothing is sent; pinging says why; re-enabling resumes.
    create_contact(&client, &unique_email()).await;
    let ping = client
        .send(client.request(Method::POST, &format!("/api/v1/webhooks/{id}/ping")))
        .await;
    assert_eq!(ping.status, 409);
    gone.answer_always(Answer::status(204));
    let enabled = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            &json!({"active": true}),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.json()["disabled_reason"], Value::Null);
    create_contact(&client, &unique_email()).await;
    let received = gone.wait_for(2, WAIT).await;
    assert_eq!(received[1].json()["type"], "contact.created");
}

#[tokio::test]
async fn a_ping_reaches_only_its_subscription() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&client, &receiver.url("/pinged"), &["contact.deleted"]).await;
    let (other, _) = subscribe(&client, &receiver.url("/other"), &["contact.*", "call.*"]).await;
    let reply = client
        .send(client.request(Method::POST, &format!("/api/v1/webhooks/{id}/ping")))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let delivery = reply.json()["id"].as_str().unwrap().to_owned();
    let message = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(message.path, "/pinged");
    assert_eq!(message.json()["type"], "webhook.ping");
    assert!(verify(&secret, &message));
    let deadline = Instant::now() + WAIT;
    let settled = loop {
        let shown = client
            .get(&format!("/api/v1/webhooks/{id}/deliveries/{delivery}"))
            .await
            .json();
        if shown["status"] == "succeeded" || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(settled["last_status_code"], 204);
    assert!(settled["last_duration_ms"].as_i64().unwrap() >= 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        client
            .get(&format!("/api/v1/webhooks/{other}/deliveries"))
            .await
            .json()["data"],
        json!([])
    );
}

/// A database, server (no dispatcher) and tenant of a test's own, so that nothing else dispatches.
struct Isolated {
    owner_url: String,
    app_url: String,
    base_url: String,
    tenant: TestTenant,
    client: TestClient,
}

/// `None` against a live deployment, whose database and dispatchers a test cannot own.
async fn isolated(overrides: &[(&str, &str)]) -> Option<Isolated> {
    if in_process_only("needs a database, server and dispatchers of its own") {
        return None;
    }
    let (owner_url, app_url) = fresh_migrated_database().await;
    let base_url = start_server(test_config_with(app_url.clone(), overrides)).await;
    let tenant = TestTenant::create_in(&owner_url, "US").await;
    let client = client_of(&tenant, Some(&base_url));
    Some(Isolated {
        owner_url,
        app_url,
        base_url,
        tenant,
        client,
    })
}

#[tokio::test]
async fn a_crash_between_commit_and_send_loses_nothing() {
    let Some(world) = isolated(&[]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&world.client, &unique_email()).await;
    // Committed, and no dispatcher is running: nothing is sent yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());

    // A dispatcher fans the event out, claims its delivery and dies before sending.
    let db = crm_platform::store::db::Db::connect(&world.app_url).unwrap();
    assert!(crm_delivery::store::fan_out(&db, 10).await.unwrap() >= 1);
    let claimed = crm_delivery::store::claim(&db, 10, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(claimed);

    // The next dispatcher sends it once the dead one's lease has run out.
    let dispatcher = start_dispatcher(test_config_with(world.app_url.clone(), &[]));
    let received = receiver.wait_for(1, WAIT).await;
    let deliveries = deliveries_when(&world.client, &id, all_status("succeeded", 1)).await;
    assert_eq!(deliveries[0]["attempts"], 2, "the crashed attempt counts");
    assert_eq!(received[0].json()["type"], "contact.created");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
    dispatcher.abort();
}

#[tokio::test]
async fn concurrent_dispatchers_never_send_one_delivery_twice_at_once() {
    let Some(world) = isolated(&[]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.answer_always(Answer::status(204).after(Duration::from_millis(200)));
    let (id, _) = subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    for _ in 0..24 {
        create_contact(&world.client, &unique_email()).await;
    }
    // Two dispatcher loops and two operator dispatch calls, all at once.
    let config = test_config_with(world.app_url.clone(), &[]);
    let loops = [start_dispatcher(config.clone()), start_dispatcher(config)];
    let operator = TestClient::at(&world.base_url, Some(TEST_OPERATOR_TOKEN.into()));
    let calls = futures::future::join(
        operator.send(operator.request(Method::POST, "/api/v1/webhooks/dispatch")),
        operator.send(operator.request(Method::POST, "/api/v1/webhooks/dispatch")),
    );
    let (a, b): (Reply, Reply) = calls.await;
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.text, b.text);
    let received = receiver.wait_for(24, WAIT).await;
    deliveries_when(&world.client, &id, all_status("succeeded", 24)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.overlaps(),
        0,
        "a delivery was being sent twice at once"
    );
    let ids: HashSet<String> = received.iter().map(|m| m.id().to_owned()).collect();
    assert_eq!(ids.len(), 24);
    assert_eq!(
        receiver.received().len(),
        24,
        "every delivery exactly once here"
    );
    for dispatcher in loops {
        dispatcher.abort();
    }
}

#[tokio::test]
async fn the_dispatch_route_is_for_the_operator_only() {
    let Some(world) = isolated(&[]).await else {
        return;
    };
    let anonymous = TestClient::at(&world.base_url, None);
    let tenant_token = &world.client;
    let wrong = TestClient::at(&world.base_url, Some("x".repeat(40)));
    for client in [&anonymous, tenant_token, &wrong] {
        let reply = client
            .send(client.request(Method::POST, "/api/v1/webhooks/dispatch"))
            .await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
}

#[tokio::test]
async fn with_redis_down_deliveries_are_only_delayed() {
    // Wake-ups go to a Redis that is not there; the mutation still succeeds.
    let Some(world) = isolated(&[("redis_url", "redis://127.0.0.1:1")]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    let contact = create_contact(&world.client, &unique_email()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    // The periodic dispatch (a scheduler calling the operator route) delivers it.
    let operator = TestClient::at(&world.base_url, Some(TEST_OPERATOR_TOKEN.into()));
    let summary = operator
        .send(operator.request(Method::POST, "/api/v1/webhooks/dispatch"))
        .await;
    assert_eq!(summary.status, 200, "{}", summary.text);
    assert_eq!(summary.json()["succeeded"], 1);
    let message = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(message.json()["data"]["id"], contact.as_str());
}

#[tokio::test]
async fn redis_wakeups_reach_a_dispatcher_in_another_process() {
    let redis = "redis://127.0.0.1:6379";
    let Some(world) = isolated(&[("redis_url", redis)]).await else {
        return;
    };
    // A dispatcher elsewhere whose periodic pass is an hour away: only a wake-up can move it.
    let config = test_config_with(world.app_url.clone(), &[("redis_url", redis)]);
    let app = std::sync::Arc::new(
        crm_platform::App::new(config, crm_platform::edge::kv::KeyValue::memory()).unwrap(),
    );
    let dispatcher = tokio::spawn(crm::dispatcher::run(app, Duration::from_secs(3600)));
    // The first pass runs at start; let it finish and the subscription settle.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let receiver = Receiver::start().await;
    subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    let started = Instant::now();
    create_contact(&world.client, &unique_email()).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    dispatcher.abort();
}

#[tokio::test]
async fn deliveries_recheck_the_address_when_they_are_sent() {
    // Registered while the operator allowed loopback; dispatched after the allowance was removed.
    let Some(world) = isolated(&[]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&world.client, &unique_email()).await;
    let strict = test_config_with(world.app_url.clone(), &[("webhook_local_hosts", "")]);
    let dispatcher = start_dispatcher(strict);
    let dead = deliveries_when(&world.client, &id, all_status("dead", 1)).await;
    assert_eq!(dead[0]["last_error"], "blocked_address", "{}", dead[0]);
    assert!(receiver.received().is_empty());
    dispatcher.abort();
}

#[tokio::test]
async fn a_subscription_failing_too_long_is_disabled() {
    let overrides = [
        ("webhook_disable_after_seconds", "1"),
        ("webhook_retry_schedule", "0,1,1,1,1,1"),
    ];
    let Some(world) = isolated(&overrides).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.answer_always(Answer::status(500));
    let (id, _) = subscribe(&world.client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&world.client, &unique_email()).await;
    let dispatcher = start_dispatcher(test_config_with(world.app_url.clone(), &overrides));
    let dead = deliveries_when(&world.client, &id, all_status("dead", 1)).await;
    let subscription = world
        .client
        .get(&format!("/api/v1/webhooks/{id}"))
        .await
        .json();
    assert_eq!(subscription["active"], false);
    assert_eq!(subscription["disabled_reason"], "failing");
    let attempts = dead[0]["attempts"].as_i64().unwrap();
    assert!(
        (2..6).contains(&attempts),
        "disabled before the schedule ran out: {attempts}"
    );
    let auditor = TestClient::at(&world.base_url, Some(world.tenant.token("audit:read")));
    let audit = auditor
        .get(&format!(
            "/api/v1/audit/events?entity_type=webhook&entity_id={id}"
        ))
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let records = audit.json()["data"].as_array().unwrap().clone();
    assert!(
        records
            .iter()
            .any(|r| r["actor"] == "system:webhook-dispatcher" && r["action"] == "disable"),
        "{}",
        audit.text
    );
    dispatcher.abort();
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    receiver.answer_next([Answer::status(429).header("retry-after", "3")]);
    subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&client, &unique_email()).await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(received[0].id(), received[1].id());
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(2900),
        "retried after {waited:?}, not 3 s"
    );
}

#[tokio::test]
async fn an_erasure_scrubs_what_is_still_to_be_sent() {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(tenant.token(&format!("{SCOPES} contacts:erase"))));
    let receiver = Receiver::start().await;
    // The first attempt fails, so the delivery is still pending when the contact is erased.
    receiver.answer_next([Answer::status(500)]);
    let (id, _) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    let email = unique_email();
    let contact = create_contact(&client, &email).await;
    receiver.wait_for(1, WAIT).await;
    let erased = client
        .send(client.request(Method::POST, &format!("/api/v1/contacts/{contact}/erase")))
        .await;
    assert_eq!(erased.status, 204, "{}", erased.text);
    let received = receiver.wait_for(2, WAIT).await;
    assert!(String::from_utf8_lossy(&received[0].body).contains(&email));
    let retried = String::from_utf8_lossy(&received[1].body).to_string();
    assert!(!retried.contains(&email), "{retried}");
    assert_eq!(
        received[1].json()["data"],
        json!({"id": contact, "erased": true})
    );
    deliveries_when(&client, &id, all_status("succeeded", 1)).await;
}

#[tokio::test]
async fn a_tenant_has_at_most_a_hundred_subscriptions() {
    let client = client_of(&TestTenant::create("US").await, None);
    let attempts = (0..101).map(|n| {
        let client = &client;
        async move {
            client
                .send_json(
                    Method::POST,
                    "/api/v1/webhooks",
                    &json!({"url": format!("https://93.184.216.34/{n}"), "event_types": ["call.deleted"]}),
                )
                .await
                .status
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        100,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&409));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let elsewhere = Receiver::start().await;
    let receiver = Receiver::start().await;
    receiver.answer_next([Answer::status(307).header("location", &elsewhere.url("/moved"))]);
    let (id, _) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&client, &unique_email()).await;
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(
        received[0].id(),
        received[1].id(),
        "the redirect counted as a failure and was retried"
    );
    let deliveries = deliveries_when(&client, &id, all_status("succeeded", 1)).await;
    assert_eq!(deliveries[0]["history"][0]["status_code"], 307);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn turning_a_subscription_off_dead_letters_what_it_had_pending() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let receiver = Receiver::start().await;
    // The next attempt is a minute away: the delivery is pending when the subscription goes off.
    receiver.answer_always(Answer::status(503).header("retry-after", "60"));
    let (id, _) = subscribe(&client, &receiver.url("/hook"), &["contact.created"]).await;
    create_contact(&client, &unique_email()).await;
    receiver.wait_for(1, WAIT).await;
    deliveries_when(&client, &id, all_status("pending", 1)).await;
    let off = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let dead = deliveries_when(&client, &id, all_status("dead", 1)).await;
    assert_eq!(dead[0]["next_attempt_at"], Value::Null);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing is sent once it is off"
    );
}

#[tokio::test]
async fn a_replayed_creation_or_rotation_does_not_repeat_the_secret() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let post = |path: String, key: &'static str, body: Value| {
        let client = &client;
        async move {
            client
                .send(
                    client
                        .request(Method::POST, &path)
                        .header("idempotency-key", key)
                        .json(&body),
                )
                .await
        }
    };
    let body = json!({"url": "https://hooks.example.com/crm", "event_types": ["contact.created"]});
    let created = post("/api/v1/webhooks".into(), "new-hook", body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let replay = post("/api/v1/webhooks".into(), "new-hook", body).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        replay.json()["id"],
        created.json()["id"],
        "the same subscription"
    );
    assert_eq!(replay.json()["secret"], Value::Null, "{}", replay.text);

    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/webhooks/{id}/rotate-secret");
    let rotated = post(path.clone(), "rotate-hook", json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    let replay = post(path.clone(), "rotate-hook", json!({})).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json()["secret"], Value::Null, "{}", replay.text);

    let stored: Vec<Vec<u8>> = crm_http_tests::owner_db()
        .await
        .query(
            "select response_body from idempotency_keys where tenant_id = $1",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(stored.len(), 2);
    for body in stored {
        let body = String::from_utf8(body).unwrap();
        assert!(
            !body.contains(&secret) && !body.contains(&new_secret),
            "{body}"
        );
    }
}

/// The dispatcher disables a subscription while a PATCH of another field is on its way: the PATCH
/// keeps the disable, since it applies to the subscription as it is once locked.
#[tokio::test]
async fn a_patch_does_not_undo_a_concurrent_disable() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let (id, _) = subscribe(
        &client,
        "https://hooks.example.com/race",
        &["contact.created"],
    )
    .await;
    let mut owner = crm_http_tests::owner_db().await;
    let holder = owner.transaction().await.unwrap();
    let uuid: uuid::Uuid = id.parse().unwrap();
    holder
        .execute(
            "select 1 from webhook_subscriptions where id = $1 for update",
            &[&uuid],
        )
        .await
        .unwrap();
    let (path, body) = (
        format!("/api/v1/webhooks/{id}"),
        json!({"description": "renamed"}),
    );
    let patch = client.send_json(Method::PATCH, &path, &body);
    let disable = async {
        // The PATCH has read the subscription and waits for the lock.
        tokio::time::sleep(Duration::from_millis(500)).await;
        holder
            .execute(
                "update webhook_subscriptions
                 set active = false, disabled_reason = 'failing', version = version + 1
                 where id = $1",
                &[&uuid],
            )
            .await
            .unwrap();
        holder.commit().await.unwrap();
    };
    let (patched, ()) = tokio::join!(patch, disable);
    assert_eq!(patched.status, 200, "{}", patched.text);
    let subscription = patched.json();
    assert_eq!(subscription["description"], "renamed");
    assert_eq!(subscription["active"], false, "{subscription}");
    assert_eq!(subscription["disabled_reason"], "failing");
}

/// What an attempt records of a failure is its category, not the network's words: a delivery log
/// is not a port scanner.
#[tokio::test]
async fn a_failed_attempt_records_a_category_not_the_network_error() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant, None);
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let plain = Receiver::start().await;
    let (refused, _) = subscribe(
        &client,
        &format!("http://127.0.0.1:{closed_port}/hook"),
        &["contact.created"],
    )
    .await;
    // TLS spoken to a plain HTTP receiver: the handshake fails.
    let (tls, _) = subscribe(
        &client,
        &plain.url("/hook").replacen("http://", "https://", 1),
        &["contact.created"],
    )
    .await;
    create_contact(&client, &unique_email()).await;
    for (id, category) in [(refused, "connection_refused"), (tls, "tls_error")] {
        let dead = deliveries_when(&client, &id, all_status("dead", 1)).await;
        let history = dead[0]["history"].as_array().unwrap();
        assert_eq!(history.len(), 3, "{}", dead[0]);
        for attempt in history {
            assert_eq!(attempt["error"], category, "{attempt}");
            assert_eq!(attempt["status_code"], Value::Null);
        }
        assert_eq!(dead[0]["last_error"], category);
    }
}

/// A tenant whose receiver never answers in time has a backlog of deliveries; another tenant's
/// delivery is sent within a round of attempts, not after that backlog.
#[tokio::test]
async fn one_tenants_slow_receivers_do_not_hold_up_another_tenants_deliveries() {
    let overrides = [("webhook_concurrency", "4")];
    let Some(world) = isolated(&overrides).await else {
        return;
    };
    let slow = Receiver::start().await;
    // Past the suite's 2 s timeout: every attempt takes the whole of it.
    slow.answer_always(Answer::status(204).after(Duration::from_secs(5)));
    subscribe(&world.client, &slow.url("/slow"), &["contact.created"]).await;
    for _ in 0..16 {
        create_contact(&world.client, &unique_email()).await;
    }
    let other = TestTenant::create_in(&world.owner_url, "US").await;
    let other_client = client_of(&other, Some(&world.base_url));
    let fast = Receiver::start().await;
    subscribe(&other_client, &fast.url("/fast"), &["contact.created"]).await;

    let dispatcher = start_dispatcher(test_config_with(world.app_url.clone(), &overrides));
    // The dispatcher is busy with the backlog.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let created = Instant::now();
    create_contact(&other_client, &unique_email()).await;
    fast.wait_for(1, WAIT).await;
    let waited = created.elapsed();
    dispatcher.abort();
    assert!(
        waited < Duration::from_secs(5),
        "the other tenant's delivery waited {waited:?} behind 16 slow deliveries"
    );
}
