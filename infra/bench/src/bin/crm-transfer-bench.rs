//! `crm-transfer-bench`: import and export throughput of a running server (`crm serve` or
//! `spin up`), with PostgreSQL's `COPY` of the same rows into the same table as the floor. It
//! generates a CSV of `--rows` new contacts, imports it as a job (create only: uploaded in 8 MiB
//! parts, started, polled until it ends), exports the tenant back as CSV, and reports rows per
//! second of each. It reports numbers; it asserts nothing (`infra/scripts/bench-transfer` runs it
//! natively and through Spin side by side, with each server's peak memory).

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "crm-transfer-bench")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// An empty tenant to import into.
    #[arg(long)]
    tenant: String,
    /// Owner connection to the same database, for the COPY floor.
    #[arg(long, env = "CRM_MIGRATE_DATABASE_URL")]
    database_url: String,
    /// Rows of the generated file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Another empty tenant for the COPY floor (skipped without it).
    #[arg(long)]
    floor_tenant: Option<String>,
}

const PART_BYTES: usize = 8 * 1024 * 1024;

fn generate(rows: usize, run: &str) -> String {
    let mut file = String::from("first_name,last_name,emails,company,job_title,source\n");
    for n in 0..rows {
        let _ = writeln!(
            file,
            "First{n},Last{},person{n}.{run}@example.com,Company {},Engineer,import",
            n % 997,
            n % 5_000
        );
    }
    file
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (tenant, token) =
        crm_bench::tenant_token(&args.tenant, "bench", "contacts:read contacts:write")?;
    let http = reqwest::Client::new();
    let base = args.base_url.trim_end_matches('/');
    let run = uuid::Uuid::now_v7().simple().to_string();
    let file = generate(args.rows, &run[..8]);
    println!(
        "file: {} rows, {:.1} MiB",
        args.rows,
        file.len() as f64 / 1_048_576.0
    );

    // The import: upload, start, poll.
    let started = Instant::now();
    let created: Value = http
        .post(format!("{base}/api/v1/imports"))
        .bearer_auth(&token)
        .json(&json!({"format": "csv", "dedupe": "create_only"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().context("an import id")?.to_owned();
    let bytes = file.as_bytes();
    for (number, part) in bytes.chunks(PART_BYTES).enumerate() {
        http.put(format!("{base}/api/v1/imports/{id}/parts/{}", number + 1))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(part.to_vec())
            .send()
            .await?
            .error_for_status()?;
    }
    let uploaded = started.elapsed();
    http.post(format!("{base}/api/v1/imports/{id}/start"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?;
    let job = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job: Value = http
            .get(format!("{base}/api/v1/imports/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            break job;
        }
    };
    let total = started.elapsed();
    if job["status"] != "completed" || job["rows"]["created"] != args.rows {
        bail!("the import did not create every row: {job}");
    }
    let applying = total - uploaded;
    println!(
        "import: {} rows in {:.1} s = {:.0} rows/s (upload and read into rows {:.1} s = {:.0} rows/s; applying {:.1} s = {:.0} rows/s)",
        args.rows,
        total.as_secs_f64(),
        args.rows as f64 / total.as_secs_f64(),
        uploaded.as_secs_f64(),
        args.rows as f64 / uploaded.as_secs_f64(),
        applying.as_secs_f64(),
        args.rows as f64 / applying.as_secs_f64(),
    );

    // The export, streamed.
    let started = Instant::now();
    let mut response = http
        .get(format!("{base}/api/v1/contacts/export?format=csv"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let mut lines = 0usize;
    while let Some(chunk) = response.chunk().await? {
        lines += chunk.iter().filter(|byte| **byte == b'\n').count();
    }
    let exported = lines.saturating_sub(1);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "export: {exported} rows in {seconds:.1} s = {:.0} rows/s",
        exported as f64 / seconds
    );

    // The floor: the same rows COPYed into contacts (the table's triggers run; no audit, no event).
    if let Some(floor) = &args.floor_tenant {
        let floor = crm_domain::TenantId::parse(floor).context("--floor-tenant is not a UUID")?;
        let owner = crm::connect(&args.database_url).await?;
        let mut copy = String::new();
        for n in 0..args.rows {
            let _ = writeln!(
                copy,
                "{floor}\t{}\tFirst{n}\tLast{}\tFirst{n} Last{}\tCompany {}\tEngineer\timport",
                uuid::Uuid::now_v7(),
                n % 997,
                n % 997,
                n % 5_000
            );
        }
        let started = Instant::now();
        let sink = owner
            .copy_in(
                "copy contacts (tenant_id, id, first_name, last_name, display_name, company, job_title, source) from stdin",
            )
            .await?;
        futures::pin_mut!(sink);
        futures::SinkExt::send(&mut sink, bytes::Bytes::from(copy)).await?;
        sink.finish().await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "floor: COPY of {} rows into contacts in {seconds:.1} s = {:.0} rows/s",
            args.rows,
            args.rows as f64 / seconds
        );
    }
    let _ = tenant;
    Ok(())
}
