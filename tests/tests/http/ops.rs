//! Health, readiness, routing errors and the OpenAPI document.

use crm_http_tests::{fresh_database, in_process_only, start_server, test_config, TestClient};
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
