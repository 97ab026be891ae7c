//! Tenant isolation: through the API another tenant's rows do not exist; in the database, row-level
//! security hides them from the application role even when a query forgets its tenant filter.

use crm_http_tests::{app_session, harness, owner_db, TestTenant};
use serde_json::json;

#[tokio::test]
async fn another_tenants_contact_answers_404() {
    let owner = TestTenant::create("US").await;
    let stranger = TestTenant::create("US").await;
    let created = owner
        .client()
        .post_contact(&json!({"first_name": "Private"}))
        .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let reply = stranger.client().get_contact(&id).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["type"], "/problems/not-found");
    let listed = stranger.client().get("/api/v1/contacts").await.json();
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != id.as_str()));
    assert_eq!(owner.client().get_contact(&id).await.status, 200);
}

#[tokio::test]
async fn rls_hides_other_tenants_from_a_query_without_a_tenant_filter() {
    let mine = TestTenant::create("US").await;
    let theirs = TestTenant::create("US").await;
    assert_eq!(
        mine.client()
            .post_contact(&json!({"first_name": "Mine"}))
            .await
            .status,
        201
    );
    assert_eq!(
        theirs
            .client()
            .post_contact(&json!({"first_name": "Theirs"}))
            .await
            .status,
        201
    );

    let app = crm::connect(&harness().app_url)
        .await
        .expect("connecting as crm_app");
    // No tenant set: the application role sees no contact at all.
    let visible: i64 = app
        .query_one("select count(*) from contacts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
    // Tenant set: a query that "forgets" its filter still sees only that tenant's rows.
    let app = app_session(mine.id).await;
    let rows = app
        .query("select first_name, tenant_id from contacts", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r.get::<_, uuid::Uuid>(1) == mine.id.as_uuid()));
    // Writing a row for another tenant is refused too.
    let write = app
        .execute(
            "insert into contacts (tenant_id, id, display_name) values ($1, gen_random_uuid(), 'x')",
            &[&theirs.id.as_uuid()],
        )
        .await;
    assert!(write.is_err(), "RLS must refuse a row of another tenant");
    app.batch_execute("rollback").await.unwrap();
}

#[tokio::test]
async fn the_application_role_owns_no_table() {
    let db = owner_db().await;
    let owned: i64 = db
        .query_one(
            "select count(*) from pg_tables where schemaname = 'public' and tableowner = 'crm_app'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0);
    let without_rls: Vec<String> = db
        .query(
            "select relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity
               and relname <> 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        without_rls.is_empty(),
        "tables without RLS: {without_rls:?}"
    );
}

#[tokio::test]
async fn the_application_role_cannot_rewrite_the_audit_log() {
    let tenant = TestTenant::create("US").await;
    assert_eq!(
        tenant
            .client()
            .post_contact(&json!({"first_name": "Audited"}))
            .await
            .status,
        201
    );
    let app = app_session(tenant.id).await;
    let update = app
        .execute("update audit_log set actor = 'someone-else'", &[])
        .await;
    assert!(
        update.is_err(),
        "the audit log must be append-only for crm_app"
    );
    app.batch_execute("rollback").await.unwrap();
}
