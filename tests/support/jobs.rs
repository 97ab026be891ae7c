//! Driving import and export jobs from a test: create an import, upload its parts, start it, wait
//! for it to end (driving the worker through the operator route, as a scheduler does, or leaving it
//! to the deployment's own wake-ups).

use crate::{harness, Reply, TestClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub async fn create_import(client: &TestClient, options: Value) -> String {
    let reply = client
        .send_json(Method::POST, "/api/v1/imports", &options)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["status"], "awaiting_upload");
    reply.json()["id"].as_str().unwrap().to_owned()
}

pub async fn upload(client: &TestClient, id: &str, number: usize, bytes: &[u8]) -> Reply {
    client
        .send(
            client
                .request(Method::PUT, &format!("/api/v1/imports/{id}/parts/{number}"))
                .header("content-type", "text/csv")
                .body(bytes.to_vec()),
        )
        .await
}

pub async fn start(client: &TestClient, id: &str) -> Reply {
    client
        .send_json(
            Method::POST,
            &format!("/api/v1/imports/{id}/start"),
            &json!({}),
        )
        .await
}

/// Runs one worker pass through the operator route; the deployment's own worker may run passes too.
pub async fn work() {
    let reply = TestClient::new(Some(harness().operator_token.clone()))
        .send_json(Method::POST, "/api/v1/jobs/work", &json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// The job at `path` once its status is final, driving the worker meanwhile when `drive` (else
/// waiting for the deployment's own worker alone).
pub async fn ended(client: &TestClient, path: &str, drive: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let reply = client.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let job = reply.json();
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job did not end: {job}");
        if drive {
            work().await;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
