//! Contact merge and its undo: `POST /api/v1/contacts/{id}/merge` chooses the survivor's fields by
//! rules and moves calls, notes, tags, lists, links, consent records and preferences to it in one
//! transaction under `If-Match`; a merged contact answers 410 naming its survivor; a dry run changes
//! nothing; `POST /api/v1/merges/{id}/undo` gives everything back, or names the later changes in its
//! way; a merge racing a PATCH of the merged contact loses neither.

use crm_http_tests::{owner_db, Reply, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

fn client_of(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(
        tenant.token("contacts:read contacts:write calls:read calls:write"),
    ))
}

async fn post(client: &TestClient, path: &str, body: Value) -> Reply {
    client.send_json(Method::POST, path, &body).await
}

/// POSTs and returns the created resource's id, failing the test otherwise.
async fn created(client: &TestClient, path: &str, body: Value) -> String {
    let reply = post(client, path, body).await;
    assert!(reply.status < 300, "{path}: {}", reply.text);
    reply.json()["id"].as_str().unwrap().to_owned()
}

async fn merge(client: &TestClient, survivor: &str, body: Value, if_match: Option<&str>) -> Reply {
    let mut request = client
        .request(Method::POST, &format!("/api/v1/contacts/{survivor}/merge"))
        .json(&body);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    client.send(request).await
}

async fn undo(client: &TestClient, merge_id: &str) -> Reply {
    post(
        client,
        &format!("/api/v1/merges/{merge_id}/undo"),
        json!({}),
    )
    .await
}

async fn read(client: &TestClient, path: &str) -> Value {
    let reply = client.get(path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.json()
}

/// The ids of a page's or a list's entries at `member` (`data` for pages).
fn ids_in(value: &Value, member: &str, id: &str) -> Vec<String> {
    let mut ids: Vec<String> = value[member]
        .as_array()
        .unwrap_or_else(|| panic!("{member} in {value}"))
        .iter()
        .map(|entry| entry[id].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Everything a contact holds, as the API shows it, for comparing before and after.
async fn holdings(client: &TestClient, contact: &str) -> Value {
    let path = |tail: &str| format!("/api/v1/contacts/{contact}{tail}");
    json!({
        "tags": ids_in(&read(client, &path("/tags")).await, "tags", "id"),
        "lists": ids_in(&read(client, &path("/lists")).await, "lists", "id"),
        "notes": ids_in(&read(client, &path("/notes")).await, "data", "id"),
        "calls": ids_in(&read(client, &path("/calls")).await, "data", "id"),
        "consents": ids_in(&read(client, &path("/consents")).await, "data", "id"),
        "relationships": ids_in(&read(client, &path("/relationships")).await, "data", "id"),
        "do_not_email": read(client, &path("/preferences")).await["do_not_contact"]["email"],
    })
}

async fn events_of(tenant: &TestTenant, event_type: &str) -> Vec<Value> {
    owner_db()
        .await
        .query(
            "select payload from outbox_events where tenant_id = $1 and event_type = $2 order by id",
            &[&tenant.id.as_uuid(), &event_type],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn a_merge_moves_everything_to_the_survivor_and_its_undo_moves_it_back() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let ada = client
        .create_contact(&json!({"first_name": "Ada", "company": "Analytical",
                                 "emails": [{"address": "ada@example.com"}]}))
        .await;
    let augusta = client
        .create_contact(&json!({"first_name": "Augusta", "last_name": "King",
                                 "job_title": "Countess",
                                 "emails": [{"address": "augusta@example.com"}],
                                 "phones": [{"number": "+14155550101"}]}))
        .await;
    let bob = client.create_contact(&json!({"first_name": "Bob"})).await;
    let vip = created(&client, "/api/v1/tags", json!({"name": "VIP"})).await;
    let board = created(&client, "/api/v1/lists", json!({"name": "Board"})).await;
    post(
        &client,
        &format!("/api/v1/contacts/{augusta}/tags"),
        json!({"tag_id": vip}),
    )
    .await;
    post(
        &client,
        &format!("/api/v1/lists/{board}/members"),
        json!({"add": [augusta]}),
    )
    .await;
    created(
        &client,
        "/api/v1/calls",
        json!({"direction": "inbound", "from": "+14155550101", "to": "+14155550999",
               "contact_id": augusta, "started_at": "2026-06-01T10:00:00Z",
               "status": "completed", "duration_seconds": 60}),
    )
    .await;
    created(
        &client,
        &format!("/api/v1/contacts/{augusta}/notes"),
        json!({"body": "Met at the fair"}),
    )
    .await;
    created(
        &client,
        &format!("/api/v1/contacts/{augusta}/relationships"),
        json!({"type": "manager", "contact_id": bob}),
    )
    .await;
    created(
        &client,
        &format!("/api/v1/contacts/{augusta}/relationships"),
        json!({"type": "colleague", "contact_id": ada}),
    )
    .await;
    created(
        &client,
        &format!("/api/v1/contacts/{augusta}/consents"),
        json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent", "source": "fair"}),
    )
    .await;
    let preferences = client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{augusta}/preferences"),
            &json!({"do_not_contact": {"email": true}}),
        )
        .await;
    assert_eq!(preferences.status, 200, "{}", preferences.text);
    let ada_before = holdings(&client, &ada).await;
    let augusta_before = holdings(&client, &augusta).await;
    let augusta_contact = read(&client, &format!("/api/v1/contacts/{augusta}")).await;

    // A dry run says what would happen and changes nothing.
    let body = json!({"contact_ids": [augusta], "rules": {"first_name": "target"}});
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let preview = merge(&client, &ada, dry, None).await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    let preview = preview.json();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["contact"]["first_name"], "Ada");
    assert_eq!(
        preview["contact"]["last_name"], "King",
        "first non-empty by default"
    );
    assert_eq!(preview["contact"]["emails"].as_array().unwrap().len(), 2);
    assert_eq!(preview["moved"]["calls"].as_array().unwrap().len(), 1);
    assert_eq!(
        preview["moved"]["relationships"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        read(&client, &format!("/api/v1/contacts/{augusta}")).await,
        augusta_contact
    );
    assert_eq!(holdings(&client, &ada).await, ada_before);

    let etag = client
        .get_contact(&ada)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let merged = merge(&client, &ada, body, Some(&etag)).await;
    assert_eq!(merged.status, 201, "{}", merged.text);
    let merge_id = merged.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        merged.header("location"),
        Some(format!("/api/v1/merges/{merge_id}").as_str())
    );

    // The merged contact names its survivor; it can no longer be changed.
    let gone = client.get_contact(&augusta).await;
    assert_eq!(gone.status, 410, "{}", gone.text);
    assert_eq!(gone.json()["merged_into"], json!(ada));
    assert_eq!(gone.json()["type"], "/problems/contact-merged");
    let patch = client
        .patch_contact(&augusta, &json!({"company": "X"}), None)
        .await;
    assert_eq!(patch.status, 410, "{}", patch.text);

    // The survivor holds everything; the link to itself is gone, the one to Bob is the survivor's.
    let survivor = read(&client, &format!("/api/v1/contacts/{ada}")).await;
    assert_eq!(survivor["first_name"], "Ada");
    assert_eq!(survivor["job_title"], "Countess");
    assert_eq!(survivor["emails"].as_array().unwrap().len(), 2);
    assert_eq!(survivor["phones"][0]["e164"], "+14155550101");
    let now = holdings(&client, &ada).await;
    for kind in ["tags", "lists", "notes", "calls", "consents"] {
        assert_eq!(now[kind], augusta_before[kind], "{kind}");
    }
    assert_eq!(now["relationships"].as_array().unwrap().len(), 1, "{now}");
    assert_eq!(now["do_not_email"], true, "a refusal survives the merge");
    let links = read(&client, &format!("/api/v1/contacts/{ada}/relationships")).await;
    assert_eq!(links["data"][0]["contact"]["id"], json!(bob), "{links}");

    // Audited and evented with everything moved.
    let events = events_of(&tenant, "contact.merged").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["merge"]["merge_id"], json!(merge_id));
    assert_eq!(
        events[0]["merge"]["moved"]["notes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(events_of(&tenant, "contact.merged_into").await.len(), 1);
    let record = read(&client, &format!("/api/v1/merges/{merge_id}")).await;
    assert_eq!(record["merged_contacts"][0]["first_name"], "Augusta");
    assert!(record["undo_until"].is_string());

    // Undo: both contacts as they were, everything back where it was.
    let undone = undo(&client, &merge_id).await;
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert!(undone.json()["undone_at"].is_string());
    let back = read(&client, &format!("/api/v1/contacts/{augusta}")).await;
    for field in ["first_name", "last_name", "job_title", "emails", "phones"] {
        assert_eq!(back[field], augusta_contact[field], "{field}");
    }
    assert_eq!(holdings(&client, &augusta).await, augusta_before);
    assert_eq!(holdings(&client, &ada).await, ada_before);
    let survivor = read(&client, &format!("/api/v1/contacts/{ada}")).await;
    assert!(
        survivor.get("job_title").is_none_or(Value::is_null),
        "{survivor}"
    );
    assert_eq!(survivor["emails"].as_array().unwrap().len(), 1);
    assert_eq!(events_of(&tenant, "contact.unmerged").await.len(), 1);

    let again = undo(&client, &merge_id).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["errors"][0]["code"], "undone");
}

#[tokio::test]
async fn an_undo_names_every_later_change_in_its_way() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let al = client
        .create_contact(&json!({"first_name": "Al", "company": "Analytical"}))
        .await;
    let note = created(
        &client,
        &format!("/api/v1/contacts/{al}/notes"),
        json!({"body": "n"}),
    )
    .await;
    let merged = merge(&client, &ada, json!({"contact_ids": [al]}), None).await;
    assert_eq!(merged.status, 201, "{}", merged.text);
    let merge_id = merged.json()["id"].as_str().unwrap().to_owned();

    let patched = client
        .patch_contact(&ada, &json!({"company": "Babbage & Co"}), None)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let deleted = client
        .request(
            Method::DELETE,
            &format!("/api/v1/contacts/{ada}/notes/{note}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let refused = undo(&client, &merge_id).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let mut fields = refused.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            format!("/moved/notes/{note}"),
            "/survivor/company".to_owned()
        ]
    );
    // Nothing was undone.
    assert_eq!(client.get_contact(&al).await.status, 410);
    assert_eq!(
        read(&client, &format!("/api/v1/contacts/{ada}")).await["company"],
        "Babbage & Co"
    );
}

#[tokio::test]
async fn a_merge_refuses_what_it_cannot_do_and_names_the_field() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let other_tenant = TestTenant::create("US").await;
    let stranger = client_of(&other_tenant)
        .create_contact(&json!({"first_name": "Eve"}))
        .await;
    let many = |prefix: &str| -> Vec<Value> {
        (0..6)
            .map(|i| json!({"address": format!("{prefix}{i}@example.com")}))
            .collect()
    };
    let ada = client
        .create_contact(&json!({"first_name": "Ada", "emails": many("ada")}))
        .await;
    let al = client
        .create_contact(&json!({"first_name": "Al", "emails": many("al")}))
        .await;
    let gone = client.create_contact(&json!({"first_name": "Gone"})).await;
    let deleted = client
        .request(Method::DELETE, &format!("/api/v1/contacts/{gone}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let cases: Vec<(Value, u16, Vec<String>)> = vec![
        (json!({"contact_ids": []}), 422, vec!["/contact_ids".into()]),
        (
            json!({"contact_ids": [ada]}),
            422,
            vec!["/contact_ids/0".into()],
        ),
        (
            json!({"contact_ids": [stranger]}),
            422,
            vec!["/contact_ids/0".into()],
        ),
        (
            json!({"contact_ids": [al, al]}),
            422,
            vec!["/contact_ids/1".into()],
        ),
        (
            json!({"contact_ids": [al], "rules": {"nickname": "target"}}),
            422,
            vec!["/rules/nickname".into()],
        ),
        (
            json!({"contact_ids": [al], "rules": {"company": "loudest"}}),
            422,
            vec!["/rules/company".into()],
        ),
        (
            json!({"contact_ids": [al]}),
            422,
            vec!["/rules/emails".into()],
        ),
        (
            json!({"contact_ids": [gone]}),
            409,
            vec!["/contact_ids/0".into()],
        ),
        (
            json!({"contact_ids": [al], "rules": {"emails": "target", "lifecycle_stage": {"value": "royalty"}},
                "default_rule": "target"}),
            422,
            vec!["/contact/lifecycle_stage".into()],
        ),
    ];
    for (body, status, fields) in cases {
        let reply = merge(&client, &ada, body.clone(), None).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), fields, "{body}: {}", reply.text);
    }
    let stale = merge(
        &client,
        &ada,
        json!({"contact_ids": [al], "rules": {"emails": "target"}}),
        Some("\"0\""),
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let foreign = merge(&client, &stranger, json!({"contact_ids": [al]}), None).await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);
    // None of it changed anything.
    assert_eq!(client.get_contact(&al).await.status, 200);

    let done = merge(
        &client,
        &ada,
        json!({"contact_ids": [al], "rules": {"emails": "target"}}),
        None,
    )
    .await;
    assert_eq!(done.status, 201, "{}", done.text);
    let merge_id = done.json()["id"].as_str().unwrap().to_owned();
    let outsider = client_of(&other_tenant);
    assert_eq!(
        outsider
            .get(&format!("/api/v1/merges/{merge_id}"))
            .await
            .status,
        404
    );
    let foreign_undo = undo(&outsider, &merge_id).await;
    assert_eq!(foreign_undo.status, 404, "{}", foreign_undo.text);
    // A merged contact cannot be merged again, and the emails the rule left behind come back with it.
    let twice = merge(&client, &ada, json!({"contact_ids": [al]}), None).await;
    assert_eq!(twice.status, 409, "{}", twice.text);
    let undone = undo(&client, &merge_id).await;
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert_eq!(
        read(&client, &format!("/api/v1/contacts/{al}")).await["emails"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

/// A PATCH of a contact racing its merge: either the PATCH lands first and the merge carries its
/// value to the survivor, or the merge lands first and the PATCH answers 410 naming the survivor.
/// Never a PATCH acknowledged and its value lost.
#[tokio::test]
async fn a_merge_racing_a_patch_of_the_merged_contact_loses_nothing() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let mut outcomes = std::collections::BTreeSet::new();
    for round in 0..12 {
        let survivor = client
            .create_contact(&json!({"first_name": format!("S{round}")}))
            .await;
        let merged = client
            .create_contact(&json!({"first_name": format!("M{round}")}))
            .await;
        let title = format!("Title {round}");
        let change = json!({"job_title": title});
        let (patch, merge_reply) = tokio::join!(
            client.patch_contact(&merged, &change, None),
            merge(&client, &survivor, json!({"contact_ids": [merged]}), None),
        );
        assert_eq!(merge_reply.status, 201, "{}", merge_reply.text);
        let survivor_now = read(&client, &format!("/api/v1/contacts/{survivor}")).await;
        match patch.status {
            200 => assert_eq!(
                survivor_now["job_title"],
                json!(title),
                "the patch was kept"
            ),
            410 => {
                assert_eq!(patch.json()["merged_into"], json!(survivor));
                assert!(survivor_now.get("job_title").is_none_or(Value::is_null));
            }
            other => panic!("the PATCH answered {other}: {}", patch.text),
        }
        outcomes.insert(patch.status);
        assert_eq!(client.get_contact(&merged).await.status, 410);
    }
    println!("PATCH outcomes seen: {outcomes:?}");
}

/// A merge record holds the merged contacts' personal data: erasing either side erases it too.
#[tokio::test]
async fn erasing_a_merged_contact_or_its_survivor_erases_the_merge_record() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let eraser = TestClient::new(Some(
        tenant.token("contacts:read contacts:write contacts:erase"),
    ));
    for erase_survivor in [false, true] {
        let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
        let al = client
            .create_contact(&json!({"first_name": "Al",
                                     "emails": [{"address": format!("al{erase_survivor}@example.com")}]}))
            .await;
        let done = merge(&client, &ada, json!({"contact_ids": [al]}), None).await;
        assert_eq!(done.status, 201, "{}", done.text);
        let merge_id = done.json()["id"].as_str().unwrap().to_owned();
        let erased = if erase_survivor { &ada } else { &al };
        let reply = post(
            &eraser,
            &format!("/api/v1/contacts/{erased}/erase"),
            json!({}),
        )
        .await;
        assert_eq!(reply.status, 204, "{}", reply.text);
        assert_eq!(
            client
                .get(&format!("/api/v1/merges/{merge_id}"))
                .await
                .status,
            404
        );
        let gone_undo = undo(&client, &merge_id).await;
        assert_eq!(gone_undo.status, 404, "{}", gone_undo.text);
        if !erase_survivor {
            let survivor = read(&client, &format!("/api/v1/contacts/{ada}")).await;
            assert_eq!(survivor["emails"][0]["address"], "alfalse@example.com");
        }
    }
}

/// Every page of `GET /api/v1/contacts/duplicates` with `query`, followed to the end.
async fn duplicate_pairs(client: &TestClient, query: &str) -> Vec<Value> {
    let mut pairs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/contacts/duplicates?limit=1&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = read(client, &path).await;
        pairs.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pairs,
        }
    }
}

fn pair_of(a: &str, b: &str) -> Vec<String> {
    let mut pair = vec![a.to_owned(), b.to_owned()];
    pair.sort();
    pair
}

fn kinds_of(pair: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = pair["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn duplicates_are_pairs_with_a_score_and_their_reasons() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let contact = |body: Value| {
        let client = &client;
        async move { client.create_contact(&body).await }
    };
    let ada = contact(
        json!({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical",
                             "emails": [{"address": "ada@example.com"}]}),
    )
    .await;
    let ada_news = contact(
        json!({"first_name": "Ada", "last_name": "Lovelase", "company": "analytical",
                                  "emails": [{"address": "ADA+news@example.com"}]}),
    )
    .await;
    let elsewhere =
        contact(json!({"first_name": "Ada", "last_name": "Lovelace", "company": "Other"})).await;
    let caller =
        contact(json!({"first_name": "Caller", "phones": [{"number": "+14155550101"}]})).await;
    let same_phone =
        contact(json!({"first_name": "Someone", "phones": [{"number": "(415) 555-0101"}]})).await;
    let dotted =
        contact(json!({"first_name": "G", "emails": [{"address": "a.da.l@gmail.com"}]})).await;
    let plain =
        contact(json!({"first_name": "H", "emails": [{"address": "adal+x@googlemail.com"}]})).await;
    let deleted =
        contact(json!({"first_name": "Del", "phones": [{"number": "+14155550101"}]})).await;
    let reply = client
        .request(Method::DELETE, &format!("/api/v1/contacts/{deleted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 204);

    let pairs = duplicate_pairs(&client, "").await;
    let found: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| {
            p["contact_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    let mut expected = vec![
        pair_of(&ada, &ada_news),
        pair_of(&caller, &same_phone),
        pair_of(&dotted, &plain),
    ];
    expected.sort();
    assert_eq!(found, expected, "{pairs:#?}");
    let by_pair = |a: &str, b: &str| {
        pairs
            .iter()
            .find(|p| p["contact_ids"] == json!(pair_of(a, b)))
            .unwrap()
            .clone()
    };
    let twins = by_pair(&ada, &ada_news);
    assert_eq!(kinds_of(&twins), ["email", "name_and_company"]);
    assert!(twins["score"].as_f64().unwrap() >= 0.95, "{twins}");
    assert_eq!(twins["contacts"].as_array().unwrap().len(), 2);
    assert_eq!(kinds_of(&by_pair(&caller, &same_phone)), ["phone"]);
    assert_eq!(
        by_pair(&dotted, &plain)["reasons"][0]["mailbox"],
        "adal@gmail.com"
    );
    let _ = elsewhere;

    // One contact's candidates; a score floor.
    let of_ada = duplicate_pairs(&client, &format!("contact_id={ada}")).await;
    assert_eq!(of_ada.len(), 1);
    assert_eq!(of_ada[0]["contact_ids"], json!(pair_of(&ada, &ada_news)));
    let sure = duplicate_pairs(&client, "min_score=0.95").await;
    assert_eq!(sure.len(), 1, "{sure:#?}");
    assert_eq!(
        client
            .get("/api/v1/contacts/duplicates?min_score=2")
            .await
            .status,
        400
    );

    // Another tenant sees none of them; merging a pair ends it.
    let outsider = client_of(&TestTenant::create("US").await);
    assert!(duplicate_pairs(&outsider, "").await.is_empty());
    let foreign = outsider
        .get(&format!("/api/v1/contacts/duplicates?contact_id={ada}"))
        .await;
    assert_eq!(foreign.status, 404);
    let merged = merge(&client, &ada, json!({"contact_ids": [ada_news]}), None).await;
    assert_eq!(merged.status, 201, "{}", merged.text);
    assert_eq!(duplicate_pairs(&client, "").await.len(), 2);
}

/// A merge can be undone for `merge_undo_days`; after that its undo answers 409 `expired`, and
/// `crm maintain` purges its record (the merged contacts' snapshots).
#[tokio::test]
async fn an_expired_merge_cannot_be_undone_and_maintenance_purges_it() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let al = client.create_contact(&json!({"first_name": "Al"})).await;
    let done = merge(&client, &ada, json!({"contact_ids": [al]}), None).await;
    assert_eq!(done.status, 201, "{}", done.text);
    let record = done.json();
    let merge_id = record["id"].as_str().unwrap().to_owned();
    let merged_at =
        chrono::DateTime::parse_from_rfc3339(record["merged_at"].as_str().unwrap()).unwrap();
    let undo_until =
        chrono::DateTime::parse_from_rfc3339(record["undo_until"].as_str().unwrap()).unwrap();
    assert_eq!(
        (undo_until - merged_at).num_days(),
        30,
        "the default retention"
    );

    owner_db()
        .await
        .execute(
            "update contact_merges set expires_at = now() - interval '1 second'
             where tenant_id = $1 and id = $2::text::uuid",
            &[&tenant.id.as_uuid(), &merge_id],
        )
        .await
        .unwrap();
    let late = undo(&client, &merge_id).await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(late.json()["errors"][0]["code"], "expired");
    let purged = crm::maintain::purge(&crm_http_tests::harness().owner_url, 30)
        .await
        .unwrap();
    assert!(purged.merges >= 1, "{purged:?}");
    assert_eq!(
        client
            .get(&format!("/api/v1/merges/{merge_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        client.get_contact(&al).await.status,
        410,
        "the contact stays merged"
    );
}

/// A unique custom field's value a merged contact had, taken by another contact while it was
/// merged, stands in the way of the undo: bringing the contact back would make two holders.
#[tokio::test]
async fn an_undo_refuses_to_bring_back_a_unique_value_another_contact_took() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    created(
        &client,
        "/api/v1/custom-fields",
        json!({"key": "account_no", "label": "Account", "type": "text", "unique": true}),
    )
    .await;
    let ada = client.create_contact(&json!({"first_name": "Ada"})).await;
    let al = client
        .create_contact(&json!({"first_name": "Al", "custom": {"account_no": "A-1"}}))
        .await;
    let done = merge(
        &client,
        &ada,
        json!({"contact_ids": [al], "rules": {"custom.account_no": "target"}}),
        None,
    )
    .await;
    assert_eq!(done.status, 201, "{}", done.text);
    let merge_id = done.json()["id"].as_str().unwrap().to_owned();
    let taker = client
        .create_contact(&json!({"first_name": "Taker", "custom": {"account_no": "A-1"}}))
        .await;

    let refused = undo(&client, &merge_id).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(
        refused.error_fields(),
        ["/merged_contacts/0/custom/account_no"]
    );
    assert_eq!(
        client.get_contact(&al).await.status,
        410,
        "nothing was undone"
    );

    let freed = client
        .patch_contact(&taker, &json!({"custom": {"account_no": null}}), None)
        .await;
    assert_eq!(freed.status, 200, "{}", freed.text);
    let undone = undo(&client, &merge_id).await;
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert_eq!(
        read(&client, &format!("/api/v1/contacts/{al}")).await["custom"]["account_no"],
        "A-1"
    );
}
