//! Custom field definitions: every type with its rules checked, keys unique and stable, types
//! stable, options renamed in place, archived instead of deleted, at most 200 per tenant, audited
//! and evented, within the tenant.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

async fn client() -> (TestTenant, TestClient) {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(tenant.token("contacts:read contacts:write")));
    (tenant, client)
}

async fn define(client: &TestClient, body: Value) -> crm_http_tests::Reply {
    client
        .send_json(Method::POST, "/api/v1/custom-fields", &body)
        .await
}

#[tokio::test]
async fn every_type_is_defined_with_its_rules() {
    let (tenant, client) = client().await;
    for (key, body) in [
        (
            "nickname",
            json!({"type": "text", "max_length": 40, "required": false}),
        ),
        ("bio", json!({"type": "long_text"})),
        (
            "seats",
            json!({"type": "number", "min": 0, "max": 10000, "default": 1}),
        ),
        ("arr", json!({"type": "decimal", "min": 0.5})),
        ("vip", json!({"type": "boolean", "default": false})),
        ("renewal", json!({"type": "date", "default": "2027-01-31"})),
        ("last_demo", json!({"type": "date_time"})),
        (
            "tier",
            json!({"type": "single_select", "options": [{"label": "Gold"}, {"id": "silver", "label": "Silver"}]}),
        ),
        (
            "interests",
            json!({"type": "multi_select", "options": [{"label": "Rust"}, {"label": "Spin"}]}),
        ),
        ("website", json!({"type": "url"})),
        ("billing_email", json!({"type": "email", "unique": true})),
        (
            "mobile",
            json!({"type": "phone", "default": "(415) 555-0100"}),
        ),
    ] {
        let mut body = body;
        body["key"] = json!(key);
        body["label"] = json!(key.replace('_', " "));
        let reply = define(&client, body.clone()).await;
        assert_eq!(reply.status, 201, "{body}: {}", reply.text);
    }
    let listed = client.get("/api/v1/custom-fields").await.json();
    let fields = listed["data"].as_array().unwrap();
    assert_eq!(fields.len(), 12);
    assert_eq!(fields[0]["key"], "arr", "by key");
    let by_key = |key: &str| fields.iter().find(|f| f["key"] == key).unwrap().clone();
    assert_eq!(
        by_key("tier")["options"][0],
        json!({"id": "gold", "label": "Gold"})
    );
    assert_eq!(
        by_key("mobile")["default"],
        "+14155550100",
        "defaults are stored as values are"
    );
    assert_eq!(by_key("billing_email")["unique"], true);
    let events: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from outbox_events where tenant_id = $1 and event_type = 'custom_field.created'",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 12);
}

#[tokio::test]
async fn bad_definitions_name_their_fields() {
    let (_tenant, client) = client().await;
    for (body, field) in [
        (json!({"key": "Tier", "label": "T", "type": "text"}), "/key"),
        (json!({"key": "t", "label": "T", "type": "colour"}), "/type"),
        (json!({"key": "t", "type": "text"}), "/label"),
        (
            json!({"key": "t", "label": "T", "type": "boolean", "max_length": 3}),
            "/max_length",
        ),
        (
            json!({"key": "t", "label": "T", "type": "number", "min": 5, "max": 1}),
            "/max",
        ),
        (
            json!({"key": "t", "label": "T", "type": "number", "max": 10, "default": 11}),
            "/default",
        ),
        (
            json!({"key": "t", "label": "T", "type": "single_select"}),
            "/options",
        ),
        (
            json!({"key": "t", "label": "T", "type": "single_select", "options": [{"label": "A"}, {"label": "a"}]}),
            "/options/1",
        ),
        (
            json!({"key": "t", "label": "T", "type": "boolean", "unique": true}),
            "/unique",
        ),
        (
            json!({"key": "t", "label": "T", "type": "text", "colour": "red"}),
            "/colour",
        ),
    ] {
        let reply = define(&client, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }
    assert_eq!(
        define(
            &client,
            json!({"key": "tier", "label": "Tier", "type": "text"})
        )
        .await
        .status,
        201
    );
    let again = define(
        &client,
        json!({"key": "tier", "label": "Other", "type": "number"}),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error_fields(), vec!["/key".to_owned()]);
}

#[tokio::test]
async fn definitions_change_in_place_but_never_their_key_or_type() {
    let (_tenant, client) = client().await;
    let created = define(
        &client,
        json!({"key": "tier", "label": "Tier", "type": "single_select",
               "options": [{"id": "gold", "label": "Gold"}]}),
    )
    .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let etag = created.header("etag").unwrap().to_owned();
    let renamed = client
        .send(
            client
                .request(Method::PATCH, &format!("/api/v1/custom-fields/{id}"))
                .header("if-match", &etag)
                .json(&json!({"label": "Plan", "options": [{"id": "gold", "label": "Gold plus"}, {"label": "Bronze"}]})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        renamed.json()["options"][0],
        json!({"id": "gold", "label": "Gold plus"})
    );
    let stale = client
        .send(
            client
                .request(Method::PATCH, &format!("/api/v1/custom-fields/{id}"))
                .header("if-match", &etag)
                .json(&json!({"label": "Again"})),
        )
        .await;
    assert_eq!(stale.status, 412);
    for (patch, field) in [
        (json!({"key": "plan"}), "/key"),
        (json!({"type": "text", "options": null}), "/type"),
    ] {
        let reply = client
            .send_json(
                Method::PATCH,
                &format!("/api/v1/custom-fields/{id}"),
                &patch,
            )
            .await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()]);
    }
    let archived = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/custom-fields/{id}"),
            &json!({"archived": true}),
        )
        .await;
    assert_eq!(archived.status, 200, "{}", archived.text);
    assert!(client.get("/api/v1/custom-fields").await.json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        client
            .get("/api/v1/custom-fields?include_archived=true")
            .await
            .json()["data"][0]["key"],
        "tier"
    );
    assert_eq!(
        client
            .send(client.request(Method::DELETE, &format!("/api/v1/custom-fields/{id}")))
            .await
            .status,
        405,
        "archived, never deleted"
    );
    let (_other, stranger) = client_of_another_tenant().await;
    assert_eq!(
        stranger
            .get(&format!("/api/v1/custom-fields/{id}"))
            .await
            .status,
        404
    );
}

async fn client_of_another_tenant() -> (TestTenant, TestClient) {
    client().await
}

#[tokio::test]
async fn a_tenant_defines_at_most_two_hundred_fields() {
    let (_tenant, client) = client().await;
    for i in 0..200 {
        let reply = define(
            &client,
            json!({"key": format!("f{i}"), "label": format!("F {i}"), "type": "boolean"}),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let one_more = define(
        &client,
        json!({"key": "f200", "label": "F", "type": "boolean"}),
    )
    .await;
    assert_eq!(one_more.status, 409, "{}", one_more.text);
    assert_eq!(one_more.json()["errors"][0]["code"], "too_many_fields");
}
