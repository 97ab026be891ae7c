//! Lists: static lists whose members are added and removed in bulk with a result per id, smart
//! lists whose members are whoever their saved filter matches when read, a list's contacts
//! keyset-paginated, a contact's lists, membership changes audited and evented per contact, and all
//! of it within the tenant.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

struct Shop {
    tenant: TestTenant,
    client: TestClient,
}

async fn shop() -> Shop {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(
        tenant.token("contacts:read contacts:write audit:read"),
    ));
    Shop { tenant, client }
}

impl Shop {
    async fn list(&self, body: Value) -> String {
        let reply = self
            .client
            .send_json(Method::POST, "/api/v1/lists", &body)
            .await;
        assert_eq!(reply.status, 201, "{body}: {}", reply.text);
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    async fn contact(&self, body: Value) -> String {
        self.client.create_contact(&body).await
    }

    async fn members(&self, list: &str, body: Value) -> crm_http_tests::Reply {
        self.client
            .send_json(
                Method::POST,
                &format!("/api/v1/lists/{list}/members"),
                &body,
            )
            .await
    }

    /// The first names of the list's contacts, every page of `limit`.
    async fn contacts_of(&self, list: &str, query: &str, limit: usize) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/lists/{list}/contacts?limit={limit}&{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let reply = self.client.get(&path).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            let page = reply.json();
            for contact in page["data"].as_array().unwrap() {
                names.push(contact["first_name"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return names,
            }
        }
    }

    async fn lists_of(&self, contact: &str) -> Vec<String> {
        let reply = self
            .client
            .get(&format!("/api/v1/contacts/{contact}/lists"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["lists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn events(&self, event_type: &str) -> Vec<Value> {
        owner_db()
            .await
            .query(
                "select payload from outbox_events where tenant_id = $1 and event_type = $2 order by id",
                &[&self.tenant.id.as_uuid(), &event_type],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}

fn results(reply: &crm_http_tests::Reply) -> Vec<String> {
    reply.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_static_list_takes_members_in_bulk_with_a_result_for_each_id() {
    let shop = shop().await;
    let list = shop.list(json!({"name": "Conference 2026"})).await;
    let ada = shop.contact(json!({"first_name": "Ada"})).await;
    let bob = shop.contact(json!({"first_name": "Bob"})).await;
    let gone = shop.contact(json!({"first_name": "Gone"})).await;
    shop.client
        .send(
            shop.client
                .request(Method::DELETE, &format!("/api/v1/contacts/{gone}")),
        )
        .await;
    let stranger = shop_of_another_tenant()
        .await
        .contact(json!({"first_name": "Stranger"}))
        .await;

    let added = shop
        .members(
            &list,
            json!({"add": [ada, bob, ada, gone, stranger, "not-an-id"]}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert_eq!(
        results(&added),
        [
            "added",
            "added",
            "already_member",
            "not_found",
            "not_found",
            "invalid_id"
        ]
    );
    assert_eq!(added.json()["added"], 2);
    assert_eq!(added.json()["results"][5]["contact_id"], "not-an-id");
    let read = shop
        .client
        .get(&format!("/api/v1/lists/{list}"))
        .await
        .json();
    assert_eq!(
        (read["kind"].clone(), read["member_count"].clone()),
        (json!("static"), json!(2))
    );

    let changed = shop
        .members(&list, json!({"add": [ada], "remove": [bob, gone]}))
        .await;
    assert_eq!(
        results(&changed),
        ["already_member", "removed", "not_member"]
    );
    assert_eq!(shop.contacts_of(&list, "", 10).await, ["Ada"]);
    assert_eq!(shop.lists_of(&ada).await, ["Conference 2026"]);
    assert!(shop.lists_of(&bob).await.is_empty());

    // Each change is a change of the contact: audited with the actor, evented for webhooks.
    let added_events = shop.events("list.member_added").await;
    assert_eq!(added_events.len(), 2);
    assert_eq!(added_events[0]["list_name"], "Conference 2026");
    assert_eq!(shop.events("list.member_removed").await.len(), 1);
    let audit = shop
        .client
        .get(&format!(
            "/api/v1/audit/events?entity_type=contact&entity_id={bob}"
        ))
        .await
        .json();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"list_add") && actions.contains(&"list_remove"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_membership_change_is_bounded_and_refused_whole_when_malformed() {
    let shop = shop().await;
    let list = shop.list(json!({"name": "Big"})).await;
    let ada = shop.contact(json!({"first_name": "Ada"})).await;
    let too_many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    for (body, field) in [
        (json!({"add": too_many}), ""),
        (json!({}), ""),
        (json!({"add": [ada], "remove": [ada]}), "/remove/0"),
        (json!({"add": "x"}), "/add"),
    ] {
        let reply = shop.members(&list, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()]);
    }
    assert!(shop.lists_of(&ada).await.is_empty(), "nothing was written");

    // A thousand ids in one call: all added, each with its result.
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            shop.contact(json!({"first_name": format!("C{i:02}")}))
                .await,
        );
    }
    let mut body: Vec<String> = ids.clone();
    body.extend((0..980).map(|_| uuid::Uuid::now_v7().to_string()));
    let reply = shop.members(&list, json!({"add": body})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["added"], 20);
    assert_eq!(reply.json()["results"].as_array().unwrap().len(), 1000);
    let paged = shop.contacts_of(&list, "sort=-created_at", 7).await;
    assert_eq!(paged.len(), 20, "seven a page, every member once");
    assert_eq!(paged[0], "C19");
    assert_eq!(shop.events("list.member_added").await.len(), 20);
}

#[tokio::test]
async fn a_smart_list_holds_whoever_its_filter_matches_when_read() {
    let shop = shop().await;
    let vip = shop
        .client
        .send_json(Method::POST, "/api/v1/tags", &json!({"name": "VIP"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let smart = shop
        .list(json!({
            "name": "VIP leads",
            "kind": "smart",
            "filter": {"lifecycle_stage": "lead", "tags_any": [vip]}
        }))
        .await;
    let ada = shop
        .contact(json!({"first_name": "Ada", "lifecycle_stage": "lead"}))
        .await;
    let bob = shop
        .contact(json!({"first_name": "Bob", "lifecycle_stage": "lead"}))
        .await;
    shop.contact(json!({"first_name": "Cy", "lifecycle_stage": "customer"}))
        .await;
    assert!(shop.contacts_of(&smart, "", 10).await.is_empty());
    for contact in [&ada, &bob] {
        let reply = shop
            .client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{contact}/tags"),
                &json!({"tag_id": vip}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(shop.contacts_of(&smart, "sort=last_name", 1).await.len(), 2);
    assert_eq!(shop.lists_of(&ada).await, ["VIP leads"]);

    // Ada becomes a customer: she leaves the list at once, with no membership change to make.
    let patched = shop
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{ada}"),
            &json!({"lifecycle_stage": "customer"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(shop.contacts_of(&smart, "", 10).await, ["Bob"]);
    assert!(shop.lists_of(&ada).await.is_empty());
    // The list's own filters combine with the request's.
    assert!(shop
        .contacts_of(&smart, "lifecycle_stage=customer", 10)
        .await
        .is_empty());

    // Members are computed: they are not added by hand.
    let refused = shop.members(&smart, json!({"add": [ada]})).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    // The filter can change (merge-patched as any object: null removes a condition), the kind
    // cannot.
    let widened = shop
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/lists/{smart}"),
            &json!({"filter": {"lifecycle_stage": null}}),
        )
        .await;
    assert_eq!(widened.status, 200, "{}", widened.text);
    assert_eq!(widened.json()["filter"], json!({"tags_any": [vip]}));
    assert_eq!(shop.contacts_of(&smart, "", 10).await.len(), 2);
    let rekinded = shop
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/lists/{smart}"),
            &json!({"kind": "static", "filter": null}),
        )
        .await;
    assert_eq!(rekinded.status, 422, "{}", rekinded.text);
    assert_eq!(rekinded.error_fields(), vec!["/kind".to_owned()]);
}

#[tokio::test]
async fn a_smart_lists_filter_is_checked_as_the_contacts_list_reads_it() {
    let shop = shop().await;
    let smart = |filter: Value| json!({"name": "S", "kind": "smart", "filter": filter});
    for (body, field) in [
        (
            smart(json!({"lifecycle_stage": "royalty"})),
            "/filter/lifecycle_stage",
        ),
        (
            smart(json!({"created_after": "yesterday"})),
            "/filter/created_after",
        ),
        (smart(json!({"phone": "12"})), "/filter/phone"),
        (smart(json!({"tags_any": ["nope"]})), "/filter/tags_any"),
        (smart(json!({"tags_any": "x"})), "/filter/tags_any"),
        (
            smart(json!({"tags_all": [uuid::Uuid::now_v7().to_string()]})),
            "/filter/tags_all",
        ),
        (
            smart(json!({"include_deleted": "true"})),
            "/filter/include_deleted",
        ),
        (smart(json!({})), "/filter"),
        (json!({"name": "S", "kind": "smart"}), "/filter"),
        (json!({"name": "S", "filter": {"company": "x"}}), "/filter"),
        (json!({"name": "S", "kind": "dynamic"}), "/kind"),
        (json!({"name": ""}), "/name"),
    ] {
        let reply = shop
            .client
            .send_json(Method::POST, "/api/v1/lists", &body)
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }
    shop.list(json!({"name": "Leads"})).await;
    let again = shop
        .client
        .send_json(Method::POST, "/api/v1/lists", &json!({"name": "LEADS"}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let phone = shop
        .list(smart(json!({"phone": "(415) 555-0100", "company": "Acme"})))
        .await;
    let found = shop
        .contact(
            json!({"first_name": "Ada", "company": "ACME", "phones": [{"number": "+14155550100"}]}),
        )
        .await;
    assert_eq!(shop.lists_of(&found).await, ["S"]);
    assert_eq!(shop.contacts_of(&phone, "", 10).await, ["Ada"]);
    let smart_only: Vec<Value> = shop.client.get("/api/v1/lists?kind=smart").await.json()["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(smart_only.len(), 1);
    assert_eq!(smart_only[0]["member_count"], Value::Null);
}

async fn shop_of_another_tenant() -> Shop {
    shop().await
}

#[tokio::test]
async fn lists_stay_within_their_tenant_and_go_with_their_contacts() {
    let shop = shop().await;
    let other = shop_of_another_tenant().await;
    let list = shop.list(json!({"name": "Mine"})).await;
    let ada = shop.contact(json!({"first_name": "Ada"})).await;
    shop.members(&list, json!({"add": [ada]})).await;
    for path in [
        format!("/api/v1/lists/{list}"),
        format!("/api/v1/lists/{list}/contacts"),
        format!("/api/v1/contacts/{ada}/lists"),
    ] {
        assert_eq!(other.client.get(&path).await.status, 404, "{path}");
    }
    let foreign = other.members(&list, json!({"add": [ada]})).await;
    assert_eq!(foreign.status, 404, "{}", foreign.text);

    // A deleted contact leaves the list's contacts and comes back with its restoration.
    shop.client
        .send(
            shop.client
                .request(Method::DELETE, &format!("/api/v1/contacts/{ada}")),
        )
        .await;
    assert!(shop.contacts_of(&list, "", 10).await.is_empty());
    assert_eq!(
        shop.client
            .get(&format!("/api/v1/lists/{list}"))
            .await
            .json()["member_count"],
        0
    );
    shop.client
        .send(
            shop.client
                .request(Method::POST, &format!("/api/v1/contacts/{ada}/restore")),
        )
        .await;
    assert_eq!(shop.contacts_of(&list, "", 10).await, ["Ada"]);

    // Erasure removes the membership and scrubs its history; deleting the list removes the rest.
    let eraser = TestClient::new(Some(shop.tenant.token("contacts:erase")));
    let erased = eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{ada}/erase")))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    assert!(shop.contacts_of(&list, "", 10).await.is_empty());
    let traces: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from outbox_events where entity_id = $1 and payload::text like '%Mine%'",
            &[&ada.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0, "the membership event names no list once erased");
    let bob = shop.contact(json!({"first_name": "Bob"})).await;
    shop.members(&list, json!({"add": [bob]})).await;
    let deleted = shop
        .client
        .send(
            shop.client
                .request(Method::DELETE, &format!("/api/v1/lists/{list}")),
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(shop.lists_of(&bob).await.is_empty());
    assert_eq!(shop.events("list.deleted").await.len(), 1);
    assert_eq!(
        shop.client
            .get(&format!("/api/v1/lists/{list}/contacts"))
            .await
            .status,
        404
    );
}
