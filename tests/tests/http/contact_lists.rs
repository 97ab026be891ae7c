//! Listing contacts: filters, sorts, and a keyset cursor that holds while others write.

use crm_http_tests::{TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Every page of `path` (which has no cursor yet), concatenated.
async fn all_pages(client: &TestClient, path: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut next = path.to_owned();
    loop {
        let page = client.get(&next).await;
        assert_eq!(page.status, 200, "{next}: {}", page.text);
        let body = page.json();
        items.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}{separator}cursor={cursor}"),
            None => return items,
        }
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn seed(client: &TestClient) -> Vec<String> {
    let people = [
        json!({"first_name": "Ada", "last_name": "Lovelace", "company": "Engines", "lifecycle_stage": "customer",
               "owner_id": "u1", "emails": [{"address": "ada@example.com"}], "phones": [{"number": "(212) 736-5000"}]}),
        json!({"first_name": "Grace", "last_name": "hopper", "company": "ENGINES", "lifecycle_stage": "lead", "owner_id": "u2"}),
        json!({"first_name": "Alan", "last_name": "Turing", "lifecycle_stage": "lead", "owner_id": "u1"}),
        json!({"first_name": "Edsger", "company": "Other"}),
    ];
    let mut created = Vec::new();
    for person in people {
        created.push(client.create_contact(&person).await);
    }
    created
}

#[tokio::test]
async fn filters_select_what_they_name() {
    let client = TestTenant::create("US").await.client();
    let [ada, grace, alan, edsger] = <[String; 4]>::try_from(seed(&client).await).unwrap();
    for (query, expected) in [
        ("lifecycle_stage=lead", vec![&grace, &alan]),
        ("owner_id=u1", vec![&ada, &alan]),
        ("company=engines", vec![&ada, &grace]),
        ("email=ADA@Example.com", vec![&ada]),
        ("phone=%2B1%20212-736-5000", vec![&ada]),
        ("phone=212.736.5000", vec![&ada]),
        ("lifecycle_stage=lead&owner_id=u1", vec![&alan]),
        ("company=Other", vec![&edsger]),
    ] {
        let found = ids(&all_pages(&client, &format!("/api/v1/contacts?{query}")).await);
        assert_eq!(
            found,
            expected.into_iter().cloned().collect::<Vec<_>>(),
            "{query}"
        );
    }
}

#[tokio::test]
async fn time_filters_bound_created_and_updated() {
    let client = TestTenant::create("US").await.client();
    let first = client.create_contact(&json!({"first_name": "First"})).await;
    let cut = client.get_contact(&first).await.json()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = client
        .create_contact(&json!({"first_name": "Second"}))
        .await;
    let encoded = cut.replace('+', "%2B");
    assert_eq!(
        ids(&all_pages(
            &client,
            &format!("/api/v1/contacts?created_after={encoded}")
        )
        .await),
        vec![second.clone()]
    );
    assert_eq!(
        ids(&all_pages(
            &client,
            &format!("/api/v1/contacts?created_before={encoded}")
        )
        .await),
        Vec::<String>::new()
    );
    client
        .patch_contact(&first, &json!({"last_name": "Changed"}), None)
        .await;
    let since = client.get_contact(&first).await.json()["updated_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ids(&all_pages(&client, &format!("/api/v1/contacts?updated_since={since}")).await),
        vec![first.clone()]
    );
    assert_eq!(
        ids(&all_pages(&client, &format!("/api/v1/contacts?updated_before={since}")).await),
        vec![second]
    );
    let bad = client.get("/api/v1/contacts?created_after=yesterday").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn bad_filter_values_are_400() {
    let client = TestTenant::create("US").await.client();
    for query in [
        "lifecycle_stage=prospect",
        "lifecycle_stage=",
        "company=a%00b",
        "email=nope",
        "phone=12",
        "include_deleted=yes",
        "sort=first_name",
    ] {
        let reply = client.get(&format!("/api/v1/contacts?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
    }
}

#[tokio::test]
async fn sorts_order_by_created_updated_and_last_name_either_way() {
    let client = TestTenant::create("US").await.client();
    let [ada, grace, alan, edsger] = <[String; 4]>::try_from(seed(&client).await).unwrap();
    client
        .patch_contact(&ada, &json!({"job_title": "Countess"}), None)
        .await;
    for (sort, expected) in [
        ("created_at", vec![&ada, &grace, &alan, &edsger]),
        ("-created_at", vec![&edsger, &alan, &grace, &ada]),
        ("updated_at", vec![&grace, &alan, &edsger, &ada]),
        ("-updated_at", vec![&ada, &edsger, &alan, &grace]),
        // Case-insensitive; no last name sorts first.
        ("last_name", vec![&edsger, &grace, &ada, &alan]),
        ("-last_name", vec![&alan, &ada, &grace, &edsger]),
    ] {
        for limit in [1, 3, 50] {
            let found = ids(&all_pages(
                &client,
                &format!("/api/v1/contacts?sort={sort}&limit={limit}"),
            )
            .await);
            assert_eq!(
                found,
                expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "sort={sort} limit={limit}"
            );
        }
    }
}

#[tokio::test]
async fn a_cursor_is_refused_under_another_sort() {
    let client = TestTenant::create("US").await.client();
    seed(&client).await;
    let page = client
        .get("/api/v1/contacts?limit=1&sort=last_name")
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap();
    let reply = client
        .get(&format!(
            "/api/v1/contacts?limit=1&sort=-created_at&cursor={cursor}"
        ))
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn paging_while_others_write_never_skips_or_repeats_a_lasting_row() {
    let tenant = TestTenant::create("US").await;
    let client = tenant.client();
    let mut lasting = Vec::new();
    for n in 0..30 {
        lasting.push(
            client
                .create_contact(&json!({"first_name": format!("Lasting {n:02}")}))
                .await,
        );
    }
    let mut doomed = Vec::new();
    for n in 0..10 {
        doomed.push(
            client
                .create_contact(&json!({"first_name": format!("Doomed {n}")}))
                .await,
        );
    }
    for sort in ["created_at", "-created_at"] {
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/contacts?limit=4&sort={sort}");
        let mut round = 0;
        loop {
            let body = client.get(&path).await.json();
            seen.extend(ids(body["data"].as_array().unwrap()));
            // Between pages, other clients insert, update and delete.
            let writer = tenant.client();
            writer
                .create_contact(&json!({"first_name": format!("Newcomer {sort} {round}")}))
                .await;
            writer
                .patch_contact(
                    &lasting[(round * 7) % 30],
                    &json!({"job_title": format!("Job {round}")}),
                    None,
                )
                .await;
            if let Some(victim) = doomed.get(round) {
                writer
                    .send(writer.request(Method::DELETE, &format!("/api/v1/contacts/{victim}")))
                    .await;
            }
            round += 1;
            match body["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/api/v1/contacts?limit=4&sort={sort}&cursor={cursor}")
                }
                None => break,
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "sort={sort}: a row was repeated");
        for id in &lasting {
            assert!(
                unique.contains(id),
                "sort={sort}: lasting row {id} was skipped"
            );
        }
    }
}
