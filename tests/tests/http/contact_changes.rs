//! Changing contacts: merge patch with concurrency control, soft delete and restore, erasure,
//! upsert, and the history the audit trail gives back.

use crm_http_tests::{count_rows, owner_db, public_tables, Reply, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

async fn event_types(tenant: &TestTenant, id: &str) -> Vec<String> {
    let id: uuid::Uuid = id.parse().unwrap();
    owner_db()
        .await
        .query(
            "select event_type from outbox_events where tenant_id = $1 and entity_id = $2 order by seq",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn post(client: &TestClient, path: &str) -> Reply {
    client.send(client.request(Method::POST, path)).await
}

#[tokio::test]
async fn the_full_representation_round_trips() {
    let client = TestTenant::create("GB").await.client();
    let body = json!({
        "first_name": "Ada", "last_name": "Lovelace",
        "company": " Analytical Engines Ltd ", "job_title": "Programmer",
        "address": {"street": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "gb"},
        "lifecycle_stage": "customer", "owner_id": "user-42", "source": "import"
    });
    let reply = client.post_contact(&body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let contact = reply.json();
    assert_eq!(contact["company"], "Analytical Engines Ltd");
    assert_eq!(contact["address"]["country"], "GB");
    assert_eq!(contact["address"]["region"], Value::Null);
    assert_eq!(contact["lifecycle_stage"], "customer");
    assert_eq!(contact["owner_id"], "user-42");
    assert_eq!(contact["source"], "import");
    assert_eq!(
        client
            .get_contact(contact["id"].as_str().unwrap())
            .await
            .json(),
        contact
    );
}

#[tokio::test]
async fn invalid_new_fields_are_reported_together() {
    let client = TestTenant::create("US").await.client();
    let reply = client
        .post_contact(&json!({
            "first_name": "Ada", "lifecycle_stage": "prospect",
            "address": {"country": "UK", "postal_code": "x".repeat(21)}, "company": "c".repeat(201)
        }))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.error_fields(),
        vec![
            "/company",
            "/address/postal_code",
            "/address/country",
            "/lifecycle_stage"
        ]
    );
}

#[tokio::test]
async fn a_merge_patch_changes_only_what_it_names() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({
            "first_name": "Ada", "last_name": "Byron", "company": "Engines",
            "emails": [{"address": "ada@example.com"}]
        }))
        .await;
    let reply = client
        .patch_contact(
            &id,
            &json!({"last_name": "Lovelace", "company": null}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let contact = reply.json();
    assert_eq!(contact["last_name"], "Lovelace");
    assert_eq!(
        contact["display_name"], "Ada Lovelace",
        "a derived display name follows the names"
    );
    assert_eq!(contact["company"], Value::Null);
    assert_eq!(contact["emails"][0]["address"], "ada@example.com");
    assert_eq!(contact["version"], 2);
    assert_eq!(reply.header("etag"), Some("\"v2\""));
    assert_eq!(
        event_types(&tenant, &id).await,
        vec!["contact.created", "contact.updated"]
    );
}

#[tokio::test]
async fn an_explicit_display_name_is_kept() {
    let client = TestTenant::create("US").await.client();
    let id = client
        .create_contact(&json!({"first_name": "Ada", "display_name": "The Countess"}))
        .await;
    let reply = client
        .patch_contact(&id, &json!({"last_name": "Lovelace"}), None)
        .await;
    assert_eq!(reply.json()["display_name"], "The Countess");
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version_and_records_nothing() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client.create_contact(&json!({"first_name": "Same"})).await;
    let reply = client
        .patch_contact(&id, &json!({"first_name": "Same"}), Some("\"v1\""))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["version"], 1);
    assert_eq!(count_rows("audit_log", tenant.id).await, 1);
}

#[tokio::test]
async fn bad_patches_are_422_naming_the_field() {
    let client = TestTenant::create("US").await.client();
    let id = client.create_contact(&json!({"first_name": "Ada"})).await;
    for (patch, field) in [
        (json!({"version": 9}), "/version"),
        (json!({"id": "x"}), "/id"),
        (json!({"nickname": "A"}), "/nickname"),
        (
            json!({"emails": [{"address": "nope"}]}),
            "/emails/0/address",
        ),
        (json!({"first_name": null}), ""),
        (json!(["not", "an", "object"]), ""),
    ] {
        let reply = client.patch_contact(&id, &patch, None).await;
        assert_eq!(reply.status, 422, "{patch}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{patch}");
    }
    assert_eq!(
        client.get_contact(&id).await.json()["version"],
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_stale_if_match_is_412() {
    let client = TestTenant::create("US").await.client();
    let id = client.create_contact(&json!({"first_name": "Ada"})).await;
    assert_eq!(
        client
            .patch_contact(&id, &json!({"last_name": "A"}), Some("\"v1\""))
            .await
            .status,
        200
    );
    let stale = client
        .patch_contact(&id, &json!({"last_name": "B"}), Some("\"v1\""))
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.json()["type"], "/problems/precondition-failed");
    assert_eq!(client.get_contact(&id).await.json()["last_name"], "A");
}

#[tokio::test]
async fn twenty_concurrent_patches_with_one_if_match_give_one_200() {
    let client = TestTenant::create("US").await.client();
    let id = client.create_contact(&json!({"first_name": "Racer"})).await;
    let patches: Vec<Value> = (0..20)
        .map(|n| json!({"last_name": format!("Runner {n}")}))
        .collect();
    let replies = futures::future::join_all(
        patches
            .iter()
            .map(|patch| client.patch_contact(&id, patch, Some("\"v1\""))),
    )
    .await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [vec![200], vec![412; 19]].concat());
    assert_eq!(client.get_contact(&id).await.json()["version"], 2);
}

#[tokio::test]
async fn a_tenant_can_require_if_match() {
    let tenant = TestTenant::create("US").await;
    tenant.require_if_match(true).await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({"first_name": "Careful"}))
        .await;
    let reply = client
        .patch_contact(&id, &json!({"last_name": "X"}), None)
        .await;
    assert_eq!(reply.status, 428);
    assert_eq!(
        client
            .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{id}")))
            .await
            .status,
        428
    );
    assert_eq!(
        client
            .patch_contact(&id, &json!({"last_name": "X"}), Some("\"v1\""))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn delete_is_soft_and_restore_brings_the_contact_back() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({"first_name": "Gone", "emails": [{"address": "gone@example.com"}]}))
        .await;
    let deleted = client
        .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{id}")))
        .await;
    assert_eq!(deleted.status, 204);
    // A deleted contact is not found, unless asked for.
    assert_eq!(client.get_contact(&id).await.status, 404);
    let read = client
        .get(&format!("/api/v1/contacts/{id}?include_deleted=true"))
        .await
        .json();
    assert!(read["deleted_at"].is_string());
    assert_eq!(
        client
            .get(&format!("/api/v1/contacts/{id}?include_deleted=maybe"))
            .await
            .status,
        400
    );
    let listed = client.get("/api/v1/contacts").await.json();
    assert!(listed["data"].as_array().unwrap().is_empty());
    let with_deleted = client
        .get("/api/v1/contacts?include_deleted=true")
        .await
        .json();
    assert_eq!(with_deleted["data"][0]["id"], id.as_str());
    assert_eq!(
        client
            .patch_contact(&id, &json!({"last_name": "X"}), None)
            .await
            .status,
        409
    );
    // Deleting again changes nothing.
    assert_eq!(
        client
            .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{id}")))
            .await
            .status,
        204
    );

    let restored = post(&client, &format!("/api/v1/contacts/{id}/restore")).await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.json()["deleted_at"], Value::Null);
    assert_eq!(
        event_types(&tenant, &id).await,
        vec!["contact.created", "contact.deleted", "contact.restored"]
    );
}

#[tokio::test]
async fn a_deleted_contacts_email_is_free_and_restoring_it_then_conflicts() {
    let client = TestTenant::create("US").await.client();
    let email = json!([{"address": "moved@example.com"}]);
    let old = client
        .create_contact(&json!({"first_name": "Old", "emails": email}))
        .await;
    client
        .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{old}")))
        .await;
    let new = client
        .create_contact(&json!({"first_name": "New", "emails": email}))
        .await;
    let restore = post(&client, &format!("/api/v1/contacts/{old}/restore")).await;
    assert_eq!(restore.status, 409, "{}", restore.text);
    assert_eq!(restore.json()["existing_contact_id"], new.as_str());
}

#[tokio::test]
async fn erase_needs_its_own_scope_and_leaves_no_trace_of_the_email() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let secret = "erase.me.8d1f@example.com";
    let reply = client
        .send(
            client
                .request(Method::POST, "/api/v1/contacts")
                .header("idempotency-key", "erase-test-create")
                .json(&json!({"first_name": "Private", "emails": [{"address": secret}], "phones": [{"number": "+1 212 736 5000"}]})),
        )
        .await;
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    client
        .patch_contact(&id, &json!({"last_name": "Person"}), None)
        .await;

    assert_eq!(
        post(&client, &format!("/api/v1/contacts/{id}/erase"))
            .await
            .status,
        403
    );
    let eraser = TestClient::new(Some(tenant.token("contacts:erase")));
    assert_eq!(
        post(&eraser, &format!("/api/v1/contacts/{id}/erase"))
            .await
            .status,
        204
    );
    assert_eq!(client.get_contact(&id).await.status, 404);
    assert_eq!(
        post(&eraser, &format!("/api/v1/contacts/{id}/erase"))
            .await
            .status,
        404
    );

    let db = owner_db().await;
    for table in public_tables(&db).await {
        let hits: i64 = db
            .query_one(
                &format!("select count(*) from {table} t where t::text ilike '%' || $1 || '%'"),
                &[&secret],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(hits, 0, "{table} still holds the erased email");
    }
    let stored: i64 = db
        .query_one(
            "select count(*) from idempotency_keys where convert_from(response_body, 'UTF8') ilike '%' || $1 || '%'",
            &[&secret],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored, 0,
        "a stored idempotent response still holds the email"
    );
    assert_eq!(
        event_types(&tenant, &id).await,
        vec!["contact.created", "contact.updated", "contact.erased"]
    );
}

#[tokio::test]
async fn upsert_creates_then_updates_by_email() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let upsert = |body: Value| {
        let client = &client;
        async move {
            client
                .send(
                    client
                        .request(Method::POST, "/api/v1/contacts/upsert")
                        .json(&body),
                )
                .await
        }
    };
    let created =
        upsert(json!({"first_name": "Up", "emails": [{"address": "UP@example.com"}]})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("upsert-result"), Some("created"));
    let updated =
        upsert(json!({"emails": [{"address": "up@EXAMPLE.com"}], "company": "Acme"})).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.header("upsert-result"), Some("updated"));
    assert_eq!(updated.json()["id"], created.json()["id"]);
    assert_eq!(
        updated.json()["first_name"],
        "Up",
        "fields the upsert does not name are kept"
    );
    assert_eq!(updated.json()["company"], "Acme");
    assert_eq!(count_rows("contacts", tenant.id).await, 1);
    let without_email = upsert(json!({"first_name": "No key"})).await;
    assert_eq!(without_email.status, 422);
    assert_eq!(without_email.error_fields(), vec!["/emails"]);
}

#[tokio::test]
async fn concurrent_upserts_of_a_new_email_make_one_contact() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let replies = futures::future::join_all((0..6).map(|n| {
        client.send(
            client
                .request(Method::POST, "/api/v1/contacts/upsert")
                .json(&json!({"emails": [{"address": "race@example.com"}], "job_title": format!("T{n}")})),
        )
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!(count_rows("contacts", tenant.id).await, 1);
}

#[tokio::test]
async fn history_lists_field_changes_newest_first_and_pages() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client.create_contact(&json!({"first_name": "Ada"})).await;
    client
        .patch_contact(&id, &json!({"last_name": "Byron"}), None)
        .await;
    client
        .patch_contact(
            &id,
            &json!({"last_name": "Lovelace", "company": "Engines"}),
            None,
        )
        .await;

    let history = client.get(&format!("/api/v1/contacts/{id}/history")).await;
    assert_eq!(history.status, 200, "{}", history.text);
    let entries = history.json()["data"].as_array().unwrap().clone();
    let latest: Vec<(&str, &Value, &Value)> = entries[..3]
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), &e["old"], &e["new"]))
        .collect();
    assert!(
        latest.contains(&("last_name", &json!("Byron"), &json!("Lovelace"))),
        "{latest:?}"
    );
    assert!(
        latest.contains(&("company", &Value::Null, &json!("Engines"))),
        "{latest:?}"
    );
    assert!(
        latest.contains(&("display_name", &json!("Ada Byron"), &json!("Ada Lovelace"))),
        "{latest:?}"
    );
    assert_eq!(entries[0]["actor"], "user-test");
    assert_eq!(entries[0]["action"], "update");
    assert_eq!(entries.last().unwrap()["action"], "create");

    // Page by one: the same entries, in the same order.
    let mut paged = Vec::new();
    let mut path = format!("/api/v1/contacts/{id}/history?limit=1");
    loop {
        let page = client.get(&path).await.json();
        paged.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/contacts/{id}/history?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, entries);
    let stranger = TestTenant::create("US").await.client();
    assert_eq!(
        stranger
            .get(&format!("/api/v1/contacts/{id}/history"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn another_tenant_cannot_change_a_contact() {
    let owner = TestTenant::create("US").await;
    let id = owner
        .client()
        .create_contact(&json!({"first_name": "Mine"}))
        .await;
    let stranger = TestTenant::create("US").await;
    let client = stranger.client();
    assert_eq!(
        client
            .patch_contact(&id, &json!({"last_name": "X"}), None)
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .send(client.request(Method::DELETE, &format!("/api/v1/contacts/{id}")))
            .await
            .status,
        404
    );
    assert_eq!(
        post(&client, &format!("/api/v1/contacts/{id}/restore"))
            .await
            .status,
        404
    );
    let eraser = TestClient::new(Some(stranger.token("contacts:erase")));
    assert_eq!(
        post(&eraser, &format!("/api/v1/contacts/{id}/erase"))
            .await
            .status,
        404
    );
    assert_eq!(owner.client().get_contact(&id).await.json()["version"], 1);
}

/// Upsert and restore change an existing contact: they honour `If-Match` and the tenant's
/// `require_if_match` as PATCH and DELETE do.
#[tokio::test]
async fn upsert_and_restore_honour_preconditions() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let upsert = async |body: Value, if_match: Option<&str>| {
        let mut request = client
            .request(Method::POST, "/api/v1/contacts/upsert")
            .json(&body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        client.send(request).await
    };
    let body = json!({"first_name": "Pre", "emails": [{"address": "pre@example.com"}]});
    // Creating needs no precondition; expecting a version of a contact that does not exist fails.
    assert_eq!(upsert(body.clone(), Some("\"v1\"")).await.status, 412);
    let created = upsert(body.clone(), None).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let stale = upsert(
        json!({"first_name": "Stale", "emails": [{"address": "pre@example.com"}]}),
        Some("\"v7\""),
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(client.get_contact(&id).await.json()["first_name"], "Pre");

    tenant.require_if_match(true).await;
    let unconditional = upsert(
        json!({"first_name": "Bare", "emails": [{"address": "pre@example.com"}]}),
        None,
    )
    .await;
    assert_eq!(unconditional.status, 428);
    let current = upsert(
        json!({"first_name": "Matched", "emails": [{"address": "pre@example.com"}]}),
        Some("\"v1\""),
    )
    .await;
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(current.header("upsert-result"), Some("updated"));

    let deleted = client
        .send(
            client
                .request(Method::DELETE, &format!("/api/v1/contacts/{id}"))
                .header("if-match", "\"v2\""),
        )
        .await;
    assert_eq!(deleted.status, 204);
    let restore = async |if_match: Option<&str>| {
        let mut request = client.request(Method::POST, &format!("/api/v1/contacts/{id}/restore"));
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        client.send(request).await.status
    };
    assert_eq!(restore(None).await, 428);
    assert_eq!(restore(Some("\"v1\"")).await, 412);
    assert_eq!(restore(Some("\"v3\"")).await, 200);
}

/// The row versions (`xmin`) of a contact's email rows and of its phone rows.
async fn list_row_versions(id: &str) -> (Vec<String>, Vec<String>) {
    let row = owner_db()
        .await
        .query_one(
            "select array(select xmin::text from contact_emails
                          where contact_id = $1::text::uuid order by position),
                    array(select xmin::text from contact_phones
                          where contact_id = $1::text::uuid order by position)",
            &[&id],
        )
        .await
        .expect("the contact's list rows");
    (row.get(0), row.get(1))
}

/// An update writes again only the list that changed: new phones leave the email rows as they
/// were and a relabelled email leaves the phone rows, through a PATCH and a batch upsert alike,
/// and what reads back is what was sent.
#[tokio::test]
async fn an_update_rewrites_only_the_list_that_changed() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let id = client
        .create_contact(&json!({
            "first_name": "Lists",
            "emails": [{"address": "lists@example.com", "label": "work"}],
            "phones": [{"number": "+1 212 736 5000"}]
        }))
        .await;
    let (emails, phones) = list_row_versions(&id).await;

    let rephoned = client
        .patch_contact(
            &id,
            &json!({"phones": [{"number": "+1 212 736 5001"}]}),
            None,
        )
        .await;
    assert_eq!(rephoned.status, 200, "{}", rephoned.text);
    assert_eq!(rephoned.json()["phones"][0]["e164"], "+12127365001");
    assert_eq!(rephoned.json()["emails"][0]["label"], "work");
    let (emails_after, phones_after) = list_row_versions(&id).await;
    assert_eq!(emails_after, emails, "the emails did not change");
    assert_ne!(phones_after, phones, "the phones did");

    let upserted = client
        .send_json(
            Method::POST,
            "/api/v1/contacts/batch",
            &json!({"operations": [{"op": "upsert", "contact": {
                "emails": [{"address": "lists@example.com"}], "job_title": "Relabelled"}}]}),
        )
        .await;
    assert_eq!(upserted.status, 200, "{}", upserted.text);
    let read = client.get_contact(&id).await;
    assert_eq!(
        read.json()["emails"],
        json!([{"address": "lists@example.com", "label": null, "primary": true}])
    );
    assert_eq!(read.json()["phones"][0]["e164"], "+12127365001");
    let (emails_last, phones_last) = list_row_versions(&id).await;
    assert_ne!(emails_last, emails_after, "the email lost its label");
    assert_eq!(phones_last, phones_after, "the phones did not change");
}
