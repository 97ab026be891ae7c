//! The job worker: claims the next import or export job with work to do, whatever its tenant, and
//! runs its steps until it has none or the pass's time is up, then the next job. The native server
//! runs passes in a loop (woken when a job starts, and every few seconds); on Spin a Redis wake-up
//! or the operator route runs one pass per request, each bounded by its budget, and a pass that
//! leaves work behind wakes the next.

use crate::export::jobs;
use crate::imports::service;
use crm_domain::{ExportId, ImportId, TenantId};
use crm_platform::store::db::Tx;
use crm_platform::{ApiError, App};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one pass works before it hands on what remains.
pub const PASS_BUDGET: Duration = Duration::from_secs(10);

/// A job a worker holds.
#[derive(Debug, Clone, Copy)]
enum Job {
    Import(TenantId, ImportId),
    Export(TenantId, ExportId),
}

/// [`run`], run once more when it fails on the server's side: the failed statement's connection was
/// dropped (a database restart, a killed backend), and the next pass gets a fresh one. For the
/// entry points that nothing calls again soon (a Redis wake-up, the operator route); the native loop
/// retries on its interval.
pub async fn run_retrying(app: &Arc<App>, budget: Duration) -> Result<bool, ApiError> {
    match run(app, budget).await {
        Err(error) if error.status().is_server_error() => {
            tracing::warn!(error = ?error, "a job pass failed; running it again");
            run(app, budget).await
        }
        outcome => outcome,
    }
}

/// Works until no job has work left or `budget` has passed; whether work remains.
pub async fn run(app: &Arc<App>, budget: Duration) -> Result<bool, ApiError> {
    let started = Instant::now();
    while let Some(job) = claim(app).await? {
        loop {
            let stepped = match job {
                Job::Import(tenant, id) => service::step(app, tenant, id).await,
                Job::Export(tenant, id) => jobs::step(app, tenant, id).await,
            };
            match stepped {
                Ok(true) if started.elapsed() < budget => {}
                Ok(true) => {
                    release(app, job).await?;
                    return Ok(true);
                }
                Ok(false) => break,
                // A step the job itself makes impossible (a list it joins was deleted, its
                // mapping no longer reads): the job fails, saying why.
                Err(error) if !error.status().is_server_error() => {
                    let reason = error.to_string();
                    match job {
                        Job::Import(tenant, id) => service::fail(app, tenant, id, &reason).await?,
                        Job::Export(tenant, id) => jobs::fail(app, tenant, id, &reason).await?,
                    }
                    break;
                }
                // Anything else is the server's (a lost connection, a timeout): the step left
                // nothing behind, and the job is let go at once for the next pass to retry (or,
                // when even that fails, taken again once its lease runs out).
                Err(error) => {
                    let _retried_later = release(app, job).await;
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

/// The next import with work to do, else the next export.
async fn claim(app: &App) -> Result<Option<Job>, ApiError> {
    let rows = app
        .db
        .unscoped_transaction(async |tx: &Tx| {
            let lease = [service::LEASE_SECONDS.into()];
            let import = tx
                .query_opt(
                    "select tenant_id, import_id as id from import_claim($1::int8::int4)",
                    &lease,
                )
                .await?;
            if import.is_some() {
                return Ok((import, None));
            }
            let export = tx
                .query_opt(
                    "select tenant_id, export_id as id from export_claim($1::int8::int4)",
                    &lease,
                )
                .await?;
            Ok::<_, crm_platform::store::db::DbError>((None, export))
        })
        .await?;
    Ok(match rows {
        (Some(row), _) => Some(Job::Import(row.get("tenant_id")?, row.get("id")?)),
        (None, Some(row)) => Some(Job::Export(row.get("tenant_id")?, row.get("id")?)),
        (None, None) => None,
    })
}

async fn release(app: &App, job: Job) -> Result<(), ApiError> {
    let (tenant, table, id) = match job {
        Job::Import(tenant, id) => (tenant, "imports", id.as_uuid()),
        Job::Export(tenant, id) => (tenant, "exports", id.as_uuid()),
    };
    app.db
        .transaction(tenant, async |tx: &Tx| {
            tx.execute(
                &format!("update {table} set lease_until = null where tenant_id = $1 and id = $2"),
                &[tenant.into(), id.into()],
            )
            .await
        })
        .await?;
    Ok(())
}
