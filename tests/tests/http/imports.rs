//! Import jobs, `/api/v1/imports/**`: a file uploaded in parts (cut anywhere, even inside a record),
//! started, and applied by the worker through the contacts' batch; rows that cannot be imported
//! (the wrong number of cells, bytes that are not UTF-8, values a contact refuses) reported one by
//! one without failing the job; each dedupe rule; a dry run; cancellation; an export imported into
//! another tenant reading back identical; the CLI. (A job that runs on its own wake-up, and a step
//! killed in the middle, are in `tests/exclusive/jobs.rs`.)

use crm_http_tests::jobs::{create_import as create, ended, start, upload};
use crm_http_tests::{count_rows, harness, TestClient, TestTenant};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn client_of(tenant: &TestTenant) -> TestClient {
    TestClient::new(Some(tenant.token("contacts:read contacts:write")))
}

/// Uploads `file` in parts cut at `cuts`, starts the job and waits for it to end.
async fn import(client: &TestClient, options: Value, file: &[u8], cuts: &[usize]) -> Value {
    let id = create(client, options).await;
    let mut from = 0;
    for (number, cut) in cuts.iter().chain([&file.len()]).enumerate() {
        let reply = upload(client, &id, number + 1, &file[from..*cut]).await;
        assert_eq!(reply.status, 200, "part {}: {}", number + 1, reply.text);
        from = *cut;
    }
    let started = start(client, &id).await;
    assert_eq!(started.status, 202, "{}", started.text);
    ended(client, &format!("/api/v1/imports/{id}"), true).await
}

async fn error_rows(client: &TestClient, job: &Value) -> Vec<BTreeMap<String, String>> {
    let reply = client.get(job["errors_url"].as_str().unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let mut reader = csv::Reader::from_reader(reply.text.as_bytes());
    reader
        .deserialize::<BTreeMap<String, String>>()
        .map(|row| row.expect("a CSV row"))
        .collect()
}

async fn contacts(client: &TestClient, query: &str) -> Vec<Value> {
    let reply = client
        .get(&format!("/api/v1/contacts/export?format=ndjson&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn define_field(client: &TestClient, body: Value) {
    let reply = client
        .send_json(Method::POST, "/api/v1/custom-fields", &body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[tokio::test]
async fn a_csv_file_in_parts_creates_and_updates_and_reports_each_bad_row() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    define_field(
        &client,
        json!({"key": "seats", "label": "Seats", "type": "number"}),
    )
    .await;
    let ada = client
        .create_contact(&json!({"first_name": "Ada", "emails": [{"address": "ada@example.com"}]}))
        .await;
    let mut file = "\u{feff}First Name;Email;Company;custom.seats;Notes\r\n\
        Grace;grace@example.com;Navy;3;first\r\n\
        Ada;ADA@example.com;Analytical;12;updates Ada\r\n\
        Short;short@example.com\r\n\
        Bad;not-an-email;X;1;\r\n\
        Many;many@example.com;Y;many;\r\n"
        .as_bytes()
        .to_vec();
    file.extend_from_slice(
        b"Bytes;bytes@example.com;\xff\xfe;1;\r\nQuoted;q@example.com;\"Co;op\";;\"two\r\nlines\"\r\n",
    );
    let job = import(&client, json!({"format": "csv"}), &file, &[37, 100]).await;

    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["columns"],
        json!(["First Name", "Email", "Company", "custom.seats", "Notes"])
    );
    assert_eq!(job["options"]["delimiter"], ";");
    assert_eq!(
        job["rows"],
        json!({"read": 7, "processed": 7, "created": 2, "updated": 1, "skipped": 0, "failed": 4})
    );
    assert_eq!(job["progress"], 1.0);
    let errors = error_rows(&client, &job).await;
    let found: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|e| (e["row"].as_str(), e["column"].as_str(), e["code"].as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("4", "", "wrong_column_count"),
            ("5", "Email", "invalid_email"),
            ("6", "custom.seats", "invalid"),
            ("7", "", "bad_encoding"),
        ],
        "{errors:?}"
    );
    let updated = client.get_contact(&ada).await.json();
    assert_eq!(updated["company"], "Analytical");
    assert_eq!(updated["custom"]["seats"], 12);
    let quoted = contacts(&client, "email=q@example.com").await;
    assert_eq!(quoted[0]["first_name"], "Quoted");
    assert_eq!(quoted[0]["company"], "Co;op");
    // Rows that failed wrote nothing.
    assert!(contacts(&client, "email=short@example.com")
        .await
        .is_empty());
    assert_eq!(count_rows("contacts", tenant.id).await, 3);
}

/// What a contact looks like apart from what the server assigns.
fn portable(contact: &Value) -> Value {
    let mut contact = contact.clone();
    for member in [
        "id",
        "created_at",
        "updated_at",
        "version",
        "last_contacted_at",
    ] {
        contact.as_object_mut().unwrap().remove(member);
    }
    contact
}

async fn by_first_name(client: &TestClient) -> BTreeMap<String, Value> {
    contacts(client, "")
        .await
        .iter()
        .map(|c| (c["first_name"].as_str().unwrap().to_owned(), portable(c)))
        .collect()
}

#[tokio::test]
async fn an_export_imports_into_another_tenant_as_identical_contacts() {
    let fields = [
        json!({"key": "plan", "label": "Plan", "type": "text"}),
        json!({"key": "seats", "label": "Seats", "type": "number"}),
        json!({"key": "vip", "label": "VIP", "type": "boolean"}),
        json!({"key": "langs", "label": "Languages", "type": "multi_select",
               "options": [{"id": "en", "label": "English"}, {"id": "fr", "label": "French"}]}),
    ];
    let source = TestTenant::create("GB").await;
    let from = client_of(&source);
    for field in &fields {
        define_field(&from, field.clone()).await;
    }
    from.create_contact(&json!({
        "first_name": "Ada", "last_name": "Lovelace",
        "emails": [{"address": "ada@example.com", "label": "work; main"},
                   {"address": "ada@home.example", "primary": false}],
        "phones": [{"number": "+44 20 7946 0000", "label": "office"}],
        "company": "=Analytical Engines", "job_title": "Programmer",
        "address": {"street": "12 St James's Square", "city": "London", "country": "GB"},
        "lifecycle_stage": "customer", "owner_id": "user-7", "source": "referral",
        "custom": {"plan": "pro", "seats": 12, "vip": true, "langs": ["en", "fr"]},
    }))
    .await;
    let grace = from
        .create_contact(&json!({"first_name": "Grace", "display_name": "Admiral Hopper"}))
        .await;
    for name in ["vip", "Navy; retired"] {
        let tag = from
            .send_json(Method::POST, "/api/v1/tags", &json!({"name": name}))
            .await;
        assert_eq!(tag.status, 201, "{}", tag.text);
        let attached = from
            .send_json(
                Method::POST,
                &format!("/api/v1/contacts/{grace}/tags"),
                &json!({"tag_id": tag.json()["id"]}),
            )
            .await;
        assert_eq!(attached.status, 200, "{}", attached.text);
    }
    from.create_contact(&json!({"first_name": "Linus", "phones": [{"number": "020 7946 0001"}]}))
        .await;
    let expected = by_first_name(&from).await;
    assert_eq!(expected.len(), 3);

    for format in ["csv", "ndjson"] {
        let reply = from
            .get(&format!("/api/v1/contacts/export?format={format}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let target = TestTenant::create("GB").await;
        let to = client_of(&target);
        for field in &fields {
            define_field(&to, field.clone()).await;
        }
        let list = to
            .send_json(Method::POST, "/api/v1/lists", &json!({"name": "Imported"}))
            .await;
        assert_eq!(list.status, 201, "{}", list.text);
        let list = list.json()["id"].as_str().unwrap().to_owned();
        let job = import(
            &to,
            json!({"format": format, "dedupe": "create_only", "list_id": list}),
            reply.text.as_bytes(),
            &[reply.text.len() / 2],
        )
        .await;
        assert_eq!(job["rows"]["created"], 3, "{format}: {job}");
        assert_eq!(job["rows"]["failed"], 0, "{format}: {job}");
        let imported = by_first_name(&to).await;
        // Identical, a tag and a label holding the CSV cell's separator `;` included.
        assert_eq!(imported, expected, "{format}");
        assert_eq!(imported["Grace"]["tags"], json!(["Navy; retired", "vip"]));
        let members = to.get(&format!("/api/v1/lists/{list}/contacts")).await;
        assert_eq!(
            members.json()["data"].as_array().unwrap().len(),
            3,
            "{format}"
        );
    }
}

#[tokio::test]
async fn each_dedupe_rule_and_a_dry_run_do_what_they_say() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    define_field(
        &client,
        json!({"key": "crm_id", "label": "CRM id", "type": "text", "unique": true}),
    )
    .await;
    let ada = client
        .create_contact(
            &json!({"first_name": "Ada", "emails": [{"address": "ada@example.com"}],
                                "custom": {"crm_id": "A-1"}}),
        )
        .await;
    let file = b"first_name,emails\nAda Again,ada@example.com\nNew,new@example.com\n";

    let dry = import(
        &client,
        json!({"format": "csv", "dry_run": true}),
        file,
        &[],
    )
    .await;
    assert_eq!(dry["rows"]["created"], 1, "{dry}");
    assert_eq!(dry["rows"]["updated"], 1, "{dry}");
    assert_eq!(
        count_rows("contacts", tenant.id).await,
        1,
        "a dry run writes no contact"
    );
    assert_eq!(client.get_contact(&ada).await.json()["first_name"], "Ada");

    let create_only = import(
        &client,
        json!({"format": "csv", "dedupe": "create_only"}),
        file,
        &[],
    )
    .await;
    assert_eq!(create_only["rows"]["failed"], 1, "{create_only}");
    assert_eq!(create_only["rows"]["created"], 1, "{create_only}");
    let errors = error_rows(&client, &create_only).await;
    assert_eq!(errors[0]["row"], "2");
    assert_eq!(errors[0]["column"], "emails");
    assert_eq!(errors[0]["code"], "duplicate");

    let skipped = import(
        &client,
        json!({"format": "csv", "dedupe": "skip_duplicates"}),
        file,
        &[],
    )
    .await;
    assert_eq!(skipped["rows"]["skipped"], 2, "{skipped}");
    assert_eq!(skipped["rows"]["created"], 0, "{skipped}");

    // By external id: A-1 is Ada; X-9 is new, and its second row updates what the first created.
    let by_id = b"first_name,custom.crm_id\nAda Byron,A-1\nXavier,X-9\nXavier Two,X-9\n";
    let job = import(
        &client,
        json!({"format": "csv", "dedupe": "update_by_external_id", "external_id": "crm_id"}),
        by_id,
        &[],
    )
    .await;
    assert_eq!(
        (
            &job["rows"]["created"],
            &job["rows"]["updated"],
            &job["rows"]["failed"]
        ),
        (&json!(1), &json!(2), &json!(0)),
        "{job}"
    );
    assert_eq!(
        client.get_contact(&ada).await.json()["first_name"],
        "Ada Byron"
    );
    let xavier = contacts(&client, "").await;
    let xaviers: Vec<&Value> = xavier
        .iter()
        .filter(|c| c["custom"]["crm_id"] == "X-9")
        .collect();
    assert_eq!(xaviers.len(), 1);
    assert_eq!(xaviers[0]["first_name"], "Xavier Two");
}

#[tokio::test]
async fn an_upload_is_checked_and_a_job_can_be_cancelled() {
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let smart = client
        .send_json(
            Method::POST,
            "/api/v1/lists",
            &json!({"name": "Leads", "kind": "smart", "filter": {"lifecycle_stage": "lead"}}),
        )
        .await;
    assert_eq!(smart.status, 201, "{}", smart.text);
    for list in [
        smart.json()["id"].as_str().unwrap(),
        "0190a0b0-0000-7000-8000-000000000000",
    ] {
        let refused = client
            .send_json(
                Method::POST,
                "/api/v1/imports",
                &json!({"format": "csv", "list_id": list}),
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert_eq!(refused.error_fields(), ["/list_id"]);
    }
    let bad_options = client
        .send_json(
            Method::POST,
            "/api/v1/imports",
            &json!({"format": "xlsx", "dedupe": "merge", "delimiter": "ab",
                    "external_id": "nope"}),
        )
        .await;
    assert_eq!(bad_options.status, 422, "{}", bad_options.text);
    assert_eq!(
        bad_options.error_fields(),
        ["/format", "/delimiter", "/dedupe", "/external_id"]
    );

    let id = create(
        &client,
        json!({"format": "csv", "mapping": {"Mail": "emails", "Who": "nobody"}}),
    )
    .await;
    let unknown = upload(&client, &id, 1, b"Mail,Name\nx@example.com,X\n").await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.error_fields(), ["/mapping/Who"]);
    let skipped = upload(&client, &id, 2, b"").await;
    assert_eq!(skipped.status, 409, "{}", skipped.text);
    let nothing = start(&client, &id).await;
    assert_eq!(nothing.status, 409, "{}", nothing.text);

    let id = create(&client, json!({"format": "ndjson"})).await;
    let part = upload(&client, &id, 1, b"{\"first_name\": \"Never\"}\n").await;
    assert_eq!(part.status, 200, "{}", part.text);
    let cancelled = client
        .send_json(
            Method::POST,
            &format!("/api/v1/imports/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(upload(&client, &id, 2, b"{}\n").await.status, 409);
    assert_eq!(start(&client, &id).await.status, 409);
    let again = client
        .send_json(
            Method::POST,
            &format!("/api/v1/imports/{id}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(count_rows("contacts", tenant.id).await, 0);

    let other = client_of(&TestTenant::create("US").await);
    assert_eq!(
        other.get(&format!("/api/v1/imports/{id}")).await.status,
        404
    );
    let listed = client.get("/api/v1/imports?limit=1").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["data"][0]["id"], id.as_str());
    assert!(listed.json()["next_cursor"].is_string());
}

#[tokio::test]
async fn the_cli_imports_and_exports_through_the_same_services() {
    if crm_http_tests::in_process_only("runs `crm import` and `crm export` in this process") {
        return;
    }
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let app = crm_http_tests::app_for(crm_http_tests::test_config(harness().app_url.clone()));
    let path = std::env::temp_dir().join(format!("crm-cli-import-{}.csv", tenant.id));
    std::fs::write(
        &path,
        "Email,First Name,Nickname\nada@example.com,Ada,Countess\nnot-an-email,Bad,\n",
    )
    .unwrap();
    let draft: crm_domain::import::ImportDraft =
        serde_json::from_value(json!({"format": "csv", "mapping": {"Nickname": null}})).unwrap();
    let job = crm::transfer::import(&app, tenant.id, &path, draft)
        .await
        .expect("the import runs");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(job.status.as_str(), "completed");
    assert_eq!((job.rows.created, job.rows.failed), (1, 1));
    // The job is the API's like any other, its rows audited as the job's.
    let listed = client.get(&format!("/api/v1/imports/{}", job.id)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        error_rows(&client, &listed.json()).await[0]["column"],
        "Email"
    );

    let mut out = Vec::new();
    let filters = [("sort".to_owned(), "last_name".to_owned())];
    let written = crm::transfer::export(
        app,
        tenant.id,
        &filters,
        crm_domain::import::Format::Csv,
        &mut out,
    )
    .await
    .expect("the export runs");
    assert_eq!(written, 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("id,first_name,"), "{text}");
    assert!(text.contains(",ada@example.com,"), "{text}");
}

/// An import that wrote `ANALYZE_AFTER_ROWS` contacts or more refreshes the planner's statistics
/// of the tables it wrote when it completes (natively and on Spin: the worker's own step does it),
/// so that what reads them next is planned for the rows it added. Watched on `contact_phones`,
/// which no other test analyzes.
#[tokio::test]
async fn a_bulk_import_refreshes_the_planners_statistics() {
    let last_analyze = async || -> Option<String> {
        crm_http_tests::owner_db()
            .await
            .query_one(
                "select last_analyze::text from pg_stat_user_tables where relname = 'contact_phones'",
                &[],
            )
            .await
            .expect("the table's statistics")
            .get(0)
    };
    let before = last_analyze().await;
    let rows = crm_contacts::imports::service::ANALYZE_AFTER_ROWS;
    let mut file = String::from("first_name,email\n");
    for row in 0..rows {
        file.push_str(&format!("Bulk {row},bulk-{row}@example.com\n"));
    }
    let tenant = TestTenant::create("US").await;
    let client = client_of(&tenant);
    let job = import(
        &client,
        json!({"format": "csv", "dedupe": "create_only"}),
        file.as_bytes(),
        &[],
    )
    .await;
    assert_eq!(job["rows"]["created"], rows, "{job}");
    let mut after = last_analyze().await;
    for _ in 0..50 {
        if after != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = last_analyze().await;
    }
    assert!(after.is_some() && after != before, "{before:?} → {after:?}");
}
