//! Tags: a tenant's vocabulary (names unique whatever their case, contact counts), attached to and
//! detached from contacts one at a time or as a whole set, renamed everywhere at once, detached
//! everywhere when deleted, filtered on by the contacts list, audited and evented, and kept within
//! the tenant.

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
    async fn tag(&self, name: &str) -> String {
        let reply = self
            .client
            .send_json(
                Method::POST,
                "/api/v1/tags",
                &json!({"name": name, "colour": "#1F77B4"}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    async fn contact(&self, name: &str) -> String {
        self.client
            .create_contact(&json!({"first_name": name}))
            .await
    }

    async fn attach(&self, contact: &str, tag: &str) -> crm_http_tests::Reply {
        self.client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{contact}/tags"),
                &json!({"tag_id": tag}),
            )
            .await
    }

    async fn names_of(&self, contact: &str) -> Vec<String> {
        let reply = self
            .client
            .get(&format!("/api/v1/contacts/{contact}/tags"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn listed(&self, query: &str) -> Vec<String> {
        let reply = self.client.get(&format!("/api/v1/contacts?{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["first_name"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn the_vocabulary_has_unique_names_whatever_their_case() {
    let shop = shop().await;
    let vip = shop.tag("VIP").await;
    let read = shop.client.get(&format!("/api/v1/tags/{vip}")).await.json();
    assert_eq!(read["colour"], "#1f77b4", "colours are stored lower-cased");
    assert_eq!(read["contact_count"], 0);
    let again = shop
        .client
        .send_json(Method::POST, "/api/v1/tags", &json!({"name": "vip"}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error_fields(), vec!["/name".to_owned()]);
    for (body, field) in [
        (json!({"name": " "}), "/name"),
        (json!({"name": "x".repeat(51)}), "/name"),
        (json!({"name": "ok", "colour": "red"}), "/colour"),
        (json!({"name": "ok", "weight": 3}), "/weight"),
    ] {
        let reply = shop
            .client
            .send_json(Method::POST, "/api/v1/tags", &body)
            .await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_fields(), vec![field.to_owned()], "{body}");
    }
    shop.tag("b-list").await;
    shop.tag("Alpha").await;
    let names: Vec<String> = shop.client.get("/api/v1/tags?limit=2").await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Alpha", "b-list"], "by name, whatever the case");
}

#[tokio::test]
async fn tags_attach_detach_and_replace_as_audited_changes_of_the_contact() {
    let shop = shop().await;
    let (vip, churn, lead) = (
        shop.tag("VIP").await,
        shop.tag("Churn risk").await,
        shop.tag("Lead").await,
    );
    let ada = shop.contact("Ada").await;
    let attached = shop.attach(&ada, &vip).await;
    assert_eq!(attached.status, 200, "{}", attached.text);
    assert_eq!(attached.json()["tags"][0]["name"], "VIP");
    assert_eq!(
        shop.attach(&ada, &vip).await.status,
        200,
        "attaching twice changes nothing"
    );
    assert_eq!(shop.attach(&ada, &churn).await.status, 200);
    assert_eq!(shop.names_of(&ada).await, ["Churn risk", "VIP"]);
    assert_eq!(
        shop.client.get(&format!("/api/v1/tags/{vip}")).await.json()["contact_count"],
        1
    );

    let replaced = shop
        .client
        .send_json(
            Method::PUT,
            &format!("/api/v1/contacts/{ada}/tags"),
            &json!({"tag_ids": [lead, vip]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(shop.names_of(&ada).await, ["Lead", "VIP"]);
    let detached = shop
        .client
        .send(shop.client.request(
            Method::DELETE,
            &format!("/api/v1/contacts/{ada}/tags/{lead}"),
        ))
        .await;
    assert_eq!(detached.status, 204, "{}", detached.text);
    assert_eq!(shop.names_of(&ada).await, ["VIP"]);

    let history = shop
        .client
        .get(&format!(
            "/api/v1/audit/events?entity_type=contact&entity_id={ada}&action=tag"
        ))
        .await
        .json();
    assert_eq!(
        history["data"].as_array().unwrap().len(),
        4,
        "attach, attach, replace, detach (the repeated attach changed nothing): {history}"
    );
    let events: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from outbox_events where tenant_id = $1 and event_type = 'contact.tags_changed'",
            &[&shop.tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 4);
}

#[tokio::test]
async fn a_rename_shows_everywhere_and_a_deleted_tag_is_detached_everywhere() {
    let shop = shop().await;
    let tag = shop.tag("Prospect").await;
    let (ada, bob) = (shop.contact("Ada").await, shop.contact("Bob").await);
    shop.attach(&ada, &tag).await;
    shop.attach(&bob, &tag).await;
    let renamed = shop
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tags/{tag}"),
            &json!({"name": "Customer"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.json()["contact_count"], 2);
    assert_eq!(shop.names_of(&ada).await, ["Customer"]);
    assert_eq!(shop.names_of(&bob).await, ["Customer"]);
    let deleted = shop
        .client
        .send(
            shop.client
                .request(Method::DELETE, &format!("/api/v1/tags/{tag}")),
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(shop.names_of(&ada).await.is_empty());
    assert_eq!(
        shop.client.get(&format!("/api/v1/tags/{tag}")).await.status,
        404
    );
}

#[tokio::test]
async fn the_contacts_list_filters_on_any_all_and_none_of_some_tags() {
    let shop = shop().await;
    let (red, blue) = (shop.tag("red").await, shop.tag("blue").await);
    let both = shop.contact("Both").await;
    let red_only = shop.contact("RedOnly").await;
    shop.contact("Neither").await;
    shop.attach(&both, &red).await;
    shop.attach(&both, &blue).await;
    shop.attach(&red_only, &red).await;
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };
    assert_eq!(
        sorted(shop.listed(&format!("tags_any={red},{blue}")).await),
        ["Both", "RedOnly"]
    );
    assert_eq!(
        shop.listed(&format!("tags_all={red},{blue}")).await,
        ["Both"]
    );
    assert_eq!(shop.listed(&format!("tags_none={blue}")).await.len(), 2);
    assert_eq!(
        shop.listed(&format!("tags_any={red}&tags_none={blue}"))
            .await,
        ["RedOnly"]
    );
    let bad = shop.client.get("/api/v1/contacts?tags_any=nope").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

#[tokio::test]
async fn tags_stay_within_their_tenant_and_contacts_carry_at_most_a_hundred() {
    let shop = shop().await;
    let theirs = shop.tag("Theirs").await;
    let stranger = shop_of_another_tenant().await;
    let mine = stranger.contact("Mine").await;
    assert_eq!(
        stranger
            .client
            .get(&format!("/api/v1/tags/{theirs}"))
            .await
            .status,
        404
    );
    let planted = stranger.attach(&mine, &theirs).await;
    assert_eq!(planted.status, 422, "{}", planted.text);
    assert_eq!(planted.error_fields(), vec!["/tag_id".to_owned()]);
    let ada = shop.contact("Ada").await;
    assert_eq!(
        stranger
            .client
            .get(&format!("/api/v1/contacts/{ada}/tags"))
            .await
            .status,
        404
    );

    let mut ids: Vec<String> = Vec::new();
    for n in 0..101 {
        ids.push(shop.tag(&format!("t{n}")).await);
    }
    let too_many = shop
        .client
        .send_json(
            Method::PUT,
            &format!("/api/v1/contacts/{ada}/tags"),
            &json!({"tag_ids": ids}),
        )
        .await;
    assert_eq!(too_many.status, 422, "{}", too_many.text);
    let hundred = shop
        .client
        .send_json(
            Method::PUT,
            &format!("/api/v1/contacts/{ada}/tags"),
            &json!({"tag_ids": ids[..100]}),
        )
        .await;
    assert_eq!(hundred.status, 200, "{}", hundred.text);
    let one_more = shop.attach(&ada, &ids[100]).await;
    assert_eq!(one_more.status, 422, "{}", one_more.text);
    assert_eq!(one_more.json()["errors"][0]["code"], "too_many");
}

async fn shop_of_another_tenant() -> Shop {
    shop().await
}

#[tokio::test]
async fn erasing_a_contact_removes_its_tags_and_their_history() {
    let shop = shop().await;
    let tag = shop.tag("Sensitive").await;
    let ada = shop.contact("Ada").await;
    shop.attach(&ada, &tag).await;
    let eraser = TestClient::new(Some(shop.tenant.token("contacts:erase")));
    let erased = eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{ada}/erase")))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    let tag_now: Value = shop.client.get(&format!("/api/v1/tags/{tag}")).await.json();
    assert_eq!(tag_now["contact_count"], 0);
    let traces: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from audit_log where entity_id = $1 and changes::text like '%Sensitive%'",
            &[&ada.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(traces, 0);
}
