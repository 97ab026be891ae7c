//! Faults answer like faults: while the database keeps closing the application's connections
//! (`pg_terminate_backend`, as a restart or a failover does), writes answer 201 or 503 with
//! `Retry-After`, never another 5xx, and clients retrying with their `Idempotency-Key` end with
//! every contact written exactly once. In the exclusive binary: it kills every connection of the role.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 6;
const CONTACTS_PER_WRITER: usize = 12;
const KILLING_FOR: Duration = Duration::from_secs(2);

/// Creates one contact, retrying with the same key as a careful client does: after `Retry-After`
/// on 503, shortly on 409 (the first attempt's key still settling) and on a broken connection.
/// Returns the acknowledged id and every status seen.
async fn create_with_retries(client: &TestClient, email: &str) -> (String, Vec<u16>) {
    let key = uuid::Uuid::now_v7().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut statuses = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "{email} never acknowledged: {statuses:?}"
        );
        let sent = client
            .request(Method::POST, "/api/v1/contacts")
            .header("idempotency-key", &key)
            .json(&json!({"first_name": "Durable", "emails": [{"address": email}]}))
            .send()
            .await;
        let Ok(response) = sent else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let status = response.status().as_u16();
        statuses.push(status);
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        match status {
            201 => {
                let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                return (id, statuses);
            }
            503 => {
                assert_eq!(retry_after.as_deref(), Some("1"), "503 without Retry-After");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The first attempt's key is still settling; any other conflict is a double write.
            409 if body.contains("idempotency-key-in-flight") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("{email}: {other} {body}"),
        }
    }
}

#[tokio::test]
async fn killed_connections_answer_503_and_retried_writes_land_exactly_once() {
    let _alone = crate::alone().await;
    let tenant = TestTenant::create("US").await;
    // A request first, so that the application holds a connection when the killing starts: the
    // writers can finish within the killer's first interval, before any connection was made.
    assert_eq!(
        tenant.client().get("/api/v1/contacts?limit=1").await.status,
        200
    );
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (stop, kills) = (stop.clone(), kills.clone());
        tokio::spawn(async move {
            let owner = owner_db().await;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < KILLING_FOR {
                let killed: i64 = owner
                    .query_one(
                        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
                         where datname = current_database() and usename = 'crm_app') killed",
                        &[],
                    )
                    .await
                    .expect("terminating backends")
                    .get(0);
                kills.fetch_add(usize::try_from(killed).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let writers = (0..WRITERS).map(|writer| {
        let client = tenant.client();
        async move {
            let mut acknowledged = Vec::new();
            for n in 0..CONTACTS_PER_WRITER {
                let email = format!("durable-{writer}-{n}@example.com");
                acknowledged.push((email.clone(), create_with_retries(&client, &email).await));
            }
            acknowledged
        }
    });
    let acknowledged: Vec<_> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();

    let statuses: BTreeMap<u16, usize> = acknowledged.iter().flat_map(|(_, (_, s))| s).fold(
        BTreeMap::new(),
        |mut counts, status| {
            *counts.entry(*status).or_default() += 1;
            counts
        },
    );
    eprintln!(
        "{} backends terminated; statuses seen: {statuses:?}",
        kills.load(Ordering::Relaxed)
    );
    assert!(kills.load(Ordering::Relaxed) > 0, "nothing was terminated");

    // Every acknowledged contact is stored once, under the id it was acknowledged with.
    let stored: HashMap<String, (String, i64)> = owner_db()
        .await
        .query(
            "select e.address, c.id::text, count(*) over (partition by e.address)
             from contacts c join contact_emails e on e.tenant_id = c.tenant_id and e.contact_id = c.id
             where c.tenant_id = $1",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    assert_eq!(stored.len(), WRITERS * CONTACTS_PER_WRITER);
    for (email, (id, _)) in &acknowledged {
        let (stored_id, copies) = &stored[email];
        assert_eq!((stored_id, *copies), (id, 1), "{email}");
    }
}
