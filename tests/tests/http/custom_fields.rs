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

async fn contact(client: &TestClient, body: Value) -> crm_http_tests::Reply {
    client
        .send_json(Method::POST, "/api/v1/contacts", &body)
        .await
}

#[tokio::test]
async fn contacts_hold_values_checked_against_their_fields() {
    let (tenant, client) = client().await;
    for body in [
        json!({"key": "tier", "label": "Tier", "type": "single_select", "required": true,
               "options": [{"id": "gold", "label": "Gold"}, {"id": "silver", "label": "Silver"}]}),
        json!({"key": "seats", "label": "Seats", "type": "number", "min": 1, "default": 1}),
        json!({"key": "mobile", "label": "Mobile", "type": "phone"}),
        json!({"key": "account", "label": "Account", "type": "text", "unique": true}),
    ] {
        assert_eq!(define(&client, body).await.status, 201);
    }
    let created = contact(
        &client,
        json!({"first_name": "Ada", "custom": {"tier": "gold", "mobile": "(415) 555-0100", "account": "A-1"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let ada = created.json();
    assert_eq!(
        ada["custom"],
        json!({"tier": "gold", "seats": 1, "mobile": "+14155550100", "account": "A-1"}),
        "values stored canonically, the default filled in"
    );
    let id = ada["id"].as_str().unwrap().to_owned();
    assert_eq!(
        client.get(&format!("/api/v1/contacts/{id}")).await.json()["custom"]["tier"],
        "gold"
    );

    for (body, field, status) in [
        (
            json!({"first_name": "B", "custom": {"tier": "bronze"}}),
            "/custom/tier",
            422,
        ),
        (json!({"first_name": "B"}), "/custom/tier", 422),
        (
            json!({"first_name": "B", "custom": {"tier": "gold", "colour": "red"}}),
            "/custom/colour",
            422,
        ),
        (
            json!({"first_name": "B", "custom": {"tier": "gold", "seats": 0}}),
            "/custom/seats",
            422,
        ),
        (json!({"first_name": "B", "custom": "gold"}), "/custom", 422),
        (
            json!({"first_name": "B", "custom": {"tier": "gold", "account": "A-1"}}),
            "/custom/account",
            409,
        ),
    ] {
        let reply = contact(&client, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }

    // A patch changes values key by key; null removes one; each key is audited on its own.
    let patched = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            &json!({"custom": {"tier": "silver", "mobile": null}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.json()["custom"],
        json!({"tier": "silver", "seats": 1, "account": "A-1"})
    );
    let history = client
        .get(&format!("/api/v1/contacts/{id}/history"))
        .await
        .json();
    let fields: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"custom.tier") && fields.contains(&"custom.mobile"),
        "{fields:?}"
    );
    let event: Value = owner_db()
        .await
        .query_one(
            "select payload from outbox_events where tenant_id = $1 and event_type = 'contact.updated' order by id desc limit 1",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(event["custom"]["tier"], "silver", "events carry the values");

    // Rules that stored values would break are refused, saying how many.
    let fields = client.get("/api/v1/custom-fields").await.json()["data"].clone();
    let field_id = |key: &str| {
        fields
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let change = |key: &str, patch: Value| {
        let path = format!("/api/v1/custom-fields/{}", field_id(key));
        let client = &client;
        async move { client.send_json(Method::PATCH, &path, &patch).await }
    };
    let removed = change(
        "tier",
        json!({"options": [{"id": "gold", "label": "Gold"}]}),
    )
    .await;
    assert_eq!(removed.status, 409, "{}", removed.text);
    assert_eq!(removed.json()["errors"][0]["code"], "values_conflict");
    assert_eq!(
        change("seats", json!({"min": 2, "default": 2}))
            .await
            .status,
        409
    );
    assert_eq!(
        change("mobile", json!({"required": true})).await.status,
        409
    );
    let renamed = change(
        "tier",
        json!({"options": [{"id": "gold", "label": "Gold"}, {"id": "silver", "label": "Argent"}]}),
    )
    .await;
    assert_eq!(
        renamed.status, 200,
        "renaming an option keeps its values: {}",
        renamed.text
    );

    // An archived field's value stays, can be removed, cannot be set anew.
    assert_eq!(
        change("account", json!({"archived": true})).await.status,
        200
    );
    let kept = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            &json!({"first_name": "Ada L"}),
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert_eq!(kept.json()["custom"]["account"], "A-1");
    let set = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            &json!({"custom": {"account": "A-2"}}),
        )
        .await;
    assert_eq!(set.status, 422, "{}", set.text);
    assert_eq!(set.error_fields(), vec!["/custom/account".to_owned()]);

    // Erased with the contact: its history keeps no value.
    let eraser = TestClient::new(Some(tenant.token("contacts:erase")));
    let erased = eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{id}/erase")))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    let traces: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from audit_log where tenant_id = $1 and changes::text like '%A-1%'",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0);
}

/// A soft-deleted contact's unique value is free for others; restoring the contact once another
/// contact took it would make two holders: 409 at `/custom/<key>`, until the value is free again.
#[tokio::test]
async fn restoring_a_contact_whose_unique_value_was_taken_is_a_conflict() {
    let (_tenant, client) = client().await;
    let defined = define(
        &client,
        json!({"key": "account", "label": "Account", "type": "text", "unique": true}),
    )
    .await;
    assert_eq!(defined.status, 201, "{}", defined.text);
    let first = contact(
        &client,
        json!({"first_name": "First", "custom": {"account": "A-7"}}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first = first.json()["id"].as_str().unwrap().to_owned();
    let deleted = client
        .request(Method::DELETE, &format!("/api/v1/contacts/{first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let second = contact(
        &client,
        json!({"first_name": "Second", "custom": {"account": "A-7"}}),
    )
    .await;
    assert_eq!(second.status, 201, "{}", second.text);
    let second = second.json()["id"].as_str().unwrap().to_owned();

    let restore = format!("/api/v1/contacts/{first}/restore");
    let refused = client.send_json(Method::POST, &restore, &json!({})).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.error_fields(), ["/custom/account"]);
    assert_eq!(
        client.get_contact(&first).await.status,
        404,
        "still deleted"
    );

    let freed = client
        .patch_contact(&second, &json!({"custom": {"account": null}}), None)
        .await;
    assert_eq!(freed.status, 200, "{}", freed.text);
    let restored = client.send_json(Method::POST, &restore, &json!({})).await;
    assert_eq!(restored.status, 200, "{}", restored.text);
}
