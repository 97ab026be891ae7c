//! `crm import` and `crm export`: the API's import jobs and exports run from the command line,
//! through the same services (an import is a job like any other, visible at `/api/v1/imports`, its
//! rows written through the contacts' batch and audited as the job's), with progress on stderr and
//! a summary at the end.

use anyhow::{bail, Context};
use crm_contacts::export::service::Export;
use crm_contacts::imports::{service, PART_BYTES};
use crm_domain::import::{Format, Import, ImportDraft, ImportStatus};
use crm_domain::{Actor, TenantId};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::{ApiError, App};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Who the CLI's changes are recorded as.
fn actor() -> Actor {
    Actor::System("crm-cli".into())
}

/// An API error as a line for the terminal, each field at fault named.
fn described(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::Validation(errors) => anyhow::anyhow!(
            "{}",
            errors
                .0
                .iter()
                .map(|e| format!("{}: {} ({})", e.field, e.message, e.code))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ApiError::Conflict { detail, errors, .. } => anyhow::anyhow!(
            "{detail}{}",
            errors
                .iter()
                .map(|e| format!("; {}: {}", e.field, e.message))
                .collect::<String>()
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn change<T>(
    app: &App,
    tenant: TenantId,
    work: impl AsyncFnOnce(&UnitOfWork<'_>) -> Result<T, ApiError>,
) -> anyhow::Result<T> {
    let correlation = uuid::Uuid::now_v7().to_string();
    app.unit_of_work(tenant, &actor(), &correlation, work)
        .await
        .map_err(described)
}

/// Imports `path` into `tenant` with `draft`'s options: creates the job, uploads the file in parts,
/// starts it and works it here until it ends.
pub async fn import(
    app: &App,
    tenant: TenantId,
    path: &Path,
    draft: ImportDraft,
) -> anyhow::Result<Import> {
    let started = Instant::now();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let job = change(app, tenant, async |uow| service::create(uow, draft).await).await?;
    let id = job.id;
    eprintln!("import {id}: uploading {} ({size} bytes)", path.display());
    let mut buffer = vec![0u8; PART_BYTES];
    let mut number = 0;
    loop {
        let read = fill(&mut file, &mut buffer)?;
        if read == 0 {
            break;
        }
        number += 1;
        let part = &buffer[..read];
        change(app, tenant, async |uow| {
            service::add_part(uow, id, number, part).await
        })
        .await?;
        if read < buffer.len() {
            break;
        }
    }
    let mut job = change(app, tenant, async |uow| service::start(uow, id).await).await?;
    while !job.status.is_final() {
        service::step(app, tenant, id).await.map_err(described)?;
        job = app
            .db
            .read(tenant, async |tx| service::find(tx, tenant, id).await)
            .await
            .map_err(described)?;
        let rows = &job.rows;
        eprint!(
            "\r{:>5.1}%  {}/{} rows  {} created  {} updated  {} skipped  {} failed",
            job.progress * 100.0,
            rows.processed,
            rows.read,
            rows.created,
            rows.updated,
            rows.skipped,
            rows.failed
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "\nimport {id} {} in {seconds:.1} s ({:.0} rows/s){}",
        job.status.as_str(),
        job.rows.processed as f64 / seconds.max(0.001),
        if job.rows.failed > 0 {
            format!("; errors: GET {}", job.errors_url)
        } else {
            String::new()
        }
    );
    if job.status == ImportStatus::Failed {
        bail!(
            "the import failed: {}",
            job.error.clone().unwrap_or_default()
        );
    }
    Ok(job)
}

/// Reads until `buffer` is full or the file ends; how many bytes it read.
fn fill(file: &mut std::fs::File, buffer: &mut [u8]) -> anyhow::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = file.read(&mut buffer[filled..])?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}

/// Writes every contact of `tenant` the list `filters` match to `out`, in `format`; how many.
pub async fn export(
    app: Arc<App>,
    tenant: TenantId,
    filters: &[(String, String)],
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let param = |name: &str| {
        filters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut export = Export::listed(app, tenant, param, format)
        .await
        .map_err(described)?;
    out.write_all(export.header().as_bytes())?;
    let mut total = 0;
    loop {
        let mut chunk = String::new();
        let (written, more) = export.write_page(&mut chunk).await.map_err(described)?;
        out.write_all(chunk.as_bytes())?;
        total += written;
        eprint!("\r{total} contacts");
        if !more {
            break;
        }
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "\r{total} contacts exported in {seconds:.1} s ({:.0} rows/s)",
        total as f64 / seconds.max(0.001)
    );
    Ok(total)
}
