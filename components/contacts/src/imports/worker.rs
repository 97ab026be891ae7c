//! The import worker: claims the next job with work to do, whatever its tenant, and runs its steps
//! until it has none or the pass's time is up, then the next job. The native server runs passes in
//! a loop (woken when a job starts, and every few seconds); on Spin a Redis wake-up or the operator
//! route runs one pass per request, each bounded by its budget, and a pass that leaves work
//! behind wakes the next.

use super::service;
use crm_domain::{ImportId, TenantId};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, App};
use std::time::{Duration, Instant};

/// How long one pass works before it hands on what remains.
pub const PASS_BUDGET: Duration = Duration::from_secs(10);

/// Works until no job has work left or `budget` has passed; whether work remains.
pub async fn run(app: &App, budget: Duration) -> Result<bool, ApiError> {
    let started = Instant::now();
    while let Some((tenant, id)) = claim(app).await? {
        loop {
            match service::step(app, tenant, id).await {
                Ok(true) if started.elapsed() < budget => {}
                Ok(true) => {
                    release(app, tenant, id).await?;
                    return Ok(true);
                }
                Ok(false) => break,
                // A step the job itself makes impossible (a list it joins was deleted, its
                // mapping no longer reads): the job fails, saying why.
                Err(error) if !error.status().is_server_error() => {
                    service::fail(app, tenant, id, &error.to_string()).await?;
                    break;
                }
                // Anything else is the server's (a lost connection, a timeout): the step left
                // nothing behind, and the job is let go at once for the next pass to retry (or,
                // when even that fails, taken again once its lease runs out).
                Err(error) => {
                    let _retried_later = release(app, tenant, id).await;
                    return Err(error);
                }
            }
        }
        if started.elapsed() >= budget {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn claim(app: &App) -> Result<Option<(TenantId, ImportId)>, ApiError> {
    let row = app
        .db
        .unscoped_transaction(async |tx: &Tx| {
            tx.query_opt(
                "select tenant_id, import_id from import_claim($1::int8::int4)",
                &[service::LEASE_SECONDS.into()],
            )
            .await
        })
        .await?;
    Ok(match row {
        Some(row) => Some((row.get("tenant_id")?, row.get("import_id")?)),
        None => None,
    })
}

async fn release(app: &App, tenant: TenantId, id: ImportId) -> Result<(), ApiError> {
    app.db
        .transaction(tenant, async |tx: &Tx| {
            super::repository::release(tx, tenant, id).await
        })
        .await?;
    Ok(())
}
