//! Logging calls: matching to contacts, last_contacted_at, changes, lists and statistics.

use crm_http_tests::{count_rows, owner_db, Reply, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

fn calls_client(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(tenant.token(
        "calls:read calls:write contacts:read contacts:write contacts:erase",
    )))
}

async fn log(client: &TestClient, body: Value) -> Reply {
    client
        .send(client.request(Method::POST, "/api/v1/calls").json(&body))
        .await
}

fn call(from: &str, to: &str, started_at: &str) -> Value {
    json!({"direction": "inbound", "from": from, "to": to, "started_at": started_at, "status": "completed",
           "duration_seconds": 60, "agent_id": "agent-1"})
}

#[tokio::test]
async fn an_inbound_call_is_matched_by_the_callers_number_in_any_format() {
    let tenant = TestTenant::create("GB").await;
    let client = calls_client(&tenant);
    let contact = client
        .create_contact(
            &json!({"first_name": "Caller", "phones": [{"number": "+44 20 7946 0018"}]}),
        )
        .await;
    let logged = log(
        &client,
        call("020 7946 0018", "+1 212 736 5000", "2026-11-20T10:00:00Z"),
    )
    .await;
    assert_eq!(logged.status, 201, "{}", logged.text);
    let body = logged.json();
    assert_eq!(body["contact_id"], contact.as_str());
    assert_eq!(body["from"]["e164"], "+442079460018");
    assert_eq!(body["to"]["region"], "US");
    assert_eq!(body["ended_at"], "2026-11-20T10:01:00Z");
    assert_eq!(
        logged.header("location"),
        Some(format!("/api/v1/calls/{}", body["id"].as_str().unwrap()).as_str())
    );

    let read = client.get_contact(&contact).await.json();
    assert_eq!(read["last_contacted_at"], "2026-11-20T10:00:00Z");
    assert_eq!(read["version"], 2);
    let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let event: String = owner_db()
        .await
        .query_one(
            "select event_type from outbox_events where tenant_id = $1 and entity_id = $2",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(event, "call.logged");
}

#[tokio::test]
async fn an_ambiguous_or_unknown_number_links_no_contact() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    for name in ["One", "Two"] {
        client
            .create_contact(&json!({"first_name": name, "phones": [{"number": "(212) 736-5000"}]}))
            .await;
    }
    let ambiguous = log(&client, json!({"direction": "outbound", "from": "+1 415 555 2671", "to": "212-736-5000",
                                        "started_at": "2026-11-20T10:00:00Z", "status": "no_answer"})).await;
    assert_eq!(ambiguous.status, 201, "{}", ambiguous.text);
    assert_eq!(ambiguous.json()["contact_id"], Value::Null);
    assert_eq!(ambiguous.json()["duration_seconds"], 0);
    let unknown = log(
        &client,
        call("+1 206 555 0100", "+1 212 736 5000", "2026-11-20T11:00:00Z"),
    )
    .await;
    assert_eq!(unknown.json()["contact_id"], Value::Null);
}

#[tokio::test]
async fn another_tenants_contact_id_is_refused_and_bad_fields_are_listed() {
    let owner = TestTenant::create("US").await;
    let foreign = owner
        .client()
        .create_contact(&json!({"first_name": "Theirs"}))
        .await;
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    let mut body = call("+1 212 736 5000", "+1 415 555 2671", "2026-11-20T10:00:00Z");
    body["contact_id"] = json!(foreign);
    let reply = log(&client, body).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.error_fields(), vec!["/contact_id"]);
    let bad = log(
        &client,
        json!({"direction": "up", "from": "1", "to": "+1 212 736 5000", "started_at": "noon",
                                  "status": "done", "recording_url": "ftp://x"}),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.error_fields(),
        vec![
            "/direction",
            "/from",
            "/started_at",
            "/status",
            "/recording_url"
        ]
    );
    assert_eq!(count_rows("calls", tenant.id).await, 0);
}

#[tokio::test]
async fn a_call_is_read_patched_with_if_match_and_deleted() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    let contact = client
        .create_contact(&json!({"first_name": "Busy", "phones": [{"number": "+1 212 736 5000"}]}))
        .await;
    let early = log(
        &client,
        call("+1 212 736 5000", "+1 415 555 2671", "2026-11-20T09:00:00Z"),
    )
    .await
    .json();
    let late = log(
        &client,
        call("+1 212 736 5000", "+1 415 555 2671", "2026-11-21T09:00:00Z"),
    )
    .await
    .json();
    let late_id = late["id"].as_str().unwrap();
    let path = format!("/api/v1/calls/{late_id}");
    assert_eq!(client.get(&path).await.json(), late);

    let stale = client
        .send(
            client
                .request(Method::PATCH, &path)
                .header("if-match", "\"v9\"")
                .json(&json!({"outcome": "x"})),
        )
        .await;
    assert_eq!(stale.status, 412);
    let patched = client
        .send(
            client
                .request(Method::PATCH, &path)
                .header("if-match", "\"v1\"")
                .json(&json!({"outcome": "Booked a demo", "status": "voicemail"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["outcome"], "Booked a demo");
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(
        client.get(&path).await.json()["status"],
        "voicemail",
        "the cache saw the write"
    );

    assert_eq!(
        client
            .send(client.request(Method::DELETE, &path))
            .await
            .status,
        204
    );
    assert_eq!(client.get(&path).await.status, 404);
    let late_uuid: uuid::Uuid = late_id.parse().unwrap();
    let db = owner_db().await;
    let column = |sql: &'static str| {
        let db = &db;
        async move {
            db.query(sql, &[&tenant.id.as_uuid(), &late_uuid])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        column("select event_type from outbox_events where tenant_id = $1 and entity_id = $2 order by seq").await,
        vec!["call.logged", "call.updated", "call.deleted"]
    );
    assert_eq!(
        column("select action from audit_log where tenant_id = $1 and entity_id = $2 order by occurred_at").await,
        vec!["create", "update", "delete"]
    );
    // last_contacted_at falls back to the remaining call.
    assert_eq!(
        client.get_contact(&contact).await.json()["last_contacted_at"],
        early["started_at"]
    );
}

#[tokio::test]
async fn lists_filter_and_page_newest_first_and_a_contact_has_its_calls() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    let contact = client
        .create_contact(
            &json!({"first_name": "Frequent", "phones": [{"number": "+1 212 736 5000"}]}),
        )
        .await;
    for day in 1..=5 {
        let mut body = call(
            "+1 212 736 5000",
            "+1 415 555 2671",
            &format!("2026-11-0{day}T10:00:00Z"),
        );
        if day % 2 == 0 {
            body["status"] = json!("missed");
            body["agent_id"] = json!("agent-2");
        }
        log(&client, body).await;
    }
    log(
        &client,
        call("+1 206 555 0100", "+1 415 555 2671", "2026-11-06T10:00:00Z"),
    )
    .await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/calls?limit=2".to_owned();
    loop {
        let page = client.get(&path).await.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["started_at"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/calls?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let days: Vec<&str> = seen.iter().map(|s| &s[8..10]).collect();
    assert_eq!(days, vec!["06", "05", "04", "03", "02", "01"]);
    for (query, expected) in [
        ("status=missed", 2),
        ("agent_id=agent-2", 2),
        ("direction=inbound", 6),
        ("direction=outbound", 0),
        (
            "started_after=2026-11-03T00:00:00Z&started_before=2026-11-05T00:00:00Z",
            2,
        ),
        (&format!("contact_id={contact}"), 5),
    ] {
        let found = client.get(&format!("/api/v1/calls?{query}")).await.json()["data"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(found, expected, "{query}");
    }
    let of_contact = client
        .get(&format!("/api/v1/contacts/{contact}/calls"))
        .await;
    assert_eq!(of_contact.status, 200, "{}", of_contact.text);
    assert_eq!(of_contact.json()["data"].as_array().unwrap().len(), 5);
    assert_eq!(client.get("/api/v1/calls?status=lost").await.status, 400);
}

#[tokio::test]
async fn stats_count_and_average_durations_per_group() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    for (day, seconds, status, agent) in [
        (1, 60, "completed", "a"),
        (1, 120, "completed", "b"),
        (2, 0, "missed", "a"),
    ] {
        let mut body = call(
            "+1 206 555 0100",
            "+1 415 555 2671",
            &format!("2026-10-0{day}T12:00:00Z"),
        );
        body["duration_seconds"] = json!(seconds);
        body["status"] = json!(status);
        body["agent_id"] = json!(agent);
        log(&client, body).await;
    }
    let range = "from=2026-10-01T00:00:00Z&to=2026-10-31T00:00:00Z";
    let by_day = client
        .get(&format!("/api/v1/calls/stats?{range}&group_by=day"))
        .await;
    assert_eq!(by_day.status, 200, "{}", by_day.text);
    assert_eq!(
        by_day.json()["groups"],
        json!([
            {"key": "2026-10-01", "count": 2, "total_duration_seconds": 180, "average_duration_seconds": 90.0},
            {"key": "2026-10-02", "count": 1, "total_duration_seconds": 0, "average_duration_seconds": 0.0}
        ])
    );
    let by_agent = client
        .get(&format!("/api/v1/calls/stats?{range}&group_by=agent"))
        .await
        .json();
    assert_eq!(
        by_agent["groups"][0],
        json!({"key": "a", "count": 2, "total_duration_seconds": 60, "average_duration_seconds": 30.0})
    );
    let by_status = client
        .get(&format!("/api/v1/calls/stats?{range}&group_by=status"))
        .await
        .json();
    assert_eq!(by_status["groups"].as_array().unwrap().len(), 2);
    // Another tenant's calls are not counted.
    let stranger = calls_client(&TestTenant::create("US").await);
    let empty = stranger
        .get(&format!("/api/v1/calls/stats?{range}&group_by=direction"))
        .await
        .json();
    assert_eq!(empty["groups"], json!([]));
    assert_eq!(
        client.get("/api/v1/calls/stats?group_by=week").await.status,
        400
    );
}

#[tokio::test]
async fn another_tenants_calls_answer_404() {
    let owner = TestTenant::create("US").await;
    let id = log(
        &calls_client(&owner),
        call("+1 206 555 0100", "+1 415 555 2671", "2026-11-20T10:00:00Z"),
    )
    .await
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = calls_client(&TestTenant::create("US").await);
    let path = format!("/api/v1/calls/{id}");
    assert_eq!(stranger.get(&path).await.status, 404);
    assert_eq!(
        stranger
            .send(
                stranger
                    .request(Method::PATCH, &path)
                    .json(&json!({"notes": "x"}))
            )
            .await
            .status,
        404
    );
    assert_eq!(
        stranger
            .send(stranger.request(Method::DELETE, &path))
            .await
            .status,
        404
    );
    assert!(stranger.get("/api/v1/calls").await.json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn erasing_a_contact_erases_its_calls() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    let contact = client
        .create_contact(&json!({"first_name": "Gone", "phones": [{"number": "+1 212 736 5000"}]}))
        .await;
    log(
        &client,
        call("+1 212 736 5000", "+1 415 555 2671", "2026-11-20T10:00:00Z"),
    )
    .await;
    let erased = client
        .send(client.request(Method::POST, &format!("/api/v1/contacts/{contact}/erase")))
        .await;
    assert_eq!(erased.status, 204);
    assert_eq!(count_rows("calls", tenant.id).await, 0);
    let traces: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from audit_log a where tenant_id = $1 and a::text like '%2127365000%'",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0, "the call's audit diff still holds the number");
}

/// After an erasure nothing of the contact is served: not its call from the read cache, not its
/// history, and replaying the key of the request that created it answers 410 instead of creating
/// it again.
#[tokio::test]
async fn an_erased_contact_leaves_nothing_to_read_or_replay() {
    let tenant = TestTenant::create("US").await;
    let client = calls_client(&tenant);
    let body = json!({"first_name": "Forgotten", "phones": [{"number": "+1 212 736 5001"}]});
    let create = async || {
        client
            .send(
                client
                    .request(Method::POST, "/api/v1/contacts")
                    .header("idempotency-key", "create-forgotten")
                    .json(&body),
            )
            .await
    };
    let created = create().await;
    assert_eq!(created.status, 201, "{}", created.text);
    let contact = created.json()["id"].as_str().unwrap().to_owned();
    let logged = log(
        &client,
        call("+1 212 736 5001", "+1 415 555 2671", "2026-11-21T10:00:00Z"),
    )
    .await;
    assert_eq!(logged.json()["contact_id"], contact.as_str());
    let call_path = format!("/api/v1/calls/{}", logged.json()["id"].as_str().unwrap());
    client.get(&call_path).await;
    assert_eq!(
        client.get(&call_path).await.header("cache-status"),
        Some("crm; hit"),
        "the call is cached before the erasure"
    );

    let erased = client
        .send(client.request(Method::POST, &format!("/api/v1/contacts/{contact}/erase")))
        .await;
    assert_eq!(erased.status, 204);
    assert_eq!(client.get(&call_path).await.status, 404);
    assert_eq!(client.get_contact(&contact).await.status, 404);
    assert_eq!(
        client
            .get(&format!("/api/v1/contacts/{contact}/history"))
            .await
            .status,
        404
    );
    let replayed = create().await;
    assert_eq!(replayed.status, 410, "{}", replayed.text);
    assert_eq!(replayed.json()["type"], "/problems/erased");
    assert!(!replayed.text.contains("Forgotten") && !replayed.text.contains("2127365001"));
    assert_eq!(count_rows("contacts", tenant.id).await, 0);
}
