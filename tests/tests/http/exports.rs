//! `GET /api/v1/contacts/export` and `POST /api/v1/contacts/export`: every contact the list's
//! filters (or a search body) match, streamed as CSV or NDJSON across as many pages as it takes,
//! with custom fields, tags, preferences and consent; formulas neutralised; opted-out contacts left
//! out on request; another tenant's contacts never in it.

use crm_http_tests::{Reply, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

fn client_of(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(tenant.token("contacts:read contacts:write")))
}

async fn post(client: &TestClient, path: &str, body: Value) -> Reply {
    let reply = client.send_json(Method::POST, path, &body).await;
    assert!(reply.status < 300, "{path}: {}", reply.text);
    reply
}

async fn export(client: &TestClient, query: &str) -> Reply {
    let reply = client
        .get(&format!("/api/v1/contacts/export?{query}"))
        .await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    reply
}

/// A CSV body as one map of column to cell per row.
fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header line")
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed CSV record");
            assert_eq!(record.len(), header.len(), "{record:?}");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn ndjson_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test]
async fn a_csv_export_carries_custom_fields_tags_preferences_and_consent() {
    let tenant = TestTenant::create("GB").await;
    let client = client_of(&tenant);
    post(
        &client,
        "/api/v1/custom-fields",
        json!({"key": "plan", "label": "Plan", "type": "text"}),
    )
    .await;
    let ada = client
        .create_contact(&json!({
            "first_name": "Ada", "last_name": "Lovelace",
            "emails": [{"address": "ada@example.com", "label": "work"}, {"address": "ada@home.example"}],
            "phones": [{"number": "+44 20 7946 0000"}],
            "company": "=HYPERLINK(\"http://evil.example\",\"x\")",
            "lifecycle_stage": "customer",
            "custom": {"plan": "pro"},
        }))
        .await;
    let grace = client
        .create_contact(&json!({"first_name": "Grace", "last_name": "Hopper"}))
        .await;
    let vip = post(&client, "/api/v1/tags", json!({"name": "vip"}))
        .await
        .json()["id"]
        .clone();
    post(
        &client,
        &format!("/api/v1/contacts/{ada}/tags"),
        json!({"tag_id": vip}),
    )
    .await;
    client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{ada}/preferences"),
            &json!({"language": "en-GB", "do_not_contact": {"sms": true}}),
        )
        .await;
    post(
        &client,
        &format!("/api/v1/contacts/{ada}/consents"),
        json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent",
               "source": "signup form"}),
    )
    .await;

    let reply = export(&client, "format=csv&sort=last_name").await;
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/csv")));
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"contacts.csv\"")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let rows = csv_rows(&reply.text);
    assert_eq!(rows.len(), 2);
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!(
        (first["id"].as_str(), second["id"].as_str()),
        (grace.as_str(), ada.as_str())
    );
    let ada_row = second;
    assert_eq!(ada_row["emails"], "ada@example.com; ada@home.example");
    assert_eq!(ada_row["email_labels"], "work; ");
    // Cells a spreadsheet would run as formulas start with a quote.
    assert_eq!(ada_row["phones"], "'+44 20 7946 0000");
    assert_eq!(
        ada_row["company"],
        "'=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    assert_eq!(ada_row["lifecycle_stage"], "customer");
    assert_eq!(ada_row["custom.plan"], "pro");
    assert_eq!(ada_row["tags"], "vip");
    assert_eq!(ada_row["language"], "en-GB");
    assert_eq!(ada_row["do_not_contact"], "sms");
    assert_eq!(ada_row["consent.newsletter"], "granted");
    assert_eq!(first["consent.newsletter"], "");
    assert_eq!(first["tags"], "");
}

#[tokio::test]
async fn an_export_streams_every_page_and_only_the_tenants_contacts() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let other = TestTenant::create("US").await;
    client_of(&other)
        .create_contact(&json!({"first_name": "Stranger"}))
        .await;
    // 2,345 contacts: three pages of the export, the last one partial.
    let mut created = HashSet::new();
    for start in (0..2_345).step_by(1_000) {
        let operations: Vec<Value> = (start..(start + 1_000).min(2_345))
            .map(|n| json!({"op": "create", "contact": {"first_name": format!("Person{n}")}}))
            .collect();
        let reply = post(
            &client,
            "/api/v1/contacts/batch",
            json!({"operations": operations}),
        )
        .await;
        for result in reply.json()["results"].as_array().unwrap() {
            assert_eq!(result["status"], 201, "{result}");
            created.insert(result["contact"]["id"].as_str().unwrap().to_owned());
        }
    }
    let reply = export(&client, "format=ndjson").await;
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        reply.header("content-length"),
        None,
        "a streamed body has no declared length"
    );
    let lines = ndjson_lines(&reply.text);
    let exported: HashSet<String> = lines
        .iter()
        .map(|line| line["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines.len(), 2_345, "each contact once");
    assert_eq!(exported, created);
    // The list's sort holds across pages.
    let created_at: Vec<&str> = lines
        .iter()
        .map(|line| line["created_at"].as_str().unwrap())
        .collect();
    assert!(created_at.windows(2).all(|pair| pair[0] <= pair[1]));
}

#[tokio::test]
async fn an_export_reads_the_lists_filters_and_a_search_body() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let ada = client
        .create_contact(&json!({"first_name": "Ada", "company": "Analytical"}))
        .await;
    let bob = client
        .create_contact(&json!({"first_name": "Bob", "company": "Analytical"}))
        .await;
    client
        .create_contact(&json!({"first_name": "Cy", "company": "Other"}))
        .await;
    client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{bob}/preferences"),
            &json!({"do_not_contact": {"email": true}}),
        )
        .await;
    let names = |reply: &Reply| -> Vec<String> {
        let mut names: Vec<String> = ndjson_lines(&reply.text)
            .iter()
            .map(|line| line["first_name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };

    let filtered = export(&client, "format=ndjson&company=Analytical").await;
    assert_eq!(names(&filtered), ["Ada", "Bob"]);
    // Leaving out whoever opted out of a channel.
    let contactable = export(
        &client,
        "format=ndjson&company=Analytical&contactable_via=email",
    )
    .await;
    assert_eq!(names(&contactable), ["Ada"]);
    assert_eq!(ndjson_lines(&contactable.text)[0]["id"], ada.as_str());

    let searched = client
        .send(
            client
                .request(Method::POST, "/api/v1/contacts/export")
                .header("accept", "application/x-ndjson")
                .json(&json!({"filter": {"field": "company", "op": "eq", "value": "Other"}})),
        )
        .await;
    assert_eq!(searched.status, 200, "{}", searched.text);
    assert_eq!(names(&searched), ["Cy"]);
}

#[tokio::test]
async fn a_bad_export_request_is_a_problem_naming_what_is_wrong() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let bad_format = client.get("/api/v1/contacts/export?format=xlsx").await;
    assert_eq!(bad_format.status, 400, "{}", bad_format.text);
    assert!(bad_format.text.contains("format"), "{}", bad_format.text);
    let paged = client.get("/api/v1/contacts/export?limit=10").await;
    assert_eq!(paged.status, 400, "{}", paged.text);
    let bad_filter = client
        .get("/api/v1/contacts/export?created_after=yesterday")
        .await;
    assert_eq!(bad_filter.status, 400, "{}", bad_filter.text);
    let paged_search = client
        .send_json(
            Method::POST,
            "/api/v1/contacts/export",
            &json!({"limit": 10, "cursor": "x"}),
        )
        .await;
    assert_eq!(paged_search.status, 422, "{}", paged_search.text);
    assert_eq!(paged_search.error_fields(), ["/limit", "/cursor"]);
    let unread = TestClient::new(Some(tenant.token("contacts:write")))
        .get("/api/v1/contacts/export")
        .await;
    assert_eq!(unread.status, 403, "{}", unread.text);
}
