//! Health, readiness, routing errors and the OpenAPI document.

use crm_http_tests::{
    fresh_database, harness, in_process_only, start_server, test_config, TestClient, TestTenant,
};
use reqwest::Method;

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let reply = TestClient::anonymous().get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
}

#[tokio::test]
async fn readyz_checks_the_database() {
    let reply = TestClient::anonymous().get("/readyz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ready");
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_is_unreachable() {
    if in_process_only("starts a server whose database never answers") {
        return;
    }
    // Nothing listens on port 1: the server starts, but its database never answers.
    let base = start_server(test_config(
        "host=127.0.0.1 port=1 user=crm_app dbname=none connect_timeout=2".into(),
    ))
    .await;
    let reply = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(reply.status(), 503);
    assert_eq!(reply.headers()["retry-after"], "1");
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["type"], "/problems/unavailable");
    assert!(
        !body.to_string().contains("port=1"),
        "the cause must not leak: {body}"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on the database"
    );
}

#[tokio::test]
async fn readyz_runs_no_migration() {
    if in_process_only("starts a server on an unmigrated database of its own") {
        return;
    }
    let database = fresh_database().await;
    let base = start_server(test_config(format!(
        "host=127.0.0.1 port=5432 user=postgres dbname={database}"
    )))
    .await;
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
    let db = crm::connect(&format!(
        "host=127.0.0.1 port=5432 user=postgres dbname={database}"
    ))
    .await
    .unwrap();
    let tables: i64 = db
        .query_one(
            "select count(*) from pg_tables where schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_as_problems() {
    let client = TestClient::anonymous();
    let missing = client.get("/api/v1/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    let wrong = client
        .send(client.request(Method::DELETE, "/healthz"))
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET"));
}

#[tokio::test]
async fn the_component_prefixes_are_routed() {
    // An unknown path under a component's prefix answers a 404 problem, not an error.
    let client = TestClient::anonymous();
    let reply = client.get("/api/v1/webhooks/x/y/z/w").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["status"], 404);
    // Calls, audit and webhooks answer, and want a token.
    for path in ["/api/v1/calls", "/api/v1/audit/events", "/api/v1/webhooks"] {
        assert_eq!(client.get(path).await.status, 401, "{path}");
    }
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let reply = TestClient::anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/api/v1/contacts/{id}"]["get"].is_object());
}

/// `crm maintain` purges what grows without bound: expired idempotency keys, finished deliveries
/// and delivered events past the retention; a pending delivery and the event it needs stay,
/// whatever their age.
#[tokio::test]
async fn maintenance_purges_what_is_past_its_retention_and_keeps_what_is_pending() {
    let tenant = TestTenant::create("US").await;
    let db = crm_http_tests::owner_db().await;
    let t = tenant.id.as_uuid();
    let subscription: uuid::Uuid = db
        .query_one(
            "insert into webhook_subscriptions (tenant_id, id, url, event_types, secret)
             values ($1, gen_random_uuid(), 'https://example.com/hook', '{*}', 'whsec_test')
             returning id",
            &[&t],
        )
        .await
        .unwrap()
        .get(0);
    let event = async |name: &str, fanned_out_days_ago: i32| -> uuid::Uuid {
        db.query_one(
            "insert into outbox_events (tenant_id, id, event_type, entity_type, entity_id, payload,
                                        request_id, occurred_at, fanned_out_at)
             values ($1, gen_random_uuid(), 'contact.created', 'contact', gen_random_uuid(),
                     jsonb_build_object('name', $2::text), 'r',
                     now() - make_interval(days => $3), now() - make_interval(days => $3))
             returning id",
            &[&t, &name, &fanned_out_days_ago],
        )
        .await
        .unwrap()
        .get(0)
    };
    let delivery = async |event: uuid::Uuid, status: &str, days_ago: i32| {
        db.execute(
            "insert into webhook_deliveries (tenant_id, id, subscription_id, event_id, event_type,
                                             status, next_attempt_at, created_at, completed_at)
             values ($1, gen_random_uuid(), $2, $3, 'contact.created', $4::text,
                     case when $4::text = 'pending' then now() end,
                     now() - make_interval(days => $5),
                     case when $4::text <> 'pending' then now() - make_interval(days => $5) end)",
            &[&t, &subscription, &event, &status, &days_ago],
        )
        .await
        .unwrap();
    };
    // The last one was fanned out to no subscription: nothing refers to it.
    let (old, pending, recent, _unsubscribed) = (
        event("old", 40).await,
        event("pending", 40).await,
        event("recent", 1).await,
        event("old, no subscriber", 40).await,
    );
    delivery(old, "succeeded", 40).await;
    delivery(pending, "pending", 40).await;
    delivery(recent, "dead", 1).await;
    for (key, expires) in [("expired", "-1 hour"), ("live", "1 hour")] {
        db.execute(
            "insert into idempotency_keys (tenant_id, key, request_hash, status, locked_until, expires_at)
             values ($1, $2, 'h', 'completed', now(), now() + $3::text::interval)",
            &[&t, &key, &expires],
        )
        .await
        .unwrap();
    }

    let purged = crm::maintain::purge(&harness().owner_url, 30)
        .await
        .unwrap();
    assert!(
        purged.idempotency_keys >= 1 && purged.deliveries >= 1 && purged.events >= 2,
        "{purged:?}"
    );
    let left = async |sql: &str| -> Vec<String> {
        let mut rows: Vec<String> = db
            .query(sql, &[&t])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        left("select payload->>'name' from outbox_events where tenant_id = $1").await,
        ["pending", "recent"]
    );
    assert_eq!(
        left("select status from webhook_deliveries where tenant_id = $1").await,
        ["dead", "pending"]
    );
    assert_eq!(
        left("select key from idempotency_keys where tenant_id = $1").await,
        ["live"]
    );
}

/// The application role's connections to `database`, as PostgreSQL counts them.
async fn app_connections(database: &str) -> i64 {
    crm_http_tests::owner_db()
        .await
        .query_one(
            "select count(*) from pg_stat_activity where datname = $1 and usename = 'crm_app'",
            &[&database],
        )
        .await
        .unwrap()
        .get(0)
}

fn database_name(url: &str) -> String {
    url.split_whitespace()
        .find_map(|part| part.strip_prefix("dbname="))
        .expect("a dbname")
        .to_owned()
}

#[tokio::test]
async fn a_flood_of_readiness_probes_holds_one_connection() {
    if in_process_only("counts the connections of a server of its own") {
        return;
    }
    let (_, app_url) = crm_http_tests::fresh_migrated_database().await;
    let database = database_name(&app_url);
    let base = start_server(test_config(app_url)).await;
    let http = reqwest::Client::new();
    let probes = (0..200).map(|_| {
        let http = http.clone();
        let url = format!("{base}/readyz");
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(probes).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        app_connections(&database).await,
        1,
        "probes share one check: they never take the connections requests need"
    );
}

#[tokio::test]
async fn a_request_waits_for_a_database_connection_a_bounded_time() {
    if in_process_only("stalls the database of a server of its own") {
        return;
    }
    let (owner_url, app_url) = crm_http_tests::fresh_migrated_database().await;
    let config = test_config(app_url);
    let pool_size = crm_http_tests::app_for(config.clone()).db.max_connections();
    let base = start_server(config).await;
    let tenant = TestTenant::create_in(&owner_url, "US").await;
    let client = TestClient::at(&base, Some(tenant.token("contacts:read")));
    assert_eq!(client.get("/api/v1/contacts?limit=1").await.status, 200);

    // Every pooled connection ends up waiting on this lock, and the requests after them on the pool.
    let mut owner = crm::connect(&owner_url).await.unwrap();
    let lock = owner.transaction().await.unwrap();
    lock.batch_execute("lock table contacts in access exclusive mode")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let requests = (0..pool_size + 8).map(|_| {
        let client = &client;
        async move {
            let reply = client.get("/api/v1/contacts?limit=1").await;
            (
                reply.status,
                reply.header("retry-after").map(str::to_owned),
                started.elapsed(),
            )
        }
    });
    let release = async {
        tokio::time::sleep(std::time::Duration::from_secs(8)).await;
        lock.rollback().await.unwrap();
    };
    let (replies, ()) = tokio::join!(futures::future::join_all(requests), release);
    let refused: Vec<_> = replies
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert!(
        !refused.is_empty(),
        "the requests beyond the pool were refused, not queued: {replies:?}"
    );
    for (_, retry_after, elapsed) in &refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(
            *elapsed < std::time::Duration::from_secs(8),
            "refused after the pool wait, before the lock went: {elapsed:?}"
        );
    }
    assert!(
        replies
            .iter()
            .all(|(status, ..)| *status == 200 || *status == 503),
        "{replies:?}"
    );
    assert_eq!(client.get("/api/v1/contacts?limit=1").await.status, 200);
}

/// A connection to a native server that allows a client one second for a head and one for a body.
async fn impatient_server() -> tokio::net::TcpStream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = crm_http_tests::app_for(test_config(harness().app_url.clone()));
    let timeouts = crm::server::ClientTimeouts {
        header_read: std::time::Duration::from_secs(1),
        body_read: std::time::Duration::from_secs(1),
    };
    tokio::spawn(crm::server::serve(
        listener,
        app,
        timeouts,
        std::future::pending(),
    ));
    tokio::net::TcpStream::connect(address).await.unwrap()
}

/// What the server sends before it closes the connection, or `None` if it is still open after 5 s.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .ok()?
    .ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_stalls_its_head_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    if in_process_only("the native server's own timeouts") {
        return;
    }
    let mut stream = impatient_server().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut stream).await.is_some(),
        "the connection is closed"
    );
}

#[tokio::test]
async fn a_client_that_stalls_its_body_is_answered_400() {
    use tokio::io::AsyncWriteExt;
    if in_process_only("the native server's own timeouts") {
        return;
    }
    let tenant = TestTenant::create("US").await;
    let token = tenant.token("contacts:write");
    let mut stream = impatient_server().await;
    let head = format!(
        "POST /api/v1/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream)
        .await
        .expect("an answer in time");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not sent in time"), "{answer}");
}
