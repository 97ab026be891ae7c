//! The unit of work: one change of one tenant, whoever makes it. It owns the tenant's transaction,
//! the actor, the correlation id, the audit records and outbox events the change writes, and the
//! effects that must follow a commit (cache invalidation, a dispatcher wake-up), which run once,
//! after a successful commit only ([`crate::App::unit_of_work`]).
//!
//! Every entry point reaches the same writes through it: an HTTP handler (`RequestContext::write`,
//! which also records the Idempotency-Key's response in the same transaction), a background job
//! or a test (`App::unit_of_work` with an actor of its own).

use crate::store::db::{DbError, SqlValue, Tx};
use crate::store::tenants::{self, TenantSettings};
use crate::ApiError;
use crm_domain::audit::AuditRecord;
use crm_domain::event::{Action, DomainEvent};
use crm_domain::timeline::kind_of;
use crm_domain::{Actor, EntityId, Region, TenantId};
use std::sync::Mutex;
use uuid::Uuid;

/// What must happen once the change has committed.
#[derive(Debug, Default)]
pub struct AfterCommit {
    /// Cached entries made stale: `(kind, id)`.
    pub invalidations: Vec<(&'static str, String)>,
    /// The change wrote an outbox event or queued a delivery.
    pub wake_dispatcher: bool,
}

/// One change in progress; see the module documentation.
pub struct UnitOfWork<'a> {
    tx: &'a Tx,
    tenant: TenantId,
    actor: &'a Actor,
    correlation_id: &'a str,
    fallback_region: Region,
    after_commit: Mutex<AfterCommit>,
}

/// Appends audit records and their events, the n-th record with the n-th event, in one statement
/// however many there are; and for each record, its entry on the timeline of every contact it is
/// about that still exists (`subjects`: comma-separated contact ids). Whether it exists is one probe
/// of the primary key per subject (`limit 1` in a lateral join): as a semi-join, a thousand records
/// were planned as a hash of every contact of the tenant (28,000 rows read for a batch on a tenant
/// of 28,000 contacts; a million on a tenant of a million).
const RECORD: &str = "
    with change as (
        select * from unnest($2::text[]::uuid[], $3::text[], $4::text[], $5::text[]::uuid[],
                             $6::text[]::jsonb[], $7::text[]::uuid[], $8::text[], $9::text[]::jsonb[],
                             $14::text[], $15::text[])
            as c(audit_id, action, entity_type, entity_id, changes, event_id, event_type, payload,
                 subjects, kind)
    ), audit as (
        insert into audit_log (tenant_id, id, actor, actor_type, action, entity_type, entity_id,
                               request_id, changes)
        select $1, audit_id, $10, $11, action, entity_type, entity_id, $12, changes from change
    ), activity as (
        insert into contact_activity (tenant_id, contact_id, occurred_at, audit_id, event_id, kind)
        select $1, subject, now(), change.audit_id, change.event_id, change.kind
        from change
        cross join lateral unnest(string_to_array(nullif(change.subjects, ''), ',')::uuid[]) as subject
        cross join lateral (select 1 from contacts k where k.tenant_id = $1 and k.id = subject
                            limit 1) still_there
    )
    insert into outbox_events (tenant_id, id, event_type, entity_type, entity_id, payload,
                               request_id, actor)
    select $1, event_id, event_type, entity_type, entity_id, payload, $12, $13 from change";

impl<'a> UnitOfWork<'a> {
    pub(crate) fn new(
        tx: &'a Tx,
        tenant: TenantId,
        actor: &'a Actor,
        correlation_id: &'a str,
        fallback_region: Region,
    ) -> Self {
        Self {
            tx,
            tenant,
            actor,
            correlation_id,
            fallback_region,
            after_commit: Mutex::default(),
        }
    }

    /// The change's transaction, for repositories.
    pub fn tx(&self) -> &Tx {
        self.tx
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn actor(&self) -> &Actor {
        self.actor
    }

    /// The request id of an HTTP change, a job's run id otherwise: what ties its audit records
    /// and events together.
    pub fn correlation_id(&self) -> &str {
        self.correlation_id
    }

    /// The tenant's settings, as of this transaction.
    pub async fn settings(&self) -> Result<TenantSettings, DbError> {
        tenants::settings(self.tx, self.tenant).await
    }

    /// The region numbers without a country code are read with: the tenant's, else the
    /// deployment's default.
    pub fn region(&self, settings: &TenantSettings) -> Region {
        settings.region(self.fallback_region)
    }

    /// Appends `audit` and `event` to the change, in its transaction (one statement); the
    /// dispatcher is woken once the change commits.
    pub async fn record(&self, audit: &AuditRecord, event: &DomainEvent) -> Result<(), ApiError> {
        self.record_all(&[(audit, event)]).await
    }

    /// Appends each audit record and its event (a change of many entities at once, such as a
    /// list's new members), in one statement however many there are.
    pub async fn record_all(
        &self,
        changes: &[(&AuditRecord, &DomainEvent)],
    ) -> Result<(), ApiError> {
        if changes.is_empty() {
            return Ok(());
        }
        let column = |value: &dyn Fn(&(&AuditRecord, &DomainEvent)) -> String| {
            SqlValue::TextArray(changes.iter().map(value).collect())
        };
        let diffs = changes
            .iter()
            .map(|(audit, _)| serde_json::to_string(&audit.changes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::from)?;
        let payloads = changes
            .iter()
            .map(|(_, event)| event.data.to_string())
            .collect();
        let ids =
            || SqlValue::TextArray(changes.iter().map(|_| Uuid::now_v7().to_string()).collect());
        let actor = serde_json::json!({"type": self.actor.kind(), "id": self.actor.id()});
        self.tx
            .execute(
                RECORD,
                &[
                    self.tenant.into(),
                    ids(),
                    column(&|(audit, _)| audit.action.to_owned()),
                    column(&|(audit, _)| audit.entity_type.to_owned()),
                    column(&|(audit, _)| audit.entity_id.to_string()),
                    SqlValue::TextArray(diffs),
                    ids(),
                    column(&|(_, event)| event.event_type.to_owned()),
                    SqlValue::TextArray(payloads),
                    self.actor.id().into(),
                    self.actor.kind().into(),
                    self.correlation_id.into(),
                    SqlValue::Json(actor),
                    column(&|(audit, _)| {
                        let ids: Vec<String> = audit.contacts.iter().map(Uuid::to_string).collect();
                        ids.join(",")
                    }),
                    column(&|(audit, _)| kind_of(audit.entity_type, audit.action).to_owned()),
                ],
            )
            .await?;
        self.wake_dispatcher();
        Ok(())
    }

    /// Records `action` on the entity `entity_id`: its audit record (the field-level diff from
    /// `before`, none for a creation) and its event, carrying `after` as the API returns it.
    pub async fn record_change<A: Action, T: serde::Serialize>(
        &self,
        action: A,
        entity_id: impl EntityId,
        before: Option<&T>,
        after: &T,
    ) -> Result<(), ApiError> {
        let audit = AuditRecord::of(action, entity_id, before, Some(after));
        self.record(&audit, &DomainEvent::of(action, entity_id, after))
            .await
    }

    /// Records the removal `action` of the entity `entity_id`, which was `before`: its audit record
    /// and its event, carrying the entity as it was.
    pub async fn record_removal<A: Action, T: serde::Serialize>(
        &self,
        action: A,
        entity_id: impl EntityId,
        before: &T,
    ) -> Result<(), ApiError> {
        let audit = AuditRecord::of(action, entity_id, Some(before), None);
        self.record(&audit, &DomainEvent::of(action, entity_id, before))
            .await
    }

    /// Makes the cached copies of `kind` `id` unreachable once the change commits.
    pub fn invalidate(&self, kind: &'static str, id: impl EntityId) {
        self.pending().invalidations.push((kind, id.to_string()));
    }

    /// Wakes the webhook dispatcher once the change commits (it queued a delivery).
    pub fn wake_dispatcher(&self) {
        self.pending().wake_dispatcher = true;
    }

    pub(crate) fn into_after_commit(self) -> AfterCommit {
        self.after_commit
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, AfterCommit> {
        self.after_commit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_name_their_kind() {
        let actors = [
            (Actor::User("u".into()), "user"),
            (Actor::ApiClient("c".into()), "api_client"),
            (Actor::ImportJob("i".into()), "import_job"),
            (Actor::WorkflowRule("w".into()), "workflow_rule"),
            (Actor::System("s".into()), "system"),
        ];
        for (actor, kind) in actors {
            assert_eq!(actor.kind(), kind);
            assert_eq!(actor.id().len(), 1);
        }
    }
}
