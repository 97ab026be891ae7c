//! `crm maintain`: what grows without bound is purged past a retention, for every tenant, as the
//! schema owner. Run it daily from cron (README, "Scheduled maintenance").

/// How many rows a run purged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Idempotency keys past their 24 hours.
    pub idempotency_keys: u64,
    /// Deliveries that finished (succeeded or dead-lettered) more than the retention ago.
    pub deliveries: u64,
    /// Outbox events fanned out more than the retention ago that no delivery still refers to.
    pub events: u64,
    /// Contact merges past the time they could be undone (`merge_undo_days`): the snapshots of the
    /// merged contacts they keep are personal data.
    pub merges: u64,
    /// Export jobs whose download has expired: their files are personal data.
    pub exports: u64,
}

/// Purges expired idempotency keys, contact merges that can no longer be undone and expired exports, and finished deliveries and fanned-out events older than
/// `retention_days`. Pending deliveries and the events they need are kept, whatever their age.
pub async fn purge(owner_url: &str, retention_days: i32) -> anyhow::Result<Purged> {
    anyhow::ensure!(
        (1..=3650).contains(&retention_days),
        "--retention-days must be from 1 to 3650"
    );
    let mut client = crate::connect(owner_url).await?;
    let tx = client.transaction().await?;
    let idempotency_keys = tx
        .execute("delete from idempotency_keys where expires_at < now()", &[])
        .await?;
    let deliveries = tx
        .execute(
            "delete from webhook_deliveries
             where status in ('succeeded', 'dead')
               and completed_at < now() - make_interval(days => $1)",
            &[&retention_days],
        )
        .await?;
    let events = tx
        .execute(
            "delete from outbox_events e
             where e.fanned_out_at < now() - make_interval(days => $1)
               and not exists (select 1 from webhook_deliveries d
                               where d.tenant_id = e.tenant_id and d.event_id = e.id)",
            &[&retention_days],
        )
        .await?;
    let merges = tx
        .execute("delete from contact_merges where expires_at < now()", &[])
        .await?;
    let exports = tx
        .execute("delete from exports where expires_at < now()", &[])
        .await?;
    tx.commit().await?;
    Ok(Purged {
        idempotency_keys,
        deliveries,
        events,
        merges,
        exports,
    })
}
