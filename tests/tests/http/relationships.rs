//! Relationships: typed links between two contacts, named from each side, built-in and tenant
//! types, no self-links or duplicates, removed from both views at once, erased with a contact.

use crm_http_tests::{owner_db, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

struct Office {
    tenant: TestTenant,
    client: TestClient,
}

async fn office() -> Office {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(
        tenant.token("contacts:read contacts:write audit:read"),
    ));
    Office { tenant, client }
}

impl Office {
    async fn contact(&self, first_name: &str) -> String {
        self.client
            .create_contact(&json!({"first_name": first_name, "last_name": "Smith"}))
            .await
    }

    async fn link(&self, from: &str, kind: &str, to: &str) -> crm_http_tests::Reply {
        self.client
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{from}/relationships"),
                &json!({"type": kind, "contact_id": to}),
            )
            .await
    }

    async fn links_of(&self, contact: &str) -> Vec<Value> {
        let reply = self
            .client
            .get(&format!("/api/v1/contacts/{contact}/relationships"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["data"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_manager_link_reads_manager_of_one_way_and_reports_to_the_other() {
    let office = office().await;
    let (ann, bob) = (office.contact("Ann").await, office.contact("Bob").await);
    let made = office.link(&ann, "manager", &bob).await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(made.json()["name"], "manager of");
    assert_eq!(made.json()["contact"]["display_name"], "Bob Smith");
    let bobs = office.links_of(&bob).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["name"], "reports to");
    assert_eq!(bobs[0]["contact"]["id"], ann.as_str());
    assert_eq!(bobs[0]["contact"]["display_name"], "Ann Smith");

    // Deleting from either side removes both views.
    let id = made.json()["id"].as_str().unwrap().to_owned();
    let removed = office
        .client
        .send(office.client.request(
            Method::DELETE,
            &format!("/api/v1/contacts/{bob}/relationships/{id}"),
        ))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert!(office.links_of(&ann).await.is_empty());
    assert!(office.links_of(&bob).await.is_empty());
    let events: Vec<String> = owner_db()
        .await
        .query(
            "select event_type from outbox_events where tenant_id = $1 and entity_type = 'relationship' order by seq",
            &[&office.tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(events, ["relationship.created", "relationship.deleted"]);
}

#[tokio::test]
async fn no_self_links_no_duplicates_and_symmetric_links_meet() {
    let office = office().await;
    let (ann, bob) = (office.contact("Ann").await, office.contact("Bob").await);
    let own = office.link(&ann, "colleague", &ann).await;
    assert_eq!(own.status, 422, "{}", own.text);
    assert_eq!(own.json()["errors"][0]["code"], "self_link");
    assert_eq!(office.link(&ann, "spouse", &bob).await.status, 201);
    let again = office.link(&bob, "spouse", &ann).await;
    assert_eq!(
        again.status, 409,
        "a symmetric link in the other direction is the same link: {}",
        again.text
    );
    assert_eq!(
        office.link(&ann, "parent", &bob).await.status,
        201,
        "another type is another link"
    );
    assert_eq!(office.link(&ann, "parent", &bob).await.status, 409);
    let unknown = office.link(&ann, "nemesis", &bob).await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.error_fields(), vec!["/type".to_owned()]);
    let nobody = office
        .link(&ann, "colleague", &uuid::Uuid::now_v7().to_string())
        .await;
    assert_eq!(nobody.status, 422);
    assert_eq!(nobody.error_fields(), vec!["/contact_id".to_owned()]);
    let names: Vec<String> = office
        .links_of(&bob)
        .await
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["child of", "spouse of"],
        "newest first, each from Bob's side"
    );
}

#[tokio::test]
async fn a_tenant_defines_its_own_link_types() {
    let office = office().await;
    let made = office
        .client
        .send_json(
            Method::POST,
            "/api/v1/relationship-types",
            &json!({"forward_name": "mentor of", "reverse_name": "mentee of"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let mentor = made.json()["id"].as_str().unwrap().to_owned();
    let types = office.client.get("/api/v1/relationship-types").await.json();
    let ids: Vec<&str> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids[..5],
        ["parent", "spouse", "manager", "assistant", "colleague"]
    );
    assert!(ids.contains(&mentor.as_str()));
    let (ann, bob) = (office.contact("Ann").await, office.contact("Bob").await);
    assert_eq!(
        office.link(&ann, &mentor, &bob).await.json()["name"],
        "mentor of"
    );
    assert_eq!(office.links_of(&bob).await[0]["name"], "mentee of");
    // Another tenant's type is not one this tenant has.
    let stranger = office_of_another_tenant().await;
    let (cy, di) = (stranger.contact("Cy").await, stranger.contact("Di").await);
    let foreign = stranger.link(&cy, &mentor, &di).await;
    assert_eq!(foreign.status, 422, "{}", foreign.text);
    assert_eq!(
        stranger
            .client
            .get(&format!("/api/v1/contacts/{ann}/relationships"))
            .await
            .status,
        404
    );
    let across = stranger.link(&cy, "colleague", &ann).await;
    assert_eq!(
        across.status, 422,
        "another tenant's contact is not found: {}",
        across.text
    );
}

async fn office_of_another_tenant() -> Office {
    office().await
}

#[tokio::test]
async fn a_deleted_contact_hides_its_links_and_an_erased_one_removes_them() {
    let office = office().await;
    let (ann, bob) = (office.contact("Ann").await, office.contact("Bob").await);
    office.link(&ann, "colleague", &bob).await;
    let deleted = office
        .client
        .send(
            office
                .client
                .request(Method::DELETE, &format!("/api/v1/contacts/{bob}")),
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert!(
        office.links_of(&ann).await.is_empty(),
        "hidden while Bob is deleted"
    );
    office
        .client
        .send(
            office
                .client
                .request(Method::POST, &format!("/api/v1/contacts/{bob}/restore")),
        )
        .await;
    assert_eq!(office.links_of(&ann).await.len(), 1, "back with Bob");
    let eraser = TestClient::new(Some(office.tenant.token("contacts:erase")));
    let erased = eraser
        .send(eraser.request(Method::POST, &format!("/api/v1/contacts/{bob}/erase")))
        .await;
    assert!(erased.status < 300, "{}", erased.text);
    assert!(office.links_of(&ann).await.is_empty());
    let left: i64 = owner_db()
        .await
        .query_one(
            "select count(*) from contact_relationships where tenant_id = $1",
            &[&office.tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
