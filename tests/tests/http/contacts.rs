//! Creating, reading and listing contacts through HTTP, against a real PostgreSQL.

use crm_http_tests::{count_rows, owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn create_then_read_returns_the_normalised_contact() {
    let tenant = TestTenant::create("GB").await;
    let client = tenant.client();
    let created = client
        .post_contact(&json!({
            "first_name": "  Ada ",
            "last_name": "Lovelace",
            "emails": [{"address": " Ada@Example.COM ", "label": "work"}],
            "phones": [
                {"number": "020 7946 0018", "label": "office"},
                {"number": "+49 30 901820", "label": "berlin", "primary": true}
            ]
        }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let body = created.json();
    let id = body["id"].as_str().expect("an id");
    assert_eq!(body["display_name"], "Ada Lovelace");
    assert_eq!(body["first_name"], "Ada");
    assert_eq!(body["emails"][0]["address"], "Ada@example.com");
    assert_eq!(body["emails"][0]["primary"], true);
    // Read with the tenant's default region (GB) when the number has no country code...
    assert_eq!(body["phones"][0]["e164"], "+442079460018");
    assert_eq!(body["phones"][0]["region"], "GB");
    assert_eq!(body["phones"][0]["number"], "020 7946 0018");
    assert_eq!(body["phones"][0]["primary"], false);
    // ...and with its own country when it has one.
    assert_eq!(body["phones"][1]["e164"], "+4930901820");
    assert_eq!(body["phones"][1]["region"], "DE");
    assert_eq!(body["version"], 1);
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/contacts/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"v1\""));

    let read = client.get_contact(id).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), body);
    assert_eq!(read.header("etag"), Some("\"v1\""));
}

#[tokio::test]
async fn a_read_with_the_current_etag_answers_304() {
    let client = TestTenant::create("US").await.client();
    let created = client.post_contact(&json!({"first_name": "Grace"})).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let reply = client
        .send(
            client
                .request(Method::GET, &format!("/api/v1/contacts/{id}"))
                .header("if-none-match", "\"v1\""),
        )
        .await;
    assert_eq!(reply.status, 304);
    assert_eq!(reply.header("etag"), Some("\"v1\""));
    assert!(reply.text.is_empty());
    let stale = client
        .send(
            client
                .request(Method::GET, &format!("/api/v1/contacts/{id}"))
                .header("if-none-match", "\"v0\""),
        )
        .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn create_writes_the_audit_record_and_the_event_in_the_same_transaction() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let reply = client
        .send(
            client
                .request(Method::POST, "/api/v1/contacts")
                .header("x-request-id", "audit-trail-check-1")
                .json(
                    &json!({"first_name": "Katherine", "emails": [{"address": "kj@example.com"}]}),
                ),
        )
        .await;
    assert_eq!(reply.status, 201);
    let id: uuid::Uuid = reply.json()["id"].as_str().unwrap().parse().unwrap();
    let db = owner_db().await;
    let audit = db
        .query_one(
            "select actor, action, entity_type, request_id, changes from audit_log where tenant_id = $1 and entity_id = $2",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .expect("one audit record");
    assert_eq!(audit.get::<_, String>(0), "user-test");
    assert_eq!(audit.get::<_, String>(1), "create");
    assert_eq!(audit.get::<_, String>(2), "contact");
    assert_eq!(audit.get::<_, String>(3), "audit-trail-check-1");
    let changes: serde_json::Value = audit.get(4);
    assert!(changes
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "first_name" && c["new"] == "Katherine" && c["old"].is_null()));
    let event = db
        .query_one(
            "select event_type, payload from outbox_events where tenant_id = $1 and entity_id = $2",
            &[&tenant.id.as_uuid(), &id],
        )
        .await
        .expect("one outbox event");
    assert_eq!(event.get::<_, String>(0), "contact.created");
    assert_eq!(event.get::<_, serde_json::Value>(1), reply.json());
}

#[tokio::test]
async fn every_invalid_field_is_reported_in_one_422() {
    let client = TestTenant::create("US").await.client();
    let reply = client
        .post_contact(&json!({
            "first_name": "x".repeat(101),
            "emails": [{"address": "not-an-email"}, {"address": "ok@example.com", "label": "l".repeat(51)}],
            "phones": [{"number": "12"}]
        }))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        reply.error_fields(),
        vec![
            "/first_name",
            "/emails/0/address",
            "/emails/1/label",
            "/phones/0/number"
        ]
    );
    let body = reply.json();
    assert_eq!(body["status"], 422);
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn a_contact_without_name_email_or_phone_is_refused() {
    let client = TestTenant::create("US").await.client();
    let reply = client.post_contact(&json!({"first_name": "   "})).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["errors"][0]["code"], "required");
}

#[tokio::test]
async fn server_owned_and_unknown_fields_are_refused() {
    let client = TestTenant::create("US").await.client();
    for (body, field) in [
        (
            json!({"first_name": "Ada", "id": "0192d7a4-5b6c-7d8e-9f00-112233445566"}),
            "/id",
        ),
        (json!({"first_name": "Ada", "version": 7}), "/version"),
        (
            json!({"first_name": "Ada", "emails": [{"address": "a@example.com", "verified": true}]}),
            "/emails/0/verified",
        ),
    ] {
        let reply = client.post_contact(&body).await;
        assert_eq!(reply.status, 422, "{body}");
        assert_eq!(reply.error_fields(), vec![field.to_owned()]);
        assert_eq!(reply.json()["errors"][0]["code"], "unknown_field");
    }
}

#[tokio::test]
async fn a_wrongly_typed_field_is_a_422_naming_it() {
    let client = TestTenant::create("US").await.client();
    let reply = client.post_contact(&json!({"first_name": 42})).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.error_fields(), vec!["/first_name"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let client = TestTenant::create("US").await.client();
    let reply = client
        .post_raw(
            "/api/v1/contacts",
            "application/json",
            "{\"first_name\": \"Ada\"",
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let client = TestTenant::create("US").await.client();
    let reply = client
        .post_raw("/api/v1/contacts", "text/plain", "first_name=Ada")
        .await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn an_oversized_body_is_a_413_and_stores_nothing() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    // The suite's servers allow 128 KiB; a deployment its own max_body_bytes (1 MiB by default).
    let padding = "x".repeat(2 * 1024 * 1024);
    let reply = client
        .post_contact(&json!({"first_name": "Big", "last_name": padding}))
        .await;
    assert_eq!(
        reply.status,
        413,
        "{}",
        &reply.text[..reply.text.len().min(200)]
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(count_rows("contacts", tenant.id).await, 0);
}

#[tokio::test]
async fn a_duplicate_live_email_is_a_409_naming_the_existing_contact() {
    let client = TestTenant::create("US").await.client();
    let first = client
        .post_contact(&json!({"emails": [{"address": "dup@example.com"}]}))
        .await;
    assert_eq!(first.status, 201);
    let again = client
        .post_contact(&json!({"first_name": "Other", "emails": [{"address": "DUP@Example.com"}]}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["existing_contact_id"], first.json()["id"]);
    assert_eq!(again.error_fields(), vec!["/emails"]);
}

#[tokio::test]
async fn the_same_email_in_two_tenants_is_fine() {
    let address = json!({"emails": [{"address": "shared@example.com"}]});
    assert_eq!(
        TestTenant::create("US")
            .await
            .client()
            .post_contact(&address)
            .await
            .status,
        201
    );
    assert_eq!(
        TestTenant::create("US")
            .await
            .client()
            .post_contact(&address)
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_failure_after_the_insert_leaves_no_contact_audit_or_event() {
    // Installs a trigger in the deployment's schema: the suite runs only against deployments it
    // set up for itself (the Spin tier's database is made for the run and dropped after).
    let tenant = TestTenant::create("US").await;
    let db = owner_db().await;
    // Make the outbox refuse one marked event: the contact and audit inserts before it must vanish.
    db.batch_execute(
        "create or replace function reject_marked_event() returns trigger language plpgsql as $$
         begin
             if new.payload->>'display_name' = 'FAIL-INJECT' then
                 raise exception 'injected failure';
             end if;
             return new;
         end $$;
         drop trigger if exists reject_marked_event on outbox_events;
         create trigger reject_marked_event before insert on outbox_events
             for each row execute function reject_marked_event();",
    )
    .await
    .unwrap();
    let reply = tenant
        .client()
        .post_contact(
            &json!({"display_name": "FAIL-INJECT", "emails": [{"address": "inject@example.com"}]}),
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["detail"], "something went wrong on our side");
    for table in [
        "contacts",
        "contact_emails",
        "contact_phones",
        "audit_log",
        "outbox_events",
    ] {
        assert_eq!(
            count_rows(table, tenant.id).await,
            0,
            "{table} kept a row of the failed create"
        );
    }
    // The email was never taken: a clean retry succeeds.
    let retry = tenant
        .client()
        .post_contact(
            &json!({"display_name": "Fine", "emails": [{"address": "inject@example.com"}]}),
        )
        .await;
    assert_eq!(retry.status, 201);
    db.batch_execute("drop trigger reject_marked_event on outbox_events")
        .await
        .unwrap();
}

#[tokio::test]
async fn listing_pages_through_every_contact_once() {
    let client = TestTenant::create("US").await.client();
    let mut created = Vec::new();
    for n in 0..5 {
        let reply = client
            .post_contact(&json!({"first_name": format!("Person {n}")}))
            .await;
        created.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/contacts?limit=2".to_owned();
    loop {
        let page = client.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let body = page.json();
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/contacts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let client = TestTenant::create("US").await.client();
    for query in ["limit=0", "limit=201", "cursor=garbage", "limt=5"] {
        let reply = client.get(&format!("/api/v1/contacts?{query}")).await;
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
}

#[tokio::test]
async fn an_unknown_contact_id_is_404_and_a_malformed_one_too() {
    let client = TestTenant::create("US").await.client();
    assert_eq!(
        client
            .get_contact("0192d7a4-5b6c-7d8e-9f00-112233445566")
            .await
            .status,
        404
    );
    assert_eq!(client.get_contact("not-a-uuid").await.status, 404);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let client = TestClient::anonymous();
    let echoed = client
        .send(
            client
                .request(Method::GET, "/healthz")
                .header("x-request-id", "client-id-42"),
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("client-id-42"));
    let generated = client.get("/healthz").await;
    assert!(uuid::Uuid::parse_str(generated.header("x-request-id").unwrap()).is_ok());
    let problem = client.get("/api/v1/contacts/x").await;
    assert_eq!(
        problem.json()["request_id"],
        problem.header("x-request-id").unwrap()
    );
}

/// A number written the British way, with its trunk prefix after the country code, is read as
/// libphonenumber reads it, and kept as written.
#[tokio::test]
async fn a_trunk_prefix_after_the_country_code_is_accepted() {
    let tenant = TestTenant::create("US").await;
    let created = tenant
        .client()
        .post_contact(
            &json!({"first_name": "Trunk", "phones": [{"number": "+44 (0)20 7946 0958"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["phones"][0]["e164"], "+442079460958");
    assert_eq!(created.json()["phones"][0]["region"], "GB");
    assert_eq!(created.json()["phones"][0]["number"], "+44 (0)20 7946 0958");
}

/// A number is read once, when it is written: after the tenant's default region changes, a change
/// of the contact that leaves its numbers alone keeps them as they were read (it neither fails on
/// them nor reads them otherwise), and a number it adds is read with the new region.
#[tokio::test]
async fn a_stored_number_keeps_its_reading_when_the_default_region_changes() {
    let tenant = TestTenant::create("GB").await;
    let client = tenant.client();
    let created = client
        .post_contact(&json!({"first_name": "Read", "phones": [{"number": "07911 123456"}]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    tenant
        .set(crm::tenants::TenantUpdate {
            region: Some("US"),
            ..Default::default()
        })
        .await;
    let renamed = client
        .patch_contact(&id, &json!({"job_title": "Engineer"}), None)
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.json()["phones"], created.json()["phones"]);
    let added = client
        .patch_contact(
            &id,
            &json!({"phones": [{"number": "07911 123456"}, {"number": "(212) 736-5000"}]}),
            None,
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert_eq!(added.json()["phones"][0]["e164"], "+447911123456");
    assert_eq!(added.json()["phones"][1]["e164"], "+12127365000");
    // Written anew (not a number the contact holds), a national number is read with the region.
    let refused = client
        .post_contact(&json!({"first_name": "New", "phones": [{"number": "07911 123456"}]}))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
}

/// Times PostgreSQL cannot store (year 0) are the client's mistake, named, never a 500: in query
/// strings and in bodies alike.
#[tokio::test]
async fn times_outside_what_can_be_stored_are_refused_with_the_field() {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(tenant.token("contacts:read calls:write")));
    let listed = client
        .get("/api/v1/contacts?created_after=0000-01-01T00:00:00Z")
        .await;
    assert_eq!(listed.status, 400, "{}", listed.text);
    assert!(listed.json()["detail"]
        .as_str()
        .unwrap()
        .contains("created_after"));
    let logged = client
        .send_json(
            Method::POST,
            "/api/v1/calls",
            &json!({"direction": "inbound", "from": "+1 212 736 5000", "to": "+1 415 555 2671",
                    "started_at": "0000-06-01T10:00:00Z", "status": "completed", "duration_seconds": 60}),
        )
        .await;
    assert_eq!(logged.status, 422, "{}", logged.text);
    assert_eq!(logged.error_fields(), vec!["/started_at"]);
}
