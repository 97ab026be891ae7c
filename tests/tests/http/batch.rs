//! `POST /api/v1/contacts/batch`: one result per operation, in order; non-atomic batches keep what
//! succeeded, atomic ones write nothing when any operation fails; each operation audited and
//! evented as if made alone; the whole batch idempotent under one key.

use crm_http_tests::{count_rows, owner_db, Reply, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

async fn batch(client: &TestClient, body: &Value) -> Reply {
    client
        .send_json(Method::POST, "/api/v1/contacts/batch", body)
        .await
}

/// A contact body of about a kilobyte: a thousand of them make a body above the single-request
/// limit of 1 MiB, which a batch accepts.
fn wide_contact(n: usize) -> Value {
    json!({
        "first_name": format!("Batch{n}"),
        "last_name": "Person",
        "display_name": format!("{n} {}", "d".repeat(190)),
        "company": "c".repeat(200),
        "job_title": "j".repeat(200),
        "source": "s".repeat(100),
        "emails": [
            {"address": format!("batch{n}@one.example"), "primary": true},
            {"address": format!("batch{n}.second@two.example")},
            {"address": format!("batch{n}.third@three.example")},
            {"address": format!("batch{n}.{}@four.example", "f".repeat(50))},
            {"address": format!("batch{n}.{}@five.example", "g".repeat(50))}
        ]
    })
}

fn creates(n: usize, invalid_at: Option<usize>) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut contact = wide_contact(i);
            if Some(i) == invalid_at {
                contact["emails"][0]["address"] = json!("not an email");
            }
            json!({"op": "create", "contact": contact})
        })
        .collect()
}

/// Events of `event_type` in the tenant's outbox.
async fn events(tenant: &TestTenant, event_type: &str) -> i64 {
    owner_db()
        .await
        .query_one(
            "select count(*) from outbox_events where tenant_id = $1 and event_type = $2",
            &[&tenant.id.as_uuid(), &event_type],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn every_kind_of_operation_answers_in_order_as_if_made_alone() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let kept = client
        .create_contact(&json!({"first_name": "Kept", "emails": [{"address": "kept@example.com"}]}))
        .await;
    let gone = client.create_contact(&json!({"first_name": "Gone"})).await;
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "create", "contact": {"first_name": "New"}},
            {"op": "upsert", "contact": {"first_name": "Fresh", "emails": [{"address": "fresh@example.com"}]}},
            {"op": "upsert", "contact": {"job_title": "Engineer", "emails": [{"address": "KEPT@example.com"}]}},
            {"op": "update", "id": kept, "version": 2, "patch": {"company": "Acme"}},
            {"op": "delete", "id": gone, "version": 1}
        ]}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(
        (body["succeeded"].as_u64(), body["failed"].as_u64()),
        (Some(5), Some(0))
    );
    let results = body["results"].as_array().unwrap();
    let answered: Vec<(&str, u64, &str)> = results
        .iter()
        .map(|r| {
            (
                r["op"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answered,
        [
            ("create", 201, "created"),
            ("upsert", 201, "created"),
            ("upsert", 200, "updated"),
            ("update", 200, "updated"),
            ("delete", 204, "deleted"),
        ]
    );
    // The upsert found the existing contact by its email; the update then saw its new version.
    assert_eq!(results[2]["contact"]["id"], kept.as_str());
    assert_eq!(results[3]["contact"]["version"], 3);
    let stored = client.get_contact(&kept).await.json();
    assert_eq!(
        (stored["job_title"].as_str(), stored["company"].as_str()),
        (Some("Engineer"), Some("Acme"))
    );
    assert_eq!(client.get_contact(&gone).await.status, 404);
    assert_eq!(
        client
            .get_contact(results[0]["contact"]["id"].as_str().unwrap())
            .await
            .json()["first_name"],
        "New"
    );
    // Audited and evented one by one: 3 creates (two before the batch), 2 updates, 1 delete.
    assert_eq!(events(&tenant, "contact.created").await, 4);
    assert_eq!(events(&tenant, "contact.updated").await, 2);
    assert_eq!(events(&tenant, "contact.deleted").await, 1);
    assert_eq!(count_rows("audit_log", tenant.id).await, 7);
}

#[tokio::test]
async fn a_thousand_with_one_invalid_keeps_the_other_999() {
    let tenant = TestTenant::create("US").await;
    let body = json!({"operations": creates(1_000, Some(500))});
    assert!(
        body.to_string().len() > 1_048_576,
        "above the single-request limit"
    );
    let reply = batch(&tenant.client(), &body).await;
    assert_eq!(
        reply.status,
        207,
        "{}",
        &reply.text[..reply.text.len().min(500)]
    );
    let body = reply.json();
    assert_eq!(
        (body["succeeded"].as_u64(), body["failed"].as_u64()),
        (Some(999), Some(1))
    );
    let failed = &body["results"][500];
    assert_eq!(
        (failed["status"].as_u64(), failed["outcome"].as_str()),
        (Some(422), Some("failed"))
    );
    assert_eq!(failed["problem"]["type"], "/problems/validation-error");
    assert_eq!(
        failed["problem"]["errors"][0]["field"],
        "/operations/500/contact/emails/0/address"
    );
    assert_eq!(body["results"][501]["contact"]["first_name"], "Batch501");
    assert_eq!(count_rows("contacts", tenant.id).await, 999);
    assert_eq!(count_rows("audit_log", tenant.id).await, 999);
    assert_eq!(events(&tenant, "contact.created").await, 999);
}

#[tokio::test]
async fn an_atomic_thousand_with_one_invalid_writes_nothing() {
    let tenant = TestTenant::create("US").await;
    let body = json!({"atomic": true, "operations": creates(1_000, Some(500))});
    let reply = batch(&tenant.client(), &body).await;
    assert_eq!(
        reply.status,
        422,
        "{}",
        &reply.text[..reply.text.len().min(500)]
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    assert_eq!(problem["type"], "/problems/batch-not-applied");
    assert_eq!(
        reply.error_fields(),
        ["/operations/500/contact/emails/0/address"]
    );
    let results = problem["results"].as_array().unwrap();
    assert_eq!(results.len(), 1_000);
    assert_eq!(
        (
            results[0]["status"].as_u64(),
            results[0]["outcome"].as_str()
        ),
        (Some(424), Some("not_applied"))
    );
    assert!(results[0].get("contact").is_none());
    assert_eq!(results[500]["status"], 422);
    assert_eq!(count_rows("contacts", tenant.id).await, 0);
    assert_eq!(count_rows("audit_log", tenant.id).await, 0);
    assert_eq!(count_rows("outbox_events", tenant.id).await, 0);
}

#[tokio::test]
async fn each_failure_is_its_operations_own() {
    let tenant = TestTenant::create("US").await;
    let other = TestTenant::create("US").await;
    let client = tenant.client();
    let theirs = other
        .client()
        .create_contact(&json!({"first_name": "Theirs"}))
        .await;
    let held = client
        .create_contact(&json!({"first_name": "Held", "emails": [{"address": "held@example.com"}]}))
        .await;
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "update", "id": theirs, "patch": {"first_name": "Mine"}},
            {"op": "update", "id": held, "version": 7, "patch": {"first_name": "Stale"}},
            {"op": "create", "contact": {"first_name": "Twin", "emails": [{"address": "Held@Example.com"}]}},
            {"op": "merge", "id": held},
            {"op": "delete", "id": "not-a-uuid"},
            {"op": "update", "id": held, "patch": ["not", "an", "object"]},
            {"op": "upsert", "contact": {"first_name": "No email"}},
            {"op": "create", "contact": {"first_name": "Fine"}}
        ]}),
    )
    .await;
    assert_eq!(reply.status, 207, "{}", reply.text);
    let results = reply.json()["results"].clone();
    let statuses: Vec<u64> = (0..8)
        .map(|i| results[i]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [404, 412, 409, 422, 404, 422, 422, 201]);
    assert_eq!(results[2]["problem"]["existing_contact_id"], held.as_str());
    assert_eq!(
        results[2]["problem"]["errors"][0]["field"],
        "/operations/2/contact/emails"
    );
    assert!(results[3]["problem"]["errors"][0]["field"]
        .as_str()
        .unwrap()
        .starts_with("/operations/3"));
    assert_eq!(
        results[5]["problem"]["errors"][0]["field"],
        "/operations/5/patch"
    );
    assert_eq!(
        results[6]["problem"]["errors"][0]["field"],
        "/operations/6/contact/emails"
    );
    // Nothing of the failures was written: another tenant's contact is untouched, ours too.
    assert_eq!(
        other.client().get_contact(&theirs).await.json()["first_name"],
        "Theirs"
    );
    assert_eq!(client.get_contact(&held).await.json()["version"], 1);
    assert_eq!(count_rows("contacts", tenant.id).await, 2);
}

#[tokio::test]
async fn an_atomic_failure_names_every_operation_at_fault() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let missing = "0190a4d2-0000-7000-8000-000000000000";
    let reply = batch(
        &client,
        &json!({"atomic": true, "operations": [
            {"op": "create", "contact": {"first_name": "Would be"}},
            {"op": "delete", "id": missing},
            {"op": "create", "contact": {"emails": [{"address": "bad"}]}}
        ]}),
    )
    .await;
    // The first failure's status; every operation at fault pointed at.
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(
        reply.error_fields(),
        ["/operations/1", "/operations/2/contact/emails/0/address"]
    );
    assert_eq!(reply.json()["errors"][0]["code"], "not_found");
    assert_eq!(count_rows("contacts", tenant.id).await, 0);
}

#[tokio::test]
async fn the_whole_batch_is_idempotent_under_one_key() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let body = json!({"operations": creates(3, None)});
    let post = async |body: &Value| {
        client
            .send(
                client
                    .request(Method::POST, "/api/v1/contacts/batch")
                    .header("idempotency-key", "batch-key")
                    .json(body),
            )
            .await
    };
    let first = post(&body).await;
    let again = post(&body).await;
    assert_eq!((first.status, again.status), (200, 200), "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json(), again.json());
    assert_eq!(count_rows("contacts", tenant.id).await, 3);

    // An atomic batch that failed wrote nothing and left its key free: sent again, it runs again.
    let failing = json!({"atomic": true, "operations": [
        {"op": "create", "contact": {"first_name": "Would be"}},
        {"op": "create", "contact": {"emails": [{"address": "bad"}]}}
    ]});
    let post_failing = async || {
        client
            .send(
                client
                    .request(Method::POST, "/api/v1/contacts/batch")
                    .header("idempotency-key", "atomic-key")
                    .json(&failing),
            )
            .await
    };
    let (one, two) = (post_failing().await, post_failing().await);
    assert_eq!((one.status, two.status), (422, 422));
    assert_eq!(two.header("idempotent-replayed"), None);
    assert_eq!(count_rows("contacts", tenant.id).await, 3);
}

#[tokio::test]
async fn a_batch_holds_one_to_a_thousand_operations() {
    let client = TestTenant::create("US").await.client();
    let none = batch(&client, &json!({"operations": []})).await;
    assert_eq!(
        (none.status, none.error_fields()),
        (422, vec!["/operations".to_owned()])
    );
    let too_many: Vec<Value> = (0..1_001)
        .map(|_| json!({"op": "create", "contact": {}}))
        .collect();
    let over = batch(&client, &json!({"operations": too_many})).await;
    assert_eq!(
        (over.status, over.error_fields()),
        (422, vec!["/operations".to_owned()])
    );
    let unknown = batch(&client, &json!({"operations": [], "mode": "fast"})).await;
    assert_eq!(unknown.status, 422);
}

fn outcomes(reply: &Reply) -> Vec<(u64, String)> {
    reply.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A run of creates and upserts is made set-wise; it answers as the operations one by one would.
#[tokio::test]
async fn a_run_of_creates_and_upserts_answers_as_one_by_one() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let ada = client
        .create_contact(&json!({"first_name": "Ada", "emails": [{"address": "ada@run.example"}]}))
        .await;
    let bob = client
        .create_contact(&json!({"first_name": "Bob", "emails": [{"address": "bob@run.example"}]}))
        .await;
    client
        .create_contact(&json!({"first_name": "Eve", "emails": [{"address": "eve@run.example"}]}))
        .await;
    // Every email of the run is another (else the run would be made one by one).
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "create", "contact": {"first_name": "Cy", "emails": [{"address": "cy@run.example"}]}},
            {"op": "create", "contact": {"first_name": "Ada again", "emails": [{"address": "ADA@run.example"}]}},
            {"op": "upsert", "contact": {"job_title": "CTO", "emails": [{"address": "bob@run.example"}]}},
            {"op": "upsert", "contact": {"first_name": "Eve", "emails": [{"address": "eve@run.example"}]}},
            {"op": "create", "contact": {"emails": [{"address": "not an email"}]}},
            {"op": "upsert", "contact": {"first_name": "Di", "emails": [{"address": "di@run.example"}]}},
            {"op": "upsert", "contact": {"first_name": "No email"}}
        ]}),
    )
    .await;
    assert_eq!(reply.status, 207, "{}", reply.text);
    let to = |status: u64, outcome: &str| (status, outcome.to_owned());
    assert_eq!(
        outcomes(&reply),
        [
            to(201, "created"),
            to(409, "failed"),
            to(200, "updated"),
            to(200, "updated"),
            to(422, "failed"),
            to(201, "created"),
            to(422, "failed"),
        ]
    );
    let results = reply.json()["results"].clone();
    assert_eq!(results[1]["problem"]["existing_contact_id"], ada.as_str());
    assert_eq!(
        results[1]["problem"]["errors"][0]["field"],
        "/operations/1/contact/emails"
    );
    assert_eq!(results[2]["contact"]["id"], bob.as_str());
    assert_eq!(results[2]["contact"]["version"], 2);
    // An upsert that changes nothing answers the contact as it is, and writes nothing.
    assert_eq!(results[3]["contact"]["version"], 1);
    assert_eq!(
        results[4]["problem"]["errors"][0]["field"],
        "/operations/4/contact/emails/0/address"
    );
    assert_eq!(
        results[6]["problem"]["errors"][0]["field"],
        "/operations/6/contact/emails"
    );
    assert_eq!(client.get_contact(&bob).await.json()["job_title"], "CTO");
    assert_eq!(count_rows("contacts", tenant.id).await, 5);
    // Three creates before the batch, two in it, one update: one audit record and event each.
    assert_eq!(count_rows("audit_log", tenant.id).await, 6);
    assert_eq!(events(&tenant, "contact.updated").await, 1);
    // What the run wrote is searchable once it has committed.
    let found = client
        .send_json(
            Method::POST,
            "/api/v1/contacts/search",
            &json!({"q": "di@run.example"}),
        )
        .await;
    assert_eq!(
        found.json()["data"][0]["first_name"],
        "Di",
        "{}",
        found.text
    );
}

/// Where one operation of a run would see another's change, the run is made one by one.
#[tokio::test]
async fn operations_of_a_run_that_meet_are_made_in_order() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let two_emails = client
        .create_contact(&json!({"first_name": "Two", "emails": [
            {"address": "one@meet.example", "primary": true}, {"address": "two@meet.example"}]}))
        .await;
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "create", "contact": {"first_name": "First", "emails": [{"address": "same@meet.example"}]}},
            {"op": "create", "contact": {"first_name": "Second", "emails": [{"address": "same@meet.example"}]}},
            {"op": "upsert", "contact": {"job_title": "One", "emails": [{"address": "one@meet.example"}]}},
            {"op": "upsert", "contact": {"company": "Two", "emails": [{"address": "two@meet.example"}]}}
        ]}),
    )
    .await;
    assert_eq!(reply.status, 207, "{}", reply.text);
    let first = reply.json()["results"][0]["contact"]["id"].clone();
    assert_eq!(
        reply.json()["results"][1]["problem"]["existing_contact_id"],
        first
    );
    // The first upsert left the contact only its first email; the second, made after it, found
    // no one with the other and created a contact for it.
    let statuses: Vec<u64> = outcomes(&reply).iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 409, 200, 201]);
    let updated = client.get_contact(&two_emails).await.json();
    assert_eq!(updated["job_title"], "One");
    assert_eq!(updated["emails"].as_array().unwrap().len(), 1);
    assert_eq!(reply.json()["results"][3]["contact"]["company"], "Two");
}

/// A tenant that requires `If-Match` requires a version of every update; an upsert has none, so
/// one that finds its contact is 428, one that creates is not.
#[tokio::test]
async fn a_run_honours_a_tenant_that_requires_versions() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    client
        .create_contact(
            &json!({"first_name": "Held", "emails": [{"address": "held@version.example"}]}),
        )
        .await;
    tenant.require_if_match(true).await;
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "upsert", "contact": {"job_title": "X", "emails": [{"address": "held@version.example"}]}},
            {"op": "upsert", "contact": {"first_name": "New", "emails": [{"address": "new@version.example"}]}}
        ]}),
    )
    .await;
    let statuses: Vec<u64> = outcomes(&reply).iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [428, 201], "{}", reply.text);
    assert_eq!(
        reply.json()["results"][0]["problem"]["type"],
        "/problems/precondition-required"
    );
}

/// Tags and list memberships change in batches of the same shape: one result per operation, each
/// audited and evented as made alone, atomic all or nothing.
#[tokio::test]
async fn tags_and_list_memberships_change_in_the_same_shape() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let bob = client.create_contact(&json!({"first_name": "Bob"})).await;
    let missing = "0190a4d2-0000-7000-8000-000000000000";
    let created = |reply: Reply| reply.json()["id"].as_str().unwrap().to_owned();
    let tag = created(
        client
            .send_json(Method::POST, "/api/v1/tags", &json!({"name": "VIP"}))
            .await,
    );
    let list = created(
        client
            .send_json(Method::POST, "/api/v1/lists", &json!({"name": "Q1"}))
            .await,
    );

    let tags = client
        .send_json(
            Method::POST,
            "/api/v1/tags/batch",
            &json!({"operations": [
                {"op": "attach", "contact_id": ada, "tag_id": tag},
                {"op": "attach", "contact_id": bob, "tag_id": tag},
                {"op": "detach", "contact_id": bob, "tag_id": tag},
                {"op": "attach", "contact_id": missing, "tag_id": tag},
                {"op": "attach", "contact_id": ada, "tag_id": "not-a-tag"}
            ]}),
        )
        .await;
    assert_eq!(tags.status, 207, "{}", tags.text);
    let to = |status: u64, outcome: &str| (status, outcome.to_owned());
    assert_eq!(
        outcomes(&tags),
        [
            to(200, "attached"),
            to(200, "attached"),
            to(200, "detached"),
            to(404, "failed"),
            to(422, "failed"),
        ]
    );
    let results = tags.json()["results"].clone();
    assert_eq!(results[0]["contact_id"], ada.as_str());
    assert_eq!(results[0]["tags"][0]["name"], "VIP");
    assert_eq!(
        results[4]["problem"]["errors"][0]["field"],
        "/operations/4/tag_id"
    );
    let carried = |id: &str| {
        let client = &client;
        let path = format!("/api/v1/contacts/{id}/tags");
        async move {
            client.get(&path).await.json()["tags"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!((carried(&ada).await, carried(&bob).await), (1, 0));
    assert_eq!(events(&tenant, "contact.tags_changed").await, 3);

    let members = client
        .send_json(
            Method::POST,
            "/api/v1/lists/batch",
            &json!({"operations": [
                {"op": "add", "list_id": list, "contact_id": ada},
                {"op": "add", "list_id": list, "contact_id": bob},
                {"op": "remove", "list_id": list, "contact_id": bob},
                {"op": "add", "list_id": list, "contact_id": missing},
                {"op": "add", "list_id": missing, "contact_id": ada}
            ]}),
        )
        .await;
    assert_eq!(members.status, 207, "{}", members.text);
    assert_eq!(
        outcomes(&members),
        [
            to(200, "added"),
            to(200, "added"),
            to(200, "removed"),
            to(404, "failed"),
            to(404, "failed"),
        ]
    );
    assert_eq!(members.json()["results"][0]["list_id"], list.as_str());
    let on_list = async || {
        client
            .get(&format!("/api/v1/lists/{list}/contacts"))
            .await
            .json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(on_list().await, [ada.as_str()]);

    // Atomic: one failure and nothing changes.
    let atomic = client
        .send_json(
            Method::POST,
            "/api/v1/lists/batch",
            &json!({"atomic": true, "operations": [
                {"op": "add", "list_id": list, "contact_id": bob},
                {"op": "remove", "list_id": list, "contact_id": ada},
                {"op": "add", "list_id": list, "contact_id": missing}
            ]}),
        )
        .await;
    assert_eq!(atomic.status, 404, "{}", atomic.text);
    assert_eq!(atomic.json()["type"], "/problems/batch-not-applied");
    assert_eq!(atomic.error_fields(), ["/operations/2"]);
    assert_eq!(on_list().await, [ada.as_str()]);
}

/// An upsert that gives up one of its contact's emails, then a create with that email: one by one
/// the create finds it free, and so it does in a run.
#[tokio::test]
async fn an_email_an_upsert_gives_up_is_free_for_a_later_create() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let held = client
        .create_contact(&json!({"first_name": "Held", "emails": [
            {"address": "keep@free.example", "primary": true}, {"address": "give@free.example"}]}))
        .await;
    let reply = batch(
        &client,
        &json!({"operations": [
            {"op": "upsert", "contact": {"job_title": "Kept", "emails": [{"address": "keep@free.example"}]}},
            {"op": "create", "contact": {"first_name": "Given", "emails": [{"address": "give@free.example"}]}}
        ]}),
    )
    .await;
    let statuses: Vec<u64> = outcomes(&reply).iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 201], "{}", reply.text);
    assert_eq!(reply.json()["results"][0]["contact"]["id"], held.as_str());
    assert_eq!(reply.json()["results"][1]["contact"]["first_name"], "Given");
}
