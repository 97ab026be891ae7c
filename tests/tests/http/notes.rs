//! Notes on a contact: written, listed pinned first and newest first, changed under `If-Match`,
//! deleted, audited and evented with their author, kept within the tenant and the contact, and
//! erased with the contact.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

const SCOPES: &str = "contacts:read contacts:write contacts:erase audit:read";

struct Notebook {
    tenant: TestTenant,
    client: TestClient,
    contact: String,
}

async fn notebook() -> Notebook {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(tenant.token(SCOPES)));
    let contact = client.create_contact(&json!({"first_name": "Noted"})).await;
    Notebook {
        tenant,
        client,
        contact,
    }
}

impl Notebook {
    fn notes(&self) -> String {
        format!("/api/v1/contacts/{}/notes", self.contact)
    }

    async fn write(&self, body: &Value) -> crm_http_tests::Reply {
        self.client
            .send_json(Method::POST, &self.notes(), body)
            .await
    }

    async fn written(&self, body: &str, pinned: bool) -> Value {
        let reply = self.write(&json!({"body": body, "pinned": pinned})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()
    }
}

#[tokio::test]
async fn a_note_is_written_read_changed_under_if_match_and_deleted() {
    let book = notebook().await;
    let markdown = "# Call recap\n\n- wants **pricing**\n\t- follow up Tuesday  ";
    let reply = book.write(&json!({"body": markdown})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let note = reply.json();
    let id = note["id"].as_str().unwrap().to_owned();
    assert_eq!(note["body"], markdown, "kept exactly as written");
    assert_eq!(note["pinned"], false);
    assert_eq!(note["contact_id"], book.contact.as_str());
    assert_eq!(note["author"], json!({"type": "user", "id": "user-test"}));
    let path = format!("{}/{id}", book.notes());
    assert_eq!(reply.header("location"), Some(path.as_str()));
    assert_eq!(reply.header("etag"), Some("\"v1\""));

    let read = book.client.get(&path).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), note);
    let unchanged = book
        .client
        .send(
            book.client
                .request(Method::GET, &path)
                .header("if-none-match", "\"v1\""),
        )
        .await;
    assert_eq!(unchanged.status, 304);

    let patch = |if_match: &'static str, body: Value| {
        let request = book
            .client
            .request(Method::PATCH, &path)
            .header("if-match", if_match)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        book.client.send(request)
    };
    let stale = patch("\"v7\"", json!({"pinned": true})).await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let pinned = patch("\"v1\"", json!({"pinned": true})).await;
    assert_eq!(pinned.status, 200, "{}", pinned.text);
    assert_eq!(pinned.json()["pinned"], true);
    assert_eq!(
        pinned.json()["body"],
        markdown,
        "a merge patch keeps what it leaves out"
    );
    assert_eq!(pinned.json()["version"], 2);
    let blank = patch("\"v2\"", json!({"body": "   "})).await;
    assert_eq!(blank.status, 422);
    assert_eq!(blank.error_fields(), vec!["/body".to_owned()]);

    let deleted = book
        .client
        .send(
            book.client
                .request(Method::DELETE, &path)
                .header("if-match", "\"v2\""),
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(book.client.get(&path).await.status, 404);

    let auditor = TestClient::new(Some(book.tenant.token("audit:read")));
    let trail = auditor
        .get(&format!(
            "/api/v1/audit/events?entity_type=note&entity_id={id}"
        ))
        .await
        .json();
    let actions: Vec<&str> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    let events: Vec<String> = owner_db()
        .await
        .query(
            "select event_type from outbox_events where tenant_id = $1 and entity_type = 'note'
             order by seq",
            &[&book.tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(events, ["note.created", "note.updated", "note.deleted"]);
}

#[tokio::test]
async fn notes_list_pinned_first_then_newest_first_page_by_page() {
    let book = notebook().await;
    let first = book.written("first", false).await;
    let pinned_old = book.written("pinned early", true).await;
    let second = book.written("second", false).await;
    let pinned_new = book.written("pinned late", true).await;
    let third = book.written("third", false).await;
    let expected: Vec<&Value> = vec![
        &pinned_new["id"],
        &pinned_old["id"],
        &third["id"],
        &second["id"],
        &first["id"],
    ];
    let mut seen = Vec::new();
    let mut path = format!("{}?limit=2", book.notes());
    loop {
        let page = book.client.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{}?limit=2&cursor={cursor}", book.notes()),
            None => break,
        }
    }
    assert_eq!(seen.iter().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn bad_notes_name_the_field_at_fault() {
    let book = notebook().await;
    for (body, field, code) in [
        (json!({}), "/body", "required"),
        (json!({"body": " \n "}), "/body", "required"),
        (json!({"body": "x".repeat(65_537)}), "/body", "too_long"),
        (json!({"body": "bell\u{7}"}), "/body", "invalid_characters"),
        (
            json!({"body": "ok", "author": "me"}),
            "/author",
            "unknown_field",
        ),
        (
            json!({"body": "ok", "pinned": "yes"}),
            "/pinned",
            "invalid_type",
        ),
    ] {
        let reply = book.write(&body).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        let error = &reply.json()["errors"][0];
        assert_eq!(
            (error["field"].as_str(), error["code"].as_str()),
            (Some(field), Some(code))
        );
    }
    let largest = book.write(&json!({"body": "é".repeat(32_768)})).await;
    assert_eq!(largest.status, 201, "64 KiB of UTF-8 is allowed");
}

#[tokio::test]
async fn notes_stay_within_their_tenant_and_their_contact() {
    let book = notebook().await;
    let note = book.written("private", false).await;
    let id = note["id"].as_str().unwrap();
    let stranger = notebook().await;
    let theirs = format!("/api/v1/contacts/{}/notes", book.contact);
    assert_eq!(stranger.client.get(&theirs).await.status, 404);
    assert_eq!(
        stranger
            .client
            .send_json(Method::POST, &theirs, &json!({"body": "planted"}))
            .await
            .status,
        404
    );
    assert_eq!(
        stranger.client.get(&format!("{theirs}/{id}")).await.status,
        404
    );
    // The same tenant, another contact: the note is not found under it.
    let other_contact = book
        .client
        .create_contact(&json!({"first_name": "Other"}))
        .await;
    let elsewhere = format!("/api/v1/contacts/{other_contact}/notes/{id}");
    assert_eq!(book.client.get(&elsewhere).await.status, 404);
    let moved = book
        .client
        .send_json(Method::PATCH, &elsewhere, &json!({"body": "moved"}))
        .await;
    assert_eq!(moved.status, 404);
    assert_eq!(
        book.client.get(&format!("{theirs}/{id}")).await.json()["body"],
        "private"
    );
}

#[tokio::test]
async fn a_deleted_contact_hides_its_notes_until_restored() {
    let book = notebook().await;
    let note = book.written("survives", false).await;
    let deleted = book
        .client
        .send(book.client.request(
            Method::DELETE,
            &format!("/api/v1/contacts/{}", book.contact),
        ))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(book.client.get(&book.notes()).await.status, 404);
    assert_eq!(book.write(&json!({"body": "late"})).await.status, 404);
    let restored = book
        .client
        .send(book.client.request(
            Method::POST,
            &format!("/api/v1/contacts/{}/restore", book.contact),
        ))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    let listed = book.client.get(&book.notes()).await.json();
    assert_eq!(listed["data"][0]["id"], note["id"]);
}

#[tokio::test]
async fn a_tenant_that_requires_if_match_gets_428_without_one() {
    let book = notebook().await;
    book.tenant.require_if_match(true).await;
    let note = book.written("guarded", false).await;
    let path = format!("{}/{}", book.notes(), note["id"].as_str().unwrap());
    let unguarded = book
        .client
        .send_json(Method::PATCH, &path, &json!({"pinned": true}))
        .await;
    assert_eq!(unguarded.status, 428, "{}", unguarded.text);
}

#[tokio::test]
async fn erasing_the_contact_erases_its_notes_and_their_history() {
    let book = notebook().await;
    let note = book
        .written("Lives at 12 Elm Street, allergic to penicillin", false)
        .await;
    let id: uuid::Uuid = note["id"].as_str().unwrap().parse().unwrap();
    let erased = book
        .client
        .send(book.client.request(
            Method::POST,
            &format!("/api/v1/contacts/{}/erase", book.contact),
        ))
        .await;
    assert!(erased.status < 300, "{} {}", erased.status, erased.text);
    let db = owner_db().await;
    let left: i64 = db
        .query_one("select count(*) from contact_notes where id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let traces: i64 = db
        .query_one(
            "select (select count(*) from audit_log where entity_id = $1 and changes::text like '%Elm Street%')
                  + (select count(*) from outbox_events where entity_id = $1 and payload::text like '%Elm Street%')",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0, "the note's audit diff and event were scrubbed");
}
