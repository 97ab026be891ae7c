//! The migration runner, on databases of its own.

use crm_http_tests::{fresh_database, public_tables, TestTenant};

fn url(database: &str) -> String {
    let cluster = std::env::var("CRM_TEST_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".into());
    format!("{cluster} dbname={database}")
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let url = url(&fresh_database().await);
    let first = crm::migrate::run(&url).await.unwrap();
    assert_eq!(first.applied.len(), crm::migrate::MIGRATIONS.len());
    let second = crm::migrate::run(&url).await.unwrap();
    assert!(second.applied.is_empty());
    assert_eq!(second.already, crm::migrate::MIGRATIONS.len());
}

#[tokio::test]
async fn an_edited_landed_migration_is_refused() {
    let url = url(&fresh_database().await);
    crm::migrate::run_migrations(&url, &[("0001_a.sql", "create table a (id int)")])
        .await
        .unwrap();
    let error = crm::migrate::run_migrations(&url, &[("0001_a.sql", "create table a (id bigint)")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("0001_a.sql") && error.contains("changed"),
        "{error}"
    );
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_whole_and_earlier_ones_stay() {
    let url = url(&fresh_database().await);
    let error = crm::migrate::run_migrations(
        &url,
        &[
            ("0001_ok.sql", "create table ok (id int)"),
            (
                "0002_bad.sql",
                "create table half (id int); select * from no_such_table",
            ),
        ],
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("0002_bad.sql"));
    let db = crm::connect(&url).await.unwrap();
    assert_eq!(public_tables(&db).await, vec!["ok", "schema_migrations"]);
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_once() {
    let url = url(&fresh_database().await);
    let runs = futures::future::join_all((0..4).map(|_| crm::migrate::run(&url))).await;
    let applied: usize = runs.into_iter().map(|r| r.unwrap().applied.len()).sum();
    assert_eq!(applied, crm::migrate::MIGRATIONS.len());
}

#[tokio::test]
async fn stored_emails_are_normalised_to_nfc() {
    let url = url(&fresh_database().await);
    let before_nfc = crm::migrate::MIGRATIONS
        .iter()
        .position(|(name, _)| *name == "0014_emails_in_nfc.sql")
        .expect("the migration that normalises emails");
    crm::migrate::run_migrations(&url, &crm::migrate::MIGRATIONS[..before_nfc])
        .await
        .unwrap();
    let tenant = crm::tenants::create(&url, "Unicode", "US").await.unwrap();
    let db = crm::connect(&url).await.unwrap();
    let decomposed = "jose\u{301}@example.com";
    let first = uuid::Uuid::now_v7();
    db.execute(
        "insert into contacts (tenant_id, id, display_name) values ($1, $2, 'José')",
        &[&tenant.as_uuid(), &first],
    )
    .await
    .unwrap();
    db.execute(
        "insert into contact_emails (tenant_id, contact_id, position, address, address_key)
         values ($1, $2, 0, $3, $3)",
        &[&tenant.as_uuid(), &first, &decomposed],
    )
    .await
    .unwrap();
    crm::migrate::run(&url).await.unwrap();
    let (address, key): (String, String) = db
        .query_one(
            "select address, address_key from contact_emails where contact_id = $1",
            &[&first],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    assert_eq!(address, "jos\u{e9}@example.com");
    assert_eq!(key, "jos\u{e9}@example.com");
}

/// `contact_by_id` (migration 0015) restates the contacts repository's `FIND` as one call: the
/// same columns, of the same types, in the same order, so that one decoder reads both.
#[tokio::test]
async fn the_one_call_read_answers_the_columns_of_find() {
    let db = crm_http_tests::owner_db().await;
    let columns = |statement: tokio_postgres::Statement| -> Vec<(String, String)> {
        statement
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_().name().to_owned()))
            .collect()
    };
    let find = columns(db.prepare(crm_contacts::FIND_CONTACT_SQL).await.unwrap());
    let alone = columns(
        db.prepare(crm_contacts::FIND_CONTACT_IN_ONE_CALL_SQL)
            .await
            .unwrap(),
    );
    assert_eq!(alone, find);
}

/// Inside a transaction that wrote something (what a trapped request leaves on a pooled Spin
/// connection), the one-call read refuses to run, so that it never reads that request's
/// uncommitted writes; the caller rolls back and calls again (`Db::call`).
#[tokio::test]
async fn the_one_call_read_refuses_to_run_inside_a_leftover_transaction() {
    let tenant = TestTenant::create("US").await;
    let mut db = crm_http_tests::app_session(tenant.id).await;
    let leftover = db.transaction().await.unwrap();
    leftover
        .execute(
            "insert into contacts (tenant_id, id, display_name) values ($1, $2, 'Uncommitted')",
            &[&tenant.id.as_uuid(), &uuid::Uuid::now_v7()],
        )
        .await
        .unwrap();
    let refused = leftover
        .query(
            crm_contacts::FIND_CONTACT_IN_ONE_CALL_SQL,
            &[&tenant.id.as_uuid(), &uuid::Uuid::now_v7()],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some("CR001"), "{refused}");
}

/// Every table whose rows belong to a contact and have ids of their own (so audit records and
/// events name them) is registered for erasure (migration 0019); the contact's own parts (emails,
/// phones, tag attachments) go with it by cascade and are audited as the contact. Two tables name a
/// contact without being owned rows: `contacts` itself (a merged contact names its survivor) and
/// `contact_merges` (a merge record goes with its survivor by cascade and with a merged contact by
/// trigger, migration 0031; its history is the contacts' own).
#[tokio::test]
async fn erasure_knows_every_kind_of_row_a_contact_owns() {
    let db = crm_http_tests::owner_db().await;
    let owners: Vec<String> = db
        .query(
            "select distinct c.conrelid::regclass::text from pg_constraint c
             where c.contype = 'f' and c.confrelid = 'contacts'::regclass
               and exists (select 1 from pg_attribute a
                           where a.attrelid = c.conrelid and a.attname = 'id' and not a.attisdropped)
             order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .filter(|table: &String| table != "contacts" && table != "contact_merges")
        .collect();
    let registered: Vec<String> = db
        .query("select table_name from contact_owned_rows order by 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(owners, registered);
}

/// `rfc3339` is inlined into the statements that call it (migration 0036): the plan computes
/// `to_char` itself rather than calling the function for each timestamp, and the text is the
/// API's (UTC, microseconds, `Z`).
#[tokio::test]
async fn rfc3339_is_inlined_into_the_statement() {
    let db = crm_http_tests::owner_db().await;
    let plan: String = db
        .query(
            "explain (verbose, costs off) select rfc3339(created_at) from contacts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("to_char("), "{plan}");
    assert!(!plan.contains("rfc3339("), "{plan}");
    let text: String = db
        .query_one("select rfc3339('2026-12-01 18:27:00.5+02')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, "2026-12-01T16:27:00.500000Z");
}
