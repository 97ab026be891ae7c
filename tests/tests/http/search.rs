//! Advanced search, `POST /api/v1/contacts/search`: a filter tree over standard fields, custom
//! fields, tags, lists and consent; a ranked, typo-tolerant `q` over names, emails, company and
//! notes; sorts on any field with keyset pages; totals; bounded trees; within the tenant.

use crm_http_tests::{TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};

struct Book {
    tenant: TestTenant,
    client: TestClient,
}

async fn book() -> Book {
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(tenant.token("contacts:read contacts:write")));
    Book { tenant, client }
}

impl Book {
    async fn search(&self, body: Value) -> crm_http_tests::Reply {
        self.client
            .send_json(Method::POST, "/api/v1/contacts/search", &body)
            .await
    }

    /// The first names a search finds, in its order (one page).
    async fn names(&self, body: Value) -> Vec<String> {
        let reply = self.search(body.clone()).await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.text);
        first_names(&reply.json())
    }

    /// Every first name a search finds, page by page with `limit` per page.
    async fn every_name(&self, mut body: Value, limit: usize) -> Vec<String> {
        body["limit"] = json!(limit);
        let mut names = Vec::new();
        loop {
            let reply = self.search(body.clone()).await;
            assert_eq!(reply.status, 200, "{body}: {}", reply.text);
            let page = reply.json();
            assert!(page["data"].as_array().unwrap().len() <= limit);
            names.extend(first_names(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => body["cursor"] = json!(cursor),
                None => return names,
            }
        }
    }

    /// Each filter finds exactly the contacts of these first names, in any order.
    async fn finds(&self, cases: Vec<(Value, Vec<&str>)>) {
        for (filter, expected) in cases {
            assert_eq!(
                sorted(self.names(json!({"filter": filter.clone()})).await),
                expected,
                "{filter}"
            );
        }
    }

    async fn define(&self, body: Value) {
        let reply = self
            .client
            .send_json(Method::POST, "/api/v1/custom-fields", &body)
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let reply = self.client.send_json(Method::POST, path, &body).await;
        assert!(reply.status < 300, "{path} {body}: {}", reply.text);
        reply.json()
    }

    /// The 422's error fields of a search.
    async fn refused(&self, body: Value) -> Vec<String> {
        let reply = self.search(body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(
            reply.headers["content-type"], "application/problem+json",
            "{body}"
        );
        reply.error_fields()
    }
}

fn first_names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["first_name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn condition(field: &str, op: &str, value: Value) -> Value {
    json!({"field": field, "op": op, "value": value})
}

#[tokio::test]
async fn standard_fields_answer_every_operator() {
    let book = book().await;
    for body in [
        json!({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines",
               "job_title": "Analyst", "lifecycle_stage": "customer", "owner_id": "u-1",
               "emails": [{"address": "ada@engines.example"}], "phones": [{"number": "+44 20 7946 0000"}]}),
        json!({"first_name": "Grace", "last_name": "Hopper", "company": "Navy",
               "lifecycle_stage": "lead", "owner_id": "u-2",
               "emails": [{"address": "grace@navy.example"}], "phones": [{"number": "(415) 555-0100"}]}),
        json!({"first_name": "Alan", "last_name": "Turing", "lifecycle_stage": "lead",
               "emails": [{"address": "alan@bletchley.example"}]}),
        json!({"first_name": "Linus", "last_name": "Torvalds", "company": "Kernel_100%"}),
    ] {
        book.client.create_contact(&body).await;
    }
    let cases = vec![
        (condition("last_name", "eq", json!("LOVELACE")), vec!["Ada"]),
        (
            condition("last_name", "neq", json!("lovelace")),
            vec!["Alan", "Grace", "Linus"],
        ),
        (
            condition("lifecycle_stage", "in", json!(["lead", "customer"])),
            vec!["Ada", "Alan", "Grace"],
        ),
        // A contact without the value satisfies a negation.
        (
            condition("lifecycle_stage", "not_in", json!(["lead"])),
            vec!["Ada", "Linus"],
        ),
        (
            condition("last_name", "starts_with", json!("T")),
            vec!["Alan", "Linus"],
        ),
        (
            condition("company", "contains", json!("engine")),
            vec!["Ada"],
        ),
        // like's wildcards are plain characters in a value.
        (
            condition("company", "contains", json!("_100%")),
            vec!["Linus"],
        ),
        (condition("company", "contains", json!("%")), vec!["Linus"]),
        (condition("company", "is_empty", json!(true)), vec!["Alan"]),
        (
            condition("company", "exists", json!(true)),
            vec!["Ada", "Grace", "Linus"],
        ),
        (
            condition("job_title", "exists", json!(false)),
            vec!["Alan", "Grace", "Linus"],
        ),
        (
            condition("last_name", "between", json!(["hopper", "lovelace"])),
            vec!["Ada", "Grace"],
        ),
        (
            condition("last_name", "gt", json!("torvalds")),
            vec!["Alan"],
        ),
        (
            condition("last_name", "lte", json!("hopper")),
            vec!["Grace"],
        ),
        (condition("owner_id", "eq", json!("u-2")), vec!["Grace"]),
        (
            condition("email", "eq", json!("ADA@engines.example")),
            vec!["Ada"],
        ),
        (condition("email", "contains", json!("navy")), vec!["Grace"]),
        (condition("email", "is_empty", json!(true)), vec!["Linus"]),
        // The tenant's region reads a number written without its country code.
        (
            condition("phone", "eq", json!("415-555-0100")),
            vec!["Grace"],
        ),
        (
            condition("phone", "starts_with", json!("+4420")),
            vec!["Ada"],
        ),
        (
            condition("created_at", "gt", json!("2000-01-01T00:00:00Z")),
            vec!["Ada", "Alan", "Grace", "Linus"],
        ),
        (
            condition("created_at", "lt", json!("2000-01-01T00:00:00Z")),
            vec![],
        ),
        (
            condition("last_contacted_at", "exists", json!(true)),
            vec![],
        ),
        (
            json!({"or": [condition("last_name", "eq", json!("turing")),
                          {"and": [condition("lifecycle_stage", "eq", json!("customer")),
                                   {"not": condition("company", "eq", json!("navy"))}]}]}),
            vec!["Ada", "Alan"],
        ),
    ];
    book.finds(cases).await;
}

#[tokio::test]
async fn custom_fields_are_searched_and_sorted_by_their_type() {
    let book = book().await;
    book.define(json!({"key": "seats", "label": "Seats", "type": "number"}))
        .await;
    book.define(json!({"key": "arr", "label": "ARR", "type": "decimal"}))
        .await;
    book.define(json!({"key": "tier", "label": "Tier", "type": "single_select",
                       "options": [{"id": "gold", "label": "Gold"}, {"id": "silver", "label": "Silver"}]}))
        .await;
    book.define(json!({"key": "interests", "label": "Interests", "type": "multi_select",
                       "options": [{"id": "rust", "label": "Rust"}, {"id": "spin", "label": "Spin"}]}))
        .await;
    book.define(json!({"key": "renewal", "label": "Renewal", "type": "date"}))
        .await;
    book.define(json!({"key": "vip", "label": "VIP", "type": "boolean"}))
        .await;
    book.define(json!({"key": "motto", "label": "Motto", "type": "text"}))
        .await;
    for (name, custom) in [
        (
            "Ada",
            json!({"seats": 12, "arr": 1200.5, "tier": "gold", "interests": ["rust", "spin"],
                       "renewal": "2027-03-01", "vip": true, "motto": "Poetical Science"}),
        ),
        (
            "Bob",
            json!({"seats": 3, "arr": 99.99, "tier": "silver", "interests": ["spin"],
                       "renewal": "2026-12-24", "vip": false}),
        ),
        (
            "Cy",
            json!({"seats": 40, "tier": "gold", "renewal": "2028-01-01", "motto": "Science!"}),
        ),
        ("Di", json!({})),
    ] {
        book.client
            .create_contact(&json!({"first_name": name, "custom": custom}))
            .await;
    }
    let cases = vec![
        (
            condition("custom.tier", "eq", json!("gold")),
            vec!["Ada", "Cy"],
        ),
        (
            condition("custom.tier", "neq", json!("gold")),
            vec!["Bob", "Di"],
        ),
        (condition("custom.seats", "eq", json!(12)), vec!["Ada"]),
        (
            condition("custom.seats", "in", json!([3, 40])),
            vec!["Bob", "Cy"],
        ),
        (
            condition("custom.seats", "gte", json!(12)),
            vec!["Ada", "Cy"],
        ),
        (
            condition("custom.seats", "between", json!([3, 12])),
            vec!["Ada", "Bob"],
        ),
        (condition("custom.arr", "lt", json!(100)), vec!["Bob"]),
        (
            condition("custom.interests", "contains", json!("spin")),
            vec!["Ada", "Bob"],
        ),
        (
            condition("custom.interests", "in", json!(["rust"])),
            vec!["Ada"],
        ),
        (
            condition("custom.interests", "is_empty", json!(true)),
            vec!["Cy", "Di"],
        ),
        (
            condition("custom.renewal", "lt", json!("2027-01-01")),
            vec!["Bob"],
        ),
        (condition("custom.vip", "eq", json!(true)), vec!["Ada"]),
        (
            condition("custom.vip", "exists", json!(true)),
            vec!["Ada", "Bob"],
        ),
        (
            condition("custom.motto", "contains", json!("science")),
            vec!["Ada", "Cy"],
        ),
        (
            condition("custom.motto", "starts_with", json!("poet")),
            vec!["Ada"],
        ),
    ];
    book.finds(cases).await;
    // Sorted by a custom number, a page of one at a time; no value sorts as the lowest.
    assert_eq!(
        book.every_name(json!({"sort": "custom.seats"}), 1).await,
        ["Di", "Bob", "Ada", "Cy"]
    );
    assert_eq!(
        book.every_name(json!({"sort": "-custom.seats"}), 3).await,
        ["Cy", "Ada", "Bob", "Di"]
    );
    assert_eq!(
        book.every_name(json!({"sort": "-custom.renewal"}), 2).await,
        ["Cy", "Ada", "Bob", "Di"]
    );
    assert_eq!(
        book.every_name(
            json!({"sort": "custom.arr", "filter": condition("custom.arr", "exists", json!(true))}),
            1
        )
        .await,
        ["Bob", "Ada"]
    );
    // A cursor is only good under its own sort.
    let page = book
        .search(json!({"sort": "custom.seats", "limit": 1}))
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap();
    assert_eq!(
        book.refused(json!({"sort": "-custom.seats", "cursor": cursor}))
            .await,
        ["/cursor"]
    );
    assert_eq!(
        book.refused(json!({"sort": "custom.interests"})).await,
        ["/sort"]
    );
}

#[tokio::test]
async fn tags_lists_preferences_and_consent_are_conditions_too() {
    let book = book().await;
    let ada = book
        .client
        .create_contact(&json!({"first_name": "Ada", "lifecycle_stage": "customer"}))
        .await;
    let bob = book
        .client
        .create_contact(&json!({"first_name": "Bob", "lifecycle_stage": "lead"}))
        .await;
    let cy = book
        .client
        .create_contact(&json!({"first_name": "Cy", "lifecycle_stage": "lead"}))
        .await;
    let vip = book.post("/api/v1/tags", json!({"name": "vip"})).await["id"].clone();
    let churn = book
        .post("/api/v1/tags", json!({"name": "churn-risk"}))
        .await["id"]
        .clone();
    book.post(
        &format!("/api/v1/contacts/{ada}/tags"),
        json!({"tag_id": vip}),
    )
    .await;
    book.post(
        &format!("/api/v1/contacts/{bob}/tags"),
        json!({"tag_id": churn}),
    )
    .await;
    let board = book.post("/api/v1/lists", json!({"name": "Board"})).await["id"].clone();
    book.post(
        &format!("/api/v1/lists/{}/members", board.as_str().unwrap()),
        json!({"add": [cy]}),
    )
    .await;
    let leads = book
        .post(
            "/api/v1/lists",
            json!({"name": "Leads", "kind": "smart", "filter": {"lifecycle_stage": "lead"}}),
        )
        .await["id"]
        .clone();
    book.client
        .send_json(Method::PATCH, &format!("/api/v1/contacts/{bob}/preferences"),
                   &json!({"preferred_channel": "sms", "language": "pt-BR", "do_not_contact": {"email": true}}))
        .await;
    book.post(&format!("/api/v1/contacts/{ada}/consents"),
              json!({"purpose": "newsletter", "status": "granted", "legal_basis": "consent", "source": "form"}))
        .await;

    let cases = vec![
        (condition("tags", "contains", vip.clone()), vec!["Ada"]),
        (
            condition("tags", "in", json!([vip, churn])),
            vec!["Ada", "Bob"],
        ),
        (condition("tags", "not_in", json!([vip])), vec!["Bob", "Cy"]),
        (condition("tags", "is_empty", json!(true)), vec!["Cy"]),
        (condition("lists", "eq", board.clone()), vec!["Cy"]),
        // A smart list's members are whoever its saved filter matches now.
        (condition("lists", "eq", leads.clone()), vec!["Bob", "Cy"]),
        (
            condition("lists", "not_in", json!([board, leads])),
            vec!["Ada"],
        ),
        (
            condition("preferred_channel", "eq", json!("sms")),
            vec!["Bob"],
        ),
        (condition("language", "eq", json!("pt")), vec!["Bob"]),
        (
            condition("do_not_contact", "contains", json!("email")),
            vec!["Bob"],
        ),
        (
            condition("do_not_contact", "neq", json!("email")),
            vec!["Ada", "Cy"],
        ),
        (
            condition("consent.newsletter", "eq", json!("granted")),
            vec!["Ada"],
        ),
        (
            condition("consent.newsletter", "neq", json!("granted")),
            vec!["Bob", "Cy"],
        ),
        (
            condition("consent.newsletter", "is_empty", json!(true)),
            vec!["Bob", "Cy"],
        ),
        // Two groups, one with a tag condition.
        (
            json!({"or": [{"and": [condition("lifecycle_stage", "eq", json!("customer")),
                                   condition("tags", "contains", vip)]},
                          {"and": [condition("lifecycle_stage", "eq", json!("lead")),
                                   {"not": condition("tags", "exists", json!(true))}]}]}),
            vec!["Ada", "Cy"],
        ),
    ];
    book.finds(cases).await;
    // A list the tenant does not have is named in the error.
    assert_eq!(
        book.refused(json!({"filter": condition("lists", "eq", json!("0190a0b0-0000-7000-8000-000000000000"))}))
            .await,
        ["/filter"]
    );
}

#[tokio::test]
async fn q_ranks_names_over_notes_and_forgives_typos() {
    let book = book().await;
    let margaret = book
        .client
        .create_contact(&json!({"first_name": "Margaret", "last_name": "Hamilton",
                                "emails": [{"address": "margaret.hamilton@apollo.example"}]}))
        .await;
    let linus = book
        .client
        .create_contact(
            &json!({"first_name": "Linus", "last_name": "Pauling", "company": "Caltech"}),
        )
        .await;
    book.client
        .create_contact(&json!({"first_name": "José", "last_name": "Müller"}))
        .await;
    book.post(
        &format!("/api/v1/contacts/{linus}/notes"),
        json!({"body": "Met at the Hamilton lecture; asked about vitamin C."}),
    )
    .await;
    let _ = margaret;

    // Names weigh more than notes; a note written a moment ago is already searchable.
    assert_eq!(
        book.names(json!({"q": "hamilton"})).await,
        ["Margaret", "Linus"]
    );
    assert_eq!(book.names(json!({"q": "vitamin"})).await, ["Linus"]);
    assert_eq!(book.names(json!({"q": "caltech"})).await, ["Linus"]);
    // Words are prefixes, and every word must match.
    assert_eq!(book.names(json!({"q": "marg ham"})).await, ["Margaret"]);
    assert_eq!(
        book.names(json!({"q": "margaret vitamin"})).await,
        Vec::<String>::new()
    );
    // An email's domain finds its contacts, and so does each word of its local part.
    assert_eq!(book.names(json!({"q": "apollo"})).await, ["Margaret"]);
    book.client
        .create_contact(
            &json!({"first_name": "Ops", "emails": [{"address": "night.shift42@rota.example"}]}),
        )
        .await;
    assert_eq!(book.names(json!({"q": "shift42"})).await, ["Ops"]);
    assert_eq!(
        book.names(json!({"q": "shiftt42@rota.example"})).await,
        ["Ops"]
    );
    // Accents do not matter either way.
    assert_eq!(book.names(json!({"q": "jose muller"})).await, ["José"]);
    // Typos in a name or an email still find it.
    assert_eq!(
        book.names(json!({"q": "margaret.hamiltn@apolo.example"}))
            .await,
        ["Margaret"]
    );
    assert_eq!(book.names(json!({"q": "Hamiltonn"})).await, ["Margaret"]);
    // A long word with a typo finds the word it was meant to be, not every word that merely
    // starts the same way (the whole-word similarity of migration 0028).
    for (first, local) in [("Ada", "lovelace12345"), ("Augusta", "lovelace67890")] {
        book.client
            .create_contact(&json!({"first_name": first,
                                    "emails": [{"address": format!("{local}@engine.example")}]}))
            .await;
    }
    assert_eq!(book.names(json!({"q": "lovelace12354"})).await, ["Ada"]);
    assert_eq!(book.names(json!({"q": "lovelcae67890"})).await, ["Augusta"]);
    // With a filter, and sorted by another field.
    assert_eq!(
        book.names(json!({"q": "hamilton", "sort": "first_name"}))
            .await,
        ["Linus", "Margaret"]
    );
    assert_eq!(
        book.names(json!({"q": "hamilton", "filter": condition("company", "exists", json!(true))}))
            .await,
        ["Linus"]
    );
    // Relevance pages with a cursor like any sort.
    assert_eq!(
        book.every_name(json!({"q": "hamilton"}), 1).await,
        ["Margaret", "Linus"]
    );
    // A deleted contact is not found unless asked for.
    book.client
        .send(
            book.client
                .request(Method::DELETE, &format!("/api/v1/contacts/{linus}")),
        )
        .await;
    assert_eq!(book.names(json!({"q": "hamilton"})).await, ["Margaret"]);
    assert_eq!(
        book.names(json!({"q": "hamilton", "include_deleted": true}))
            .await,
        ["Margaret", "Linus"]
    );
}

#[tokio::test]
async fn totals_are_exact_and_pages_have_no_cap() {
    let book = book().await;
    for n in 0..7 {
        book.client
            .create_contact(&json!({"first_name": format!("P{n}"), "lifecycle_stage": "lead"}))
            .await;
    }
    let reply = book
        .search(json!({"filter": condition("lifecycle_stage", "eq", json!("lead")), "count": true, "limit": 2}))
        .await;
    let page = reply.json();
    assert_eq!(page["total"], json!({"value": 7, "exact": true}));
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(book.search(json!({})).await.json()["total"].is_null());
    assert_eq!(
        book.every_name(json!({"sort": "-created_at"}), 2).await,
        ["P6", "P5", "P4", "P3", "P2", "P1", "P0"]
    );
    // A top-level `or` is read group by group and the rows united: a contact that both groups
    // match is on one page once, the pages keep the order, and the total counts it once.
    let overlapping = json!({"or": [
        condition("first_name", "in", json!(["P1", "P2", "P3", "P4"])),
        {"and": [condition("first_name", "in", json!(["P3", "P4", "P5"])),
                 condition("lifecycle_stage", "eq", json!("lead"))]}]});
    for sort in ["-created_at", "first_name"] {
        let mut expected = vec!["P5", "P4", "P3", "P2", "P1"];
        if sort == "first_name" {
            expected.reverse();
        }
        assert_eq!(
            book.every_name(json!({"filter": overlapping, "sort": sort}), 2)
                .await,
            expected,
            "{sort}"
        );
    }
    let page = book
        .search(json!({"filter": overlapping, "count": true, "limit": 1}))
        .await
        .json();
    assert_eq!(page["total"], json!({"value": 5, "exact": true}));
}

#[tokio::test]
async fn bad_searches_are_422_naming_the_member() {
    let book = book().await;
    book.define(json!({"key": "seats", "label": "Seats", "type": "number"}))
        .await;
    let deep = (0..6).fold(
        condition("first_name", "eq", json!("x")),
        |inner, _| json!({"not": inner}),
    );
    let many: Vec<Value> = (0..51)
        .map(|_| condition("first_name", "eq", json!("x")))
        .collect();
    let cases = [
        (
            json!({"filter": condition("nickname", "eq", json!("x"))}),
            "/filter/field",
        ),
        (
            json!({"filter": condition("custom.nope", "eq", json!("x"))}),
            "/filter/field",
        ),
        (
            json!({"filter": condition("first_name", "like", json!("x"))}),
            "/filter/op",
        ),
        (
            json!({"filter": condition("tags", "lt", json!("x"))}),
            "/filter/op",
        ),
        (
            json!({"filter": condition("lifecycle_stage", "starts_with", json!("x"))}),
            "/filter/op",
        ),
        (
            json!({"filter": condition("custom.seats", "eq", json!("many"))}),
            "/filter/value",
        ),
        (
            json!({"filter": condition("custom.seats", "between", json!([1]))}),
            "/filter/value",
        ),
        (
            json!({"filter": condition("created_at", "gt", json!("yesterday"))}),
            "/filter/value",
        ),
        (
            json!({"filter": condition("email", "eq", json!("not an email"))}),
            "/filter/value",
        ),
        (
            json!({"filter": condition("tags", "in", json!(["not-an-id"]))}),
            "/filter/value/0",
        ),
        (
            json!({"filter": condition("lifecycle_stage", "in", json!([]))}),
            "/filter/value",
        ),
        (
            json!({"filter": {"or": [condition("first_name", "eq", json!("x")), {"and": "no"}]}}),
            "/filter/or/1/and",
        ),
        (json!({"filter": {"and": [], "or": []}}), "/filter"),
        (json!({"filter": deep}), "/filter/not/not/not/not/not"),
        (json!({"filter": {"or": many}}), "/filter/or/50"),
        (
            json!({"filter": {"field": "first_name", "op": "eq", "value": "x", "extra": 1}}),
            "/filter/extra",
        ),
        (json!({"q": "  ...  "}), "/q"),
        (json!({"q": 7}), "/q"),
        (json!({"sort": "relevance"}), "/sort"),
        (json!({"sort": "shoe_size"}), "/sort"),
        (json!({"limit": 0}), "/limit"),
        (json!({"limit": 201}), "/limit"),
        (json!({"cursor": "garbage"}), "/cursor"),
        (json!({"count": "yes"}), "/count"),
        (json!({"page": 2}), "/page"),
    ];
    for (body, field) in cases {
        assert_eq!(book.refused(body.clone()).await, [field], "{body}");
    }
    let reply = book.search(json!([])).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
}

#[tokio::test]
async fn a_search_sees_its_own_tenant_only() {
    let ours = book().await;
    let theirs = book().await;
    ours.client
        .create_contact(&json!({"first_name": "Ours", "emails": [{"address": "same@example.com"}]}))
        .await;
    theirs
        .client
        .create_contact(
            &json!({"first_name": "Theirs", "emails": [{"address": "same@example.com"}]}),
        )
        .await;
    assert_eq!(ours.names(json!({"q": "same"})).await, ["Ours"]);
    assert_eq!(
        theirs
            .names(json!({"filter": condition("email", "eq", json!("same@example.com"))}))
            .await,
        ["Theirs"]
    );
    // Another tenant's custom field is not one of ours.
    theirs
        .define(json!({"key": "secret", "label": "Secret", "type": "text"}))
        .await;
    assert_eq!(
        ours.refused(json!({"filter": condition("custom.secret", "exists", json!(true))}))
            .await,
        ["/filter/field"]
    );
    let _ = (&ours.tenant, &theirs.tenant);
}

/// The plan PostgreSQL chooses for the statement a search runs, read as the application role
/// within the tenant (row-level security's predicate included), in text.
async fn plan_of(tenant: &TestTenant, body: Value) -> String {
    use crm_domain::contact::search::{Search, SearchContext};
    use tokio_postgres::types::ToSql;
    let client = TestClient::new(Some(tenant.token("contacts:read")));
    let fields: Vec<crm_domain::custom_field::CustomField> = serde_json::from_value(
        client
            .get("/api/v1/custom-fields?include_archived=true")
            .await
            .json()["data"]
            .clone(),
    )
    .unwrap();
    let region = crm_domain::Region::parse("US").unwrap();
    let context = SearchContext {
        fields: &fields,
        region,
        decode_cursor: &|_| None,
    };
    let search = Search::parse(&body, &context).expect("a valid search");
    let statement = crm_contacts::search::page_statement(
        tenant.id,
        &search,
        &crm_contacts::search::ListMembership::new(),
    );
    let params: Vec<&(dyn ToSql + Sync)> = statement
        .params
        .iter()
        .map(|p| p as &(dyn ToSql + Sync))
        .collect();
    let session = crm_http_tests::app_session(tenant.id).await;
    let plan: Vec<String> = session
        .query(&format!("explain {}", statement.sql), &params)
        .await
        .unwrap_or_else(|e| panic!("{body}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    plan.join("\n")
}

#[tokio::test]
async fn every_search_shape_reads_an_index_on_a_large_tenant() {
    if crm_http_tests::in_process_only("reads query plans, which no host changes") {
        return;
    }
    const CONTACTS: i32 = 40_000;
    let book = book().await;
    book.define(json!({"key": "account", "label": "Account", "type": "text"}))
        .await;
    book.define(json!({"key": "score", "label": "Score", "type": "number", "indexed": true}))
        .await;
    let tag = book.post("/api/v1/tags", json!({"name": "vip"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A tenant of realistic size, written in bulk as the owner: the triggers keep its search
    // documents as they would for contacts written one by one.
    let owner = crm_http_tests::owner_db().await;
    owner
        .execute(
            "insert into contacts (tenant_id, id, first_name, last_name, display_name, company,
                                   lifecycle_stage, custom)
             select $1, gen_random_uuid(), (array['Ada','Grace','Alan','Linus','Barbara'])[1 + i % 5],
                    chr(97 + i % 26) || chr(97 + (i / 26) % 26) || 'son',
                    'Contact ' || i, 'Company ' || (i % 500),
                    (array['lead','customer','subscriber'])[1 + i % 3],
                    jsonb_build_object('account', 'A-' || i, 'score', i % 1000)
             from generate_series(1, $2) i",
            &[&book.tenant.id.as_uuid(), &CONTACTS],
        )
        .await
        .unwrap();
    owner
        .execute(
            "insert into contact_emails (tenant_id, contact_id, position, address, address_key, is_primary)
             select tenant_id, id, 0, lower(display_name) || '@example.com',
                    replace(lower(display_name), ' ', '') || '@example.com', true
             from contacts where tenant_id = $1",
            &[&book.tenant.id.as_uuid()],
        )
        .await
        .unwrap();
    owner
        .execute(
            "update contact_emails set address = replace(address, ' ', '.') where tenant_id = $1",
            &[&book.tenant.id.as_uuid()],
        )
        .await
        .unwrap();
    owner
        .execute(
            "insert into contact_tags (tenant_id, contact_id, tag_id)
             select tenant_id, id, $2::text::uuid from contacts
             where tenant_id = $1 and display_name like '%7'",
            &[&book.tenant.id.as_uuid(), &tag],
        )
        .await
        .unwrap();
    owner
        .execute(
            "insert into contact_notes (tenant_id, id, contact_id, body, author_type, author_id)
             select tenant_id, gen_random_uuid(), id, 'Asked about vitamin C in call ' || display_name, 'user', 'seed'
             from contacts where tenant_id = $1 and display_name like '%99'",
            &[&book.tenant.id.as_uuid()],
        )
        .await
        .unwrap();
    owner
        .batch_execute("analyze contacts, contact_emails, contact_tags, contact_search")
        .await
        .unwrap();
    let owner_url = &crm_http_tests::harness().owner_url;
    crm::search_indexes::sync(owner_url).await.unwrap();

    let shapes = [
        (
            "name prefix",
            json!({"filter": condition("last_name", "starts_with", json!("zq"))}),
            "contacts_live_last_name_prefix",
        ),
        (
            "fuzzy email",
            json!({"q": "contcat.12345@example.com"}),
            "contact_search_words",
        ),
        (
            "custom equality",
            json!({"filter": condition("custom.account", "eq", json!("A-31337"))}),
            "contacts_custom_values",
        ),
        ("full text", json!({"q": "vitamin"}), "contact_search_words"),
        (
            "stage in creation order",
            json!({"filter": condition("lifecycle_stage", "eq", json!("customer")), "sort": "-created_at"}),
            "contacts_live_stage_created",
        ),
        (
            "custom sort",
            json!({"sort": "-custom.score"}),
            "contacts_cf_num_score",
        ),
        (
            "custom range",
            json!({"filter": condition("custom.score", "between", json!([10, 11]))}),
            "contacts_cf_num_score",
        ),
        (
            "two groups with a tag",
            json!({"filter": {"or": [
                {"and": [condition("tags", "contains", json!(tag)), condition("lifecycle_stage", "eq", json!("customer"))]},
                {"and": [condition("custom.account", "eq", json!("A-77")), condition("company", "eq", json!("company 77"))]}]}}),
            // Each group is read on its own (a union): the second by the company's index, which
            // an `or` read as one walk over the contacts could not use.
            "contacts_live_company_prefix",
        ),
    ];
    for (shape, body, index) in shapes {
        let plan = plan_of(&book.tenant, body).await;
        assert!(
            plan.contains(index),
            "{shape} does not read {index}:\n{plan}"
        );
        assert!(
            !plan.contains("Seq Scan on contact_search"),
            "{shape} scans every search document:\n{plan}"
        );
        // A text search, or a group's tag, may hash-join the few hundred rows it found with the
        // contacts of a small tenant; every other shape finds its contacts through an index.
        if !["full text", "fuzzy", "two groups"]
            .iter()
            .any(|hashed| shape.starts_with(hashed))
        {
            assert!(
                !plan.contains("Seq Scan on contacts"),
                "{shape} scans every contact:\n{plan}"
            );
        }
    }

    // And the answers: each shape finds what it should, through HTTP.
    assert_eq!(
        book.names(json!({"filter": condition("custom.account", "eq", json!("A-31337"))}))
            .await
            .len(),
        1
    );
    let fuzzy = book
        .search(json!({"q": "contcat.12345@example.com", "limit": 1}))
        .await
        .json();
    assert_eq!(fuzzy["data"][0]["display_name"], "Contact 12345");
    let noted = book
        .search(json!({"q": "vitamin", "count": true}))
        .await
        .json();
    assert_eq!(
        noted["total"],
        json!({"value": CONTACTS / 100, "exact": true})
    );
    // Past the exact threshold the total is the planner's estimate.
    let everyone = book.search(json!({"count": true, "limit": 1})).await.json();
    assert_eq!(everyone["total"]["exact"], false);
    let estimate = everyone["total"]["value"].as_i64().unwrap();
    assert!(
        (10_000..=2 * i64::from(CONTACTS)).contains(&estimate),
        "{estimate}"
    );
    let top = book
        .search(json!({"sort": "-custom.score", "limit": 3}))
        .await
        .json();
    assert_eq!(top["data"][0]["custom"]["score"], 999);

    // A field marked indexed gets its index at the next run, and loses it when it is not any more.
    let points = book
        .post(
            "/api/v1/custom-fields",
            json!({"key": "loyalty_points", "label": "Points", "type": "decimal", "indexed": true}),
        )
        .await;
    let has_index = async || {
        owner
            .query_opt(
                "select 1 from pg_indexes where indexname = 'contacts_cf_num_loyalty_points'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
    };
    // Statistics of the field's expression, gathered: a partial index's own are not used for
    // estimates, and without them a range is guessed at a third of the contacts.
    let has_statistics = async || {
        owner
            .query_opt(
                "select 1 from pg_statistic_ext where stxname = 'contacts_cf_num_loyalty_points'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
    };
    let gathered = async || {
        owner
            .query_opt(
                "select 1 from pg_stats_ext_exprs
                 where statistics_name = 'contacts_cf_num_loyalty_points'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
    };
    assert!(!has_index().await);
    let synced = crm::search_indexes::sync(owner_url).await.unwrap();
    assert!(synced
        .created
        .contains(&"contacts_cf_num_loyalty_points".to_owned()));
    assert!(has_index().await);
    assert!(has_statistics().await && gathered().await);
    let reply = book
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/custom-fields/{}", points["id"].as_str().unwrap()),
            &json!({"indexed": false}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let synced = crm::search_indexes::sync(owner_url).await.unwrap();
    assert!(synced
        .dropped
        .contains(&"contacts_cf_num_loyalty_points".to_owned()));
    assert!(!has_index().await);
    assert!(!has_statistics().await);
}

/// The search document of a contact as stored: its row version (`xmin`) and its text.
async fn document_of(contact: &str) -> (String, String) {
    let row = crm_http_tests::owner_db()
        .await
        .query_one(
            "select xmin::text, document::text from contact_search where contact_id = $1::text::uuid",
            &[&contact],
        )
        .await
        .expect("the contact's search document");
    (row.get(0), row.get(1))
}

/// A contact's search document is written again when what it reads changes (names, company, job
/// title, notes' text) and only then: a change of the lifecycle stage, a custom field or a note's
/// `pinned` leaves it as it was, and the search still finds what it must.
#[tokio::test]
async fn a_search_document_is_rewritten_only_when_a_searched_field_changes() {
    let book = book().await;
    let id = book
        .client
        .create_contact(&json!({"first_name": "Octavia", "company": "Initech"}))
        .await;
    let note = book
        .client
        .send_json(
            Method::POST,
            &format!("/api/v1/contacts/{id}/notes"),
            &json!({"body": "met at the harbour"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    let note = note.json()["id"].as_str().unwrap().to_owned();
    let before = document_of(&id).await;

    let staged = book
        .client
        .patch_contact(&id, &json!({"lifecycle_stage": "customer"}), None)
        .await;
    assert_eq!(staged.status, 200, "{}", staged.text);
    let pinned = book
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}/notes/{note}"),
            &json!({"pinned": true}),
        )
        .await;
    assert_eq!(pinned.status, 200, "{}", pinned.text);
    assert_eq!(document_of(&id).await, before, "nothing searched changed");

    let titled = book
        .client
        .patch_contact(&id, &json!({"job_title": "Harbourmaster"}), None)
        .await;
    assert_eq!(titled.status, 200, "{}", titled.text);
    let after = document_of(&id).await;
    assert_ne!(after.0, before.0);
    assert!(after.1.contains("harbourmaster"), "{}", after.1);
    assert_eq!(
        book.names(json!({"q": "harbourmaster"})).await,
        vec!["Octavia".to_owned()]
    );
    let noted = book
        .client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}/notes/{note}"),
            &json!({"body": "met at the lighthouse"}),
        )
        .await;
    assert_eq!(noted.status, 200, "{}", noted.text);
    assert_eq!(
        book.names(json!({"q": "lighthouse"})).await,
        vec!["Octavia".to_owned()]
    );
}

/// Notes a merge moves are searched under the survivor (and, after an undo, under their contact
/// again), though the survivor's own searched fields do not change.
#[tokio::test]
async fn notes_a_merge_moves_are_searched_under_their_new_contact() {
    let book = book().await;
    let survivor = book
        .client
        .create_contact(&json!({"first_name": "Ada", "company": "Initech"}))
        .await;
    let merged = book
        .client
        .create_contact(&json!({"first_name": "Augusta", "company": "Initech"}))
        .await;
    let note = book
        .client
        .send_json(
            Method::POST,
            &format!("/api/v1/contacts/{merged}/notes"),
            &json!({"body": "asked about the zeppelin"}),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.text);
    let done = book
        .client
        .send_json(
            Method::POST,
            &format!("/api/v1/contacts/{survivor}/merge"),
            &json!({"contact_ids": [merged], "rules": {"first_name": "target"}}),
        )
        .await;
    assert_eq!(done.status, 201, "{}", done.text);
    assert_eq!(
        book.names(json!({"q": "zeppelin"})).await,
        vec!["Ada".to_owned()]
    );
    let merge_id = done.json()["id"].as_str().unwrap().to_owned();
    let undone = book
        .client
        .send_json(
            Method::POST,
            &format!("/api/v1/merges/{merge_id}/undo"),
            &json!({}),
        )
        .await;
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert_eq!(
        book.names(json!({"q": "zeppelin"})).await,
        vec!["Augusta".to_owned()]
    );
}
