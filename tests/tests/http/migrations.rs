//! The migration runner, on databases of its own.

use crm_http_tests::{fresh_database, public_tables};

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
