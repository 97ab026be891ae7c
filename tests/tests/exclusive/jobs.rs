//! Import and export jobs that need the deployment to themselves: a job that runs on its start's
//! wake-up alone (nothing here calls the operator's job route until the job has ended, so against
//! `spin up` only the `job-worker` component's Redis trigger can carry it), and a step whose
//! database connection is killed while it waits on a lock (it kills an application backend, which
//! in the main suite could be another test's), resumed without duplicates.

use crm_http_tests::jobs::{create_import, ended, start, upload};
use crm_http_tests::{count_rows, owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn client_of(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(tenant.token("contacts:read contacts:write")))
}

#[tokio::test]
async fn a_started_import_runs_by_itself() {
    let _alone = crate::alone().await;
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let id = create_import(&client, json!({"format": "ndjson"})).await;
    let lines: String = (0..50)
        .map(|n| format!("{{\"first_name\": \"Self{n}\"}}\n"))
        .collect();
    assert_eq!(upload(&client, &id, 1, lines.as_bytes()).await.status, 200);
    assert_eq!(start(&client, &id).await.status, 202);
    // Nothing drives the worker here: the wake-up the start published does.
    let job = ended(&client, &format!("/api/v1/imports/{id}"), false).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["rows"]["created"], 50);
}

#[tokio::test]
async fn a_step_killed_midway_is_resumed_without_duplicates() {
    let _alone = crate::alone().await;
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let held = client
        .create_contact(&json!({"first_name": "Held", "emails": [{"address": "held@example.com"}]}))
        .await;
    // 2,500 rows: the second step (rows 1,002 to 2,001) updates the held contact.
    let mut file = String::from("first_name,emails\n");
    for n in 0..2_500 {
        if n == 1_500 {
            file.push_str("Held Again,held@example.com\n");
        } else {
            file.push_str(&format!("Person{n},person{n}@example.com\n"));
        }
    }
    let owner = owner_db().await;
    let holder: i32 = owner
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    owner.batch_execute("begin").await.unwrap();
    owner
        .execute(
            "select 1 from contacts where tenant_id = $1 and id = $2 for update",
            &[&tenant.id.as_uuid(), &held.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let id = create_import(&client, json!({"format": "csv"})).await;
    assert_eq!(upload(&client, &id, 1, file.as_bytes()).await.status, 200);
    assert_eq!(start(&client, &id).await.status, 202);

    // The step that meets the held row waits on its lock: kill its connection there. (Watched from
    // a connection of its own: within the holder's transaction, the activity view is a snapshot.)
    let watcher = owner_db().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        let waiting = watcher
            .query(
                "select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))",
                &[&holder],
            )
            .await
            .unwrap();
        if let Some(row) = waiting.first() {
            let pid: i32 = row.get(0);
            watcher
                .execute("select pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
            break pid;
        }
        assert!(Instant::now() < deadline, "no step waited on the held row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(killed > 0);
    let midway = client.get(&format!("/api/v1/imports/{id}")).await.json();
    assert_eq!(
        midway["rows"]["processed"], 1_000,
        "the killed step left nothing: {midway}"
    );
    owner.batch_execute("rollback").await.unwrap();

    let job = ended(&client, &format!("/api/v1/imports/{id}"), true).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        (
            &job["rows"]["created"],
            &job["rows"]["updated"],
            &job["rows"]["failed"]
        ),
        (&json!(2_499), &json!(1), &json!(0)),
        "{job}"
    );
    assert_eq!(
        count_rows("contacts", tenant.id).await,
        2_500,
        "no row imported twice"
    );
    let audited = owner
        .query_one(
            "select count(*) from audit_log where tenant_id = $1 and entity_type = 'contact'
             and actor_type = 'import_job' and actor = $2",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .unwrap();
    assert_eq!(audited.get::<_, i64>(0), 2_500, "each row audited once");
    assert_eq!(
        client.get_contact(&held).await.json()["first_name"],
        "Held Again"
    );
}

#[tokio::test]
async fn an_export_job_writes_its_file_in_steps_and_it_downloads_until_it_expires() {
    let _alone = crate::alone().await;
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    // 6,000 contacts: two steps of the job (5,000 rows each at most).
    for first in (0..6_000).step_by(1_000) {
        let operations: Vec<Value> = (first..first + 1_000)
            .map(|n| json!({"op": "create", "contact": {"first_name": format!("Job{n}")}}))
            .collect();
        let reply = client
            .send_json(
                Method::POST,
                "/api/v1/contacts/batch",
                &json!({"operations": operations}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let created = client
        .send_json(
            Method::POST,
            "/api/v1/exports",
            &json!({"format": "ndjson", "filters": {"sort": "-created_at"}}),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/exports/{id}").as_str())
    );
    // Nothing drives the worker here: the wake-up the creation published does.
    let job = ended(&client, &format!("/api/v1/exports/{id}"), false).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["rows"], 6_000);
    let chunks: i32 = crm_http_tests::owner_db()
        .await
        .query_one(
            "select chunks from exports where tenant_id = $1 and id = $2::text::uuid",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(chunks, 2, "written in two steps");

    let download = client.get(job["download_url"].as_str().unwrap()).await;
    assert_eq!(download.status, 200, "{}", download.text);
    assert_eq!(
        download.header("content-type"),
        Some("application/x-ndjson")
    );
    let streamed = client
        .get("/api/v1/contacts/export?format=ndjson&sort=-created_at")
        .await;
    assert_eq!(
        download.text, streamed.text,
        "the job's file is the streamed export"
    );
    assert_eq!(download.text.lines().count(), 6_000);

    let other = client_of(&TestTenant::create("US").await);
    assert_eq!(
        other.get(&format!("/api/v1/exports/{id}")).await.status,
        404
    );
    assert_eq!(
        other
            .get(&format!("/api/v1/exports/{id}/download"))
            .await
            .status,
        404
    );
    crm_http_tests::owner_db()
        .await
        .execute(
            "update exports set expires_at = now() - interval '1 second'
             where tenant_id = $1 and id = $2::text::uuid",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .unwrap();
    let expired = client.get(&format!("/api/v1/exports/{id}/download")).await;
    assert_eq!(expired.status, 410, "{}", expired.text);
    assert!(client.get(&format!("/api/v1/exports/{id}")).await.json()["download_url"].is_null());

    let both = client
        .send_json(
            Method::POST,
            "/api/v1/exports",
            &json!({"filters": {}, "search": {}, "format": "xml"}),
        )
        .await;
    assert_eq!(both.status, 422, "{}", both.text);
    assert_eq!(both.error_fields(), ["/format", "/search"]);
    let unknown = client
        .send_json(
            Method::POST,
            "/api/v1/exports",
            &json!({"filters": {"nope": "1", "company": 2}}),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(
        unknown.error_fields(),
        ["/filters/company", "/filters/nope"]
    );
}
