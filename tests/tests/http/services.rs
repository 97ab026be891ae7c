//! The services without HTTP. A background job reaches the same writes as a request: it calls the
//! resource's service functions in a unit of work of its own, with an actor of its own, and the
//! change shows up through the API (read, history, audit) and in the outbox naming that actor.
//! The unit of work runs on the suite's database (the deployment's, against `spin up`).

use crm_contacts::service;
use crm_domain::contact::ContactDraft;
use crm_domain::Actor;
use crm_http_tests::{app_for, harness, owner_db, test_config, TestClient, TestTenant};
use crm_platform::{ApiError, App};
use serde_json::{json, Value};

/// An app of the test's own on the suite's database, as a worker process would build it.
fn worker() -> std::sync::Arc<App> {
    app_for(test_config(harness().app_url.clone()))
}

fn draft(body: Value) -> ContactDraft {
    serde_json::from_value(body).expect("a contact draft")
}

#[tokio::test]
async fn a_job_and_a_rule_change_a_contact_and_are_recorded_as_themselves() {
    let tenant = TestTenant::create("US").await;
    let worker = worker();
    let job = Actor::ImportJob("import-7".into());
    let created = worker
        .unit_of_work(tenant.id, &job, "run-7", async |uow| {
            service::create(
                uow,
                draft(json!({"first_name": "Imported", "phones": [{"number": "(415) 555-0100"}]})),
            )
            .await
        })
        .await
        .expect("the job creates the contact");
    let rule = Actor::WorkflowRule("rule-3".into());
    let updated = worker
        .unit_of_work(tenant.id, &rule, "run-8", async |uow| {
            service::update(uow, created.id, &json!({"last_name": "Ruled"}), None).await
        })
        .await
        .expect("the rule updates it");
    assert_eq!(updated.version, 2);
    // The tenant's region read the number, as it does for a request.
    assert_eq!(created.phones[0].e164, "+14155550100");

    // Through the API: the contact, its history and its audit records name each actor.
    let id = created.id.to_string();
    let read = tenant.client().get_contact(&id).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["last_name"], "Ruled");
    let history = tenant
        .client()
        .get(&format!("/api/v1/contacts/{id}/history"))
        .await
        .json();
    let changes: Vec<(String, String, String)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["actor_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Newest record first: the rule's update (last_name, and the display name it derives), then
    // the job's create.
    let (by_rule, by_job): (Vec<_>, Vec<_>) = changes
        .iter()
        .partition(|(_, actor, kind)| actor == "rule-3" && kind == "workflow_rule");
    assert!(by_rule.iter().any(|(field, _, _)| field == "last_name"));
    assert!(!by_job.is_empty());
    assert!(by_job
        .iter()
        .all(|(_, actor, kind)| actor == "import-7" && kind == "import_job"));
    assert_eq!(
        changes[..by_rule.len()],
        by_rule.into_iter().cloned().collect::<Vec<_>>()[..]
    );
    let auditor = TestClient::new(Some(tenant.token("audit:read")));
    let audit = auditor
        .get(&format!("/api/v1/audit/events?entity_id={id}"))
        .await
        .json();
    let records: Vec<(&str, &str, &str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["actor_type"].as_str().unwrap(),
                r["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            ("update", "rule-3", "workflow_rule", "run-8"),
            ("create", "import-7", "import_job", "run-7"),
        ]
    );

    // The outbox carries each event with its actor, for the webhooks that deliver it.
    let events: Vec<(String, Value, String)> = owner_db()
        .await
        .query(
            "select event_type, actor, request_id from outbox_events
             where tenant_id = $1 and entity_id = $2 order by seq",
            &[&tenant.id.as_uuid(), &created.id.as_uuid()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        events,
        [
            (
                "contact.created".to_owned(),
                json!({"type": "import_job", "id": "import-7"}),
                "run-7".to_owned()
            ),
            (
                "contact.updated".to_owned(),
                json!({"type": "workflow_rule", "id": "rule-3"}),
                "run-8".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_unit_of_work_that_fails_leaves_no_change_and_runs_no_effect() {
    let tenant = TestTenant::create("US").await;
    let worker = worker();
    let system = Actor::System("test".into());
    let created = worker
        .unit_of_work(tenant.id, &system, "run-1", async |uow| {
            service::create(uow, draft(json!({"first_name": "Kept"}))).await
        })
        .await
        .unwrap();
    let generation_key = format!("c:{}:contact:{}:gen", tenant.id, created.id);
    // The create's invalidation ran after its commit.
    assert_eq!(
        worker.kv.get(&generation_key).await.unwrap(),
        Some(b"1".to_vec())
    );

    // An update recorded, then a failure: everything rolls back, and no invalidation runs.
    let failed = worker
        .unit_of_work(tenant.id, &system, "run-2", async |uow| {
            service::update(uow, created.id, &json!({"first_name": "Lost"}), None).await?;
            Err::<(), _>(ApiError::bad_request("the job gave up"))
        })
        .await;
    assert!(matches!(failed, Err(ApiError::BadRequest { .. })));
    assert_eq!(
        worker.kv.get(&generation_key).await.unwrap(),
        Some(b"1".to_vec())
    );
    let read = tenant.client().get_contact(&created.id.to_string()).await;
    assert_eq!(read.json()["first_name"], "Kept");
    assert_eq!(read.json()["version"], 1);
    let recorded: i64 = owner_db()
        .await
        .query_one(
            "select (select count(*) from audit_log where tenant_id = $1)
                  + (select count(*) from outbox_events where tenant_id = $1)",
            &[&tenant.id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 2, "the create's audit record and event only");
}
