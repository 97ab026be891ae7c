//! The activity timeline: one feed per contact, newest first, of its own changes, tags, lists,
//! calls, notes, links, preferences, consent records and the webhook deliveries about it; each
//! entry says what, when and by whom; filtered by kinds and time range; keyset-paginated; within
//! the tenant.

use crm_http_tests::receiver::Receiver;
use crm_http_tests::{drive_retries, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn entries(client: &TestClient, contact: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/contacts/{contact}/timeline?limit=3&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        let page = reply.json();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn kinds(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn everything_that_happened_to_a_contact_is_one_feed_newest_first() {
    drive_retries();
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(
        tenant.token("contacts:read contacts:write calls:write webhooks:manage"),
    ));
    let receiver = Receiver::start().await;
    let hook = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/hook"), "event_types": ["contact.updated"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);

    let ada = client
        .create_contact(&json!({"first_name": "Ada", "phones": [{"number": "+14155550101"}]}))
        .await;
    let bob = client.create_contact(&json!({"first_name": "Bob"})).await;
    let step = |reply: crm_http_tests::Reply| {
        assert!(reply.status < 300, "{}", reply.text);
        reply
    };
    step(
        client
            .send_json(
                Method::PATCH,
                &format!("/api/v1/contacts/{ada}"),
                &json!({"company": "Acme"}),
            )
            .await,
    );
    let tag = step(
        client
            .send_json(Method::POST, "/api/v1/tags", &json!({"name": "VIP"}))
            .await,
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    step(
        client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{ada}/tags"),
                &json!({"tag_id": tag}),
            )
            .await,
    );
    let list = step(
        client
            .send_json(Method::POST, "/api/v1/lists", &json!({"name": "Event"}))
            .await,
    )
    .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    step(
        client
            .send_json(
                Method::POST,
                &format!("/api/v1/lists/{list}/members"),
                &json!({"add": [ada]}),
            )
            .await,
    );
    step(
        client
            .send_json(
                Method::POST,
                "/api/v1/calls",
                &json!({"direction": "inbound", "from": "+14155550101", "to": "+14155550999",
                        "started_at": "2026-06-01T10:00:00Z", "status": "completed",
                        "duration_seconds": 60, "agent_id": "agent-1"}),
            )
            .await,
    );
    step(
        client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{ada}/notes"),
                &json!({"body": "Met at the fair"}),
            )
            .await,
    );
    step(
        client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{ada}/relationships"),
                &json!({"type": "manager", "contact_id": bob}),
            )
            .await,
    );
    step(
        client
            .send_json(
                Method::PATCH,
                &format!("/api/v1/contacts/{ada}/preferences"),
                &json!({"language": "en"}),
            )
            .await,
    );
    step(
        client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{ada}/consents"),
                &json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent", "source": "fair"}),
            )
            .await,
    );
    // The contact.updated delivery is about Ada too, once it exists.
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let feed = loop {
        let feed = entries(&client, &ada, "").await;
        if kinds(&feed).contains(&"deliveries".to_owned()) || Instant::now() > deadline {
            break feed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut seen = kinds(&feed);
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "calls",
            "consents",
            "contact",
            "deliveries",
            "lists",
            "notes",
            "relationships",
            "tags"
        ],
        "{feed:#?}"
    );
    // Newest first, by time then id, and every entry says what, when and by whom.
    for pair in feed.windows(2) {
        let key = |e: &Value| {
            (
                e["at"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        };
        assert!(key(&pair[0]) >= key(&pair[1]), "{pair:#?}");
    }
    let created = feed.last().unwrap();
    assert_eq!(
        (created["kind"].clone(), created["action"].clone()),
        (json!("contact"), json!("create"))
    );
    assert_eq!(created["actor"]["type"], "user");
    let updated = feed
        .iter()
        .find(|e| e["kind"] == "contact" && e["action"] == "update")
        .unwrap();
    assert!(updated["details"].to_string().contains("Acme"), "{updated}");
    let delivery = feed.iter().find(|e| e["kind"] == "deliveries").unwrap();
    assert_eq!(delivery["details"]["event_type"], "contact.updated");
    // Bob's feed shows the link from his side too.
    assert!(kinds(&entries(&client, &bob, "").await).contains(&"relationships".to_owned()));

    // Kinds and time ranges narrow it.
    assert_eq!(
        kinds(&entries(&client, &ada, "kinds=notes,calls").await).len(),
        2
    );
    let middle = feed[feed.len() / 2]["at"].as_str().unwrap().to_owned();
    let before = entries(&client, &ada, &format!("to={}", urlencode(&middle))).await;
    assert!(before
        .iter()
        .all(|e| e["at"].as_str().unwrap() < middle.as_str()));
    assert!(!before.is_empty() && before.len() < feed.len());
    assert_eq!(
        client
            .get(&format!("/api/v1/contacts/{ada}/timeline?kinds=gossip"))
            .await
            .status,
        400
    );

    let stranger = TestClient::new(Some(TestTenant::create("US").await.token("contacts:read")));
    assert_eq!(
        stranger
            .get(&format!("/api/v1/contacts/{ada}/timeline"))
            .await
            .status,
        404
    );
}

fn urlencode(raw: &str) -> String {
    raw.replace(':', "%3A").replace('+', "%2B")
}
