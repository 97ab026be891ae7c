//! Preferences and consent: a contact's preferred channel, language, time zone and do-not-contact
//! flags (merge-patched under If-Match, audited as changes of the contact); consent records per
//! purpose, append-only, whose state at any past moment can be read; and the contacts list (and so
//! smart lists) filtering on both.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

async fn client() -> (TestTenant, TestClient) {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(
        tenant.token("contacts:read contacts:write audit:read"),
    ));
    (tenant, client)
}

async fn patch(client: &TestClient, contact: &str, body: Value) -> crm_http_tests::Reply {
    client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{contact}/preferences"),
            &body,
        )
        .await
}

async fn consent(client: &TestClient, contact: &str, body: Value) -> crm_http_tests::Reply {
    client
        .send_json(
            Method::POST,
            &format!("/api/v1/contacts/{contact}/consents"),
            &body,
        )
        .await
}

async fn names(client: &TestClient, query: &str) -> Vec<String> {
    let reply = client.get(&format!("/api/v1/contacts?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    let mut names: Vec<String> = reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["first_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn preferences_are_validated_merge_patched_and_audited() {
    let (_tenant, client) = client().await;
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let fresh = client
        .get(&format!("/api/v1/contacts/{ada}/preferences"))
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.json()["version"], 0);
    assert_eq!(fresh.json()["do_not_contact"]["email"], false);

    let set = patch(
        &client,
        &ada,
        json!({"preferred_channel": "SMS", "language": "pt-br", "time_zone": "Europe/Lisbon",
               "do_not_contact": {"phone": true}}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let set = set.json();
    assert_eq!(
        (
            set["preferred_channel"].clone(),
            set["language"].clone(),
            set["time_zone"].clone()
        ),
        (json!("sms"), json!("pt-BR"), json!("Europe/Lisbon"))
    );
    assert_eq!(
        set["do_not_contact"],
        json!({"email": false, "phone": true, "sms": false, "post": false})
    );
    assert_eq!(set["version"], 1);

    // Merge patch: only what is named changes; a stale If-Match is refused.
    let stale = client
        .send(
            client
                .request(
                    Method::PATCH,
                    &format!("/api/v1/contacts/{ada}/preferences"),
                )
                .header("if-match", "\"0\"")
                .json(&json!({"language": "en"})),
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let narrowed = patch(&client, &ada, json!({"do_not_contact": {"email": true}})).await;
    assert_eq!(narrowed.json()["do_not_contact"]["phone"], true);
    assert_eq!(narrowed.json()["do_not_contact"]["email"], true);
    assert_eq!(narrowed.json()["language"], "pt-BR");

    for (body, field) in [
        (json!({"preferred_channel": "fax"}), "/preferred_channel"),
        (json!({"language": "english_UK"}), "/language"),
        (json!({"time_zone": "Mars/Olympus"}), "/time_zone"),
        (
            json!({"do_not_contact": {"pigeon": true}}),
            "/do_not_contact/pigeon",
        ),
    ] {
        let reply = patch(&client, &ada, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }
    let audit = client
        .get(&format!(
            "/api/v1/audit/events?entity_type=contact&entity_id={ada}&action=preferences"
        ))
        .await
        .json();
    assert_eq!(audit["data"].as_array().unwrap().len(), 2, "{audit}");
    let unchanged = patch(&client, &ada, json!({"language": "pt-BR"})).await;
    assert_eq!(
        unchanged.json()["version"],
        2,
        "a patch that changes nothing writes nothing"
    );
}

#[tokio::test]
async fn consent_is_append_only_and_its_state_at_any_past_moment_is_known() {
    let (tenant, client) = client().await;
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let granted = consent(
        &client,
        &ada,
        json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent",
               "source": "signup form", "effective_at": "2026-01-10T09:00:00Z",
               "evidence": "form v3, IP 203.0.113.7"}),
    )
    .await;
    assert_eq!(granted.status, 201, "{}", granted.text);
    assert_eq!(granted.json()["recorded_by"]["type"], "user");
    consent(
        &client,
        &ada,
        json!({"purpose": "newsletter", "status": "withdrawn", "legal_basis": "consent",
               "source": "unsubscribe link", "effective_at": "2026-03-01T12:00:00Z"}),
    )
    .await;
    consent(
        &client,
        &ada,
        json!({"purpose": "order_updates", "status": "granted", "legal_basis": "contract",
               "source": "checkout"}),
    )
    .await;

    let state = |at: &'static str| {
        let client = &client;
        let ada = ada.clone();
        async move {
            let path = if at.is_empty() {
                format!("/api/v1/contacts/{ada}/consent-state")
            } else {
                format!("/api/v1/contacts/{ada}/consent-state?at={at}")
            };
            let reply = client.get(&path).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json()["purposes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}={}",
                        p["purpose"].as_str().unwrap(),
                        p["status"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert!(state("2026-01-01T00:00:00Z").await.is_empty());
    assert_eq!(state("2026-02-01T00:00:00Z").await, ["newsletter=granted"]);
    assert_eq!(
        state("").await,
        ["newsletter=withdrawn", "order_updates=granted"]
    );

    let history = client
        .get(&format!(
            "/api/v1/contacts/{ada}/consents?purpose=newsletter&limit=1"
        ))
        .await
        .json();
    assert_eq!(history["data"][0]["status"], "withdrawn", "newest first");
    let rest = client
        .get(&format!(
            "/api/v1/contacts/{ada}/consents?purpose=newsletter&limit=1&cursor={}",
            history["next_cursor"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(rest["data"][0]["status"], "granted");

    // Records are never changed: there is no route to, and the database refuses it too.
    let record = granted.json()["id"].as_str().unwrap().to_owned();
    let change = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{ada}/consents/{record}"),
            &json!({"status": "withdrawn"}),
        )
        .await;
    assert!(
        change.status == 404 || change.status == 405,
        "{}",
        change.status
    );
    let app = crm_http_tests::app_session(tenant.id).await;
    let refused = app
        .execute(
            "update consent_records set status = 'withdrawn' where id = $1::text::uuid",
            &[&record],
        )
        .await;
    assert!(
        refused.is_err(),
        "the application role cannot update a record"
    );

    for (body, field) in [
        (
            json!({"purpose": "News", "status": "granted", "legal_basis": "consent", "source": "x"}),
            "/purpose",
        ),
        (
            json!({"purpose": "news", "status": "maybe", "legal_basis": "consent", "source": "x"}),
            "/status",
        ),
        (
            json!({"purpose": "news", "status": "granted", "legal_basis": "because", "source": "x"}),
            "/legal_basis",
        ),
        (
            json!({"purpose": "news", "status": "granted", "legal_basis": "consent"}),
            "/source",
        ),
        (
            json!({"purpose": "news", "status": "granted", "legal_basis": "consent", "source": "x",
                "effective_at": "2999-01-01T00:00:00Z"}),
            "/effective_at",
        ),
    ] {
        let reply = consent(&client, &ada, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }
    let events: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from outbox_events where tenant_id = $1 and event_type = 'consent.recorded'",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 3);
}

#[tokio::test]
async fn the_contacts_list_filters_on_preferences_and_consent() {
    let (_tenant, client) = client().await;
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let bob = client.create_contact(&json!({"first_name": "Bob"})).await;
    let cy = client.create_contact(&json!({"first_name": "Cy"})).await;
    patch(
        &client,
        &ada,
        json!({"preferred_channel": "email", "language": "pt-BR", "do_not_contact": {"sms": true}}),
    )
    .await;
    patch(
        &client,
        &bob,
        json!({"preferred_channel": "sms", "language": "pt"}),
    )
    .await;
    let basis = |purpose: &str, status: &str| json!({"purpose": purpose, "status": status, "legal_basis": "consent", "source": "form"});
    consent(&client, &ada, basis("newsletter", "granted")).await;
    consent(&client, &bob, basis("newsletter", "granted")).await;
    consent(&client, &bob, basis("newsletter", "withdrawn")).await;
    let _ = cy;

    assert_eq!(names(&client, "preferred_channel=email").await, ["Ada"]);
    assert_eq!(names(&client, "language=pt").await, ["Ada", "Bob"]);
    assert_eq!(names(&client, "language=pt-BR").await, ["Ada"]);
    assert_eq!(names(&client, "do_not_contact=sms").await, ["Ada"]);
    assert_eq!(names(&client, "contactable_via=sms").await, ["Bob", "Cy"]);
    assert_eq!(names(&client, "consent_granted=newsletter").await, ["Ada"]);
    assert_eq!(
        names(&client, "consent_not_granted=newsletter").await,
        ["Bob", "Cy"]
    );
    for bad in [
        "preferred_channel=fax",
        "language=!!",
        "consent_granted=News Letter",
    ] {
        assert_eq!(
            client.get(&format!("/api/v1/contacts?{bad}")).await.status,
            400,
            "{bad}"
        );
    }
    // A smart list saves the same filters.
    let list = client
        .send_json(
            Method::POST,
            "/api/v1/lists",
            &json!({"name": "Newsletter by email", "kind": "smart",
                    "filter": {"consent_granted": "newsletter", "contactable_via": "email"}}),
        )
        .await;
    assert_eq!(list.status, 201, "{}", list.text);
    let id = list.json()["id"].as_str().unwrap().to_owned();
    let members = client
        .get(&format!("/api/v1/lists/{id}/contacts"))
        .await
        .json();
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    assert_eq!(members["data"][0]["first_name"], "Ada");
}

#[tokio::test]
async fn preferences_and_consent_stay_in_the_tenant_and_go_with_erasure() {
    let (tenant, client) = client().await;
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    patch(&client, &ada, json!({"language": "de"})).await;
    consent(
        &client,
        &ada,
        json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent", "source": "Ada's own words"}),
    )
    .await;
    let (_, other) = client_of_another_tenant().await;
    for path in [
        format!("/api/v1/contacts/{ada}/preferences"),
        format!("/api/v1/contacts/{ada}/consents"),
        format!("/api/v1/contacts/{ada}/consent-state"),
    ] {
        assert_eq!(other.get(&path).await.status, 404, "{path}");
    }
    assert_eq!(
        patch(&other, &ada, json!({"language": "fr"})).await.status,
        404
    );
    let eraser = TestClient::new(Some(tenant.token("contacts:erase")));
    let erased = eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{ada}/erase")))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    let db = owner_db().await;
    for table in ["consent_records", "contact_preferences"] {
        let left: i64 = db
            .query_one(
                &format!("select count(*) from {table} where contact_id = $1"),
                &[&ada.parse::<uuid::Uuid>().unwrap()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{table}");
    }
    let traces: i64 = db
        .query_one(
            "select count(*) from audit_log where tenant_id = $1 and changes::text like '%own words%'",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0, "the consent record's audit diff is scrubbed");
}

async fn client_of_another_tenant() -> (TestTenant, TestClient) {
    client().await
}
