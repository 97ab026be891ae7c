//! The audit trail as an API: events, reports (JSON and CSV), partitions and retention.

use crm_http_tests::{
    app_session, fresh_database, in_process_only, owner_db, TestClient, TestTenant,
};
use reqwest::Method;
use serde_json::json;

fn auditor(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(tenant.token("audit:read")))
}

#[tokio::test]
async fn events_filter_page_and_stay_within_the_tenant() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({"first_name": "Audited"}))
        .await;
    client
        .patch_contact(&id, &json!({"last_name": "Once"}), None)
        .await;
    client
        .patch_contact(&id, &json!({"last_name": "Twice"}), None)
        .await;
    client.create_contact(&json!({"first_name": "Other"})).await;
    let auditor = auditor(&tenant);

    let mine = auditor
        .get(&format!(
            "/api/v1/audit/events?entity_type=contact&entity_id={id}"
        ))
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let actions: Vec<String> = mine.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["update", "update", "create"]);
    let updates = auditor
        .get("/api/v1/audit/events?action=update")
        .await
        .json();
    assert_eq!(updates["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        auditor
            .get("/api/v1/audit/events?actor=user-test")
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(auditor
        .get("/api/v1/audit/events?actor=nobody")
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(auditor
        .get("/api/v1/audit/events?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .is_empty());

    // Page by one: the same records in the same order.
    let mut paged = Vec::new();
    let mut path = "/api/v1/audit/events?limit=1".to_owned();
    loop {
        let page = auditor.get(&path).await.json();
        paged.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/audit/events?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged.len(), 4);
    let one = &paged[0];
    let read = auditor
        .get(&format!(
            "/api/v1/audit/events/{}",
            one["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read.json(), *one);

    let stranger = auditor_of_new_tenant().await;
    assert!(stranger.get("/api/v1/audit/events").await.json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        stranger
            .get(&format!(
                "/api/v1/audit/events/{}",
                one["id"].as_str().unwrap()
            ))
            .await
            .status,
        404
    );
    // Reading the trail needs audit:read.
    assert_eq!(client.get("/api/v1/audit/events").await.status, 403);
}

async fn auditor_of_new_tenant() -> TestClient {
    auditor(&TestTenant::create("US").await)
}

#[tokio::test]
async fn reports_count_per_group_as_json_and_csv() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    for n in 0..3 {
        let id = client
            .create_contact(&json!({"first_name": format!("R{n}")}))
            .await;
        if n == 0 {
            client
                .patch_contact(&id, &json!({"last_name": "X"}), None)
                .await;
        }
    }
    let auditor = auditor(&tenant);
    let by_action = auditor.get("/api/v1/audit/reports?group_by=action").await;
    assert_eq!(by_action.status, 200, "{}", by_action.text);
    assert_eq!(
        by_action.json()["groups"],
        json!([{"key": "create", "count": 3}, {"key": "update", "count": 1}])
    );
    let by_type = auditor
        .get("/api/v1/audit/reports?group_by=entity_type")
        .await
        .json();
    assert_eq!(by_type["groups"], json!([{"key": "contact", "count": 4}]));
    let csv = auditor
        .send(
            auditor
                .request(Method::GET, "/api/v1/audit/reports?group_by=action")
                .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv.text, "action,count\r\ncreate,3\r\nupdate,1\r\n");
    // The same CSV at its own path, for clients that cannot set Accept (generated ones).
    let by_path = auditor
        .get("/api/v1/audit/reports.csv?group_by=action")
        .await;
    assert_eq!(by_path.status, 200, "{}", by_path.text);
    assert!(by_path
        .header("content-type")
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(by_path.text, csv.text);
    assert_eq!(
        auditor
            .get("/api/v1/audit/reports?group_by=mood")
            .await
            .status,
        400
    );
    let empty = auditor_of_new_tenant()
        .await
        .get("/api/v1/audit/reports?group_by=action")
        .await
        .json();
    assert_eq!(empty["groups"], json!([]));
}

#[tokio::test]
async fn csv_reports_neutralise_formula_injection() {
    let tenant = TestTenant::create("US").await;
    let evil = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let token = tenant.token_as(evil, "contacts:write");
    let writer = TestClient::new(Some(token));
    assert_eq!(
        writer
            .post_contact(&json!({"first_name": "Injected"}))
            .await
            .status,
        201
    );
    let auditor = auditor(&tenant);
    let csv = auditor
        .send(
            auditor
                .request(Method::GET, "/api/v1/audit/reports?group_by=actor")
                .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(
        csv.text,
        "actor,count\r\n\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",1\r\n"
    );
}

#[tokio::test]
async fn the_log_is_partitioned_by_month_ahead_and_append_only() {
    let db = owner_db().await;
    let partitions: Vec<String> = db
        .query("select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_log'::regclass", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let now = chrono::Utc::now();
    let ahead = now + chrono::Months::new(12);
    for month in [now, ahead] {
        let name = format!("audit_log_{}", month.format("%Y_%m"));
        assert!(
            partitions.contains(&name),
            "{name} missing from {partitions:?}"
        );
    }
    let tenant = TestTenant::create("US").await;
    tenant
        .client()
        .create_contact(&json!({"first_name": "Kept"}))
        .await;
    let app = app_session(tenant.id).await;
    assert!(
        app.execute("delete from audit_log", &[]).await.is_err(),
        "crm_app must not delete audit records"
    );
    app.batch_execute("rollback").await.unwrap();
}

#[tokio::test]
async fn purge_applies_each_tenants_retention_and_drops_expired_partitions() {
    if in_process_only("purges a database of its own, partitions and all") {
        return;
    }
    let cluster = std::env::var("CRM_TEST_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".into());
    let url = format!("{cluster} dbname={}", fresh_database().await);
    crm::migrate::run(&url).await.unwrap();
    let short = crm::tenants::create(&url, "Short memory", "US")
        .await
        .unwrap();
    let long = crm::tenants::create(&url, "Long memory", "US")
        .await
        .unwrap();
    crm::tenants::update(
        &url,
        short,
        crm::tenants::TenantUpdate {
            audit_retention_months: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let db = crm::connect(&url).await.unwrap();
    db.query_one(
        "select ensure_audit_partitions(now() - interval '30 months', 30)",
        &[],
    )
    .await
    .unwrap();
    for (tenant, months_ago) in [(short, 3), (short, 0), (long, 3), (long, 0)] {
        db.execute(
            "insert into audit_log (tenant_id, id, occurred_at, actor, action, entity_type, entity_id, request_id)
             values ($1, gen_random_uuid(), now() - make_interval(months => $2), 'a', 'create', 'contact', gen_random_uuid(), 'r')",
            &[&tenant.as_uuid(), &months_ago],
        )
        .await
        .unwrap();
    }
    let report = crm::audit::purge(&url, 24).await.unwrap();
    assert_eq!(
        report.deleted_records, 1,
        "only the short-memory tenant's old record"
    );
    let left: i64 = db
        .query_one("select count(*) from audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 3);
    // Partitions that ended more than 24 months ago are gone; newer ones stay.
    assert!(
        report.dropped_partitions.len() >= 5,
        "{:?}",
        report.dropped_partitions
    );
    let oldest: String = db
        .query_one("select min(c.relname::text) from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_log'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    let cutoff = chrono::Utc::now() - chrono::Months::new(24);
    assert!(
        oldest >= format!("audit_log_{}", cutoff.format("%Y_%m")),
        "{oldest}"
    );
}

#[tokio::test]
async fn an_audited_write_succeeds_in_a_month_without_a_partition() {
    if in_process_only("drops a partition of a database of its own") {
        return;
    }
    let (owner_url, app_url) = crm_http_tests::fresh_migrated_database().await;
    let owner = crm::connect(&owner_url).await.unwrap();
    let this_month = format!("audit_log_{}", chrono::Utc::now().format("%Y_%m"));
    owner
        .batch_execute(&format!("drop table {this_month}"))
        .await
        .unwrap();
    let base = crm_http_tests::start_server(crm_http_tests::test_config(app_url)).await;
    let tenant = TestTenant::create_in(&owner_url, "US").await;
    let client = TestClient::at(&base, Some(tenant.token("contacts:read contacts:write")));
    let created = client
        .post_contact(&json!({"first_name": "Unpartitioned"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    async fn in_default(owner: &tokio_postgres::Client) -> i64 {
        owner
            .query_one("select count(*) from audit_log_default", &[])
            .await
            .unwrap()
            .get(0)
    }
    assert_eq!(
        in_default(&owner).await,
        1,
        "the record waits in the default partition"
    );

    let created = crm::audit::maintain(&owner_url, 1).await.unwrap();
    assert!(created >= 1, "this month's partition is made again");
    assert_eq!(in_default(&owner).await, 0, "and the record moved into it");
    let moved: i64 = owner
        .query_one(&format!("select count(*) from {this_month}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(moved, 1);
    let auditor = TestClient::at(&base, Some(tenant.token("audit:read")));
    let history = auditor
        .get(&format!(
            "/api/v1/audit/events?entity_type=contact&entity_id={id}"
        ))
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(history.json()["data"].as_array().unwrap().len(), 1);
}
