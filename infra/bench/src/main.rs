//! `crm-bench`: requests per second and p50/p99 latency of the contacts API against a running server
//! (`crm serve` or `spin up`) over a seeded tenant, at several concurrencies, plus the same read by id
//! run directly against PostgreSQL as the floor. It reports numbers; it asserts nothing.
//!
//! ```sh
//! crm-bench --base-url http://127.0.0.1:3000 --tenant ID \
//!     --database-url postgres://postgres@127.0.0.1:5432/crm --seconds 10 --concurrency 1,32
//! ```

use anyhow::{bail, Context};
use clap::Parser;
use crm_domain::TenantId;
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "crm-bench")]
struct Args {
    /// The server under test.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// A seeded tenant (`crm seed`).
    #[arg(long)]
    tenant: String,
    /// Owner connection to the same database: samples ids and runs the floor read.
    #[arg(long, env = "CRM_MIGRATE_DATABASE_URL")]
    database_url: String,
    /// Seconds each scenario runs at each concurrency.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "1,32", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Run only scenarios whose name contains one of these words (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// One request of a scenario.
#[derive(Clone)]
enum Call {
    Get(String),
    Create,
    DatabaseRead,
}

struct BenchContext {
    http: reqwest::Client,
    base_url: String,
    token: String,
    ids: Vec<uuid::Uuid>,
    tenant: TenantId,
    floor: Vec<tokio_postgres::Client>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (tenant, token) =
        crm_bench::tenant_token(&args.tenant, "bench", "contacts:read contacts:write")?;
    let max_clients = args.concurrency.iter().copied().max().unwrap_or(1);
    let owner = crm::connect(&args.database_url).await?;
    let ids: Vec<uuid::Uuid> = owner
        .query(
            "select id from contacts where tenant_id = $1 and deleted_at is null
             order by random() limit 10000",
            &[&tenant.as_uuid()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let total: i64 = owner
        .query_one(
            "select count(*) from contacts where tenant_id = $1",
            &[&tenant.as_uuid()],
        )
        .await?
        .get(0);
    if ids.is_empty() {
        bail!("tenant {tenant} has no contacts: run `crm seed` first");
    }
    let mut floor = Vec::new();
    for _ in 0..max_clients {
        floor.push(crm::connect(&args.database_url).await?);
    }
    let ctx = Arc::new(BenchContext {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(max_clients)
            .build()?,
        base_url: args.base_url.trim_end_matches('/').to_owned(),
        token,
        ids,
        tenant,
        floor,
    });
    let page_1000 = if args.only.is_empty()
        || args
            .only
            .iter()
            .any(|w| "list page 1000".contains(w.as_str()))
    {
        eprintln!("tenant {tenant}: {total} contacts; walking to page 1000 for its cursor...");
        cursor_of_page(&ctx, 1000).await?
    } else {
        String::new()
    };
    let scenarios = [
        ("create", Call::Create),
        ("read by id", Call::Get("/api/v1/contacts/{id}".into())),
        ("list page 1", Call::Get("/api/v1/contacts?limit=50".into())),
        (
            "list page 1000",
            Call::Get(format!("/api/v1/contacts?limit=50&cursor={page_1000}")),
        ),
        (
            "filtered list",
            Call::Get("/api/v1/contacts?limit=50&lifecycle_stage=customer&owner_id=user-7".into()),
        ),
        ("floor: read by id in PostgreSQL", Call::DatabaseRead),
    ];
    println!("| scenario | clients | requests | req/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let chosen = |name: &str| {
        args.only.is_empty() || args.only.iter().any(|word| name.contains(word.as_str()))
    };
    for (name, call) in scenarios.into_iter().filter(|(name, _)| chosen(name)) {
        for &clients in &args.concurrency {
            // Warm connections and caches briefly, then measure.
            run(&ctx, &call, clients, Duration::from_secs(1)).await;
            let result = run(&ctx, &call, clients, Duration::from_secs(args.seconds)).await;
            println!(
                "| {name} | {clients} | {} | {:.0} | {:.2} | {:.2} | {} |",
                result.latencies.len(),
                result.latencies.len() as f64 / result.elapsed.as_secs_f64(),
                percentile(&result.latencies, 0.50),
                percentile(&result.latencies, 0.99),
                result.errors
            );
        }
    }
    Ok(())
}

async fn cursor_of_page(ctx: &BenchContext, page: usize) -> anyhow::Result<String> {
    let mut cursor = None;
    for _ in 1..page {
        let url = match &cursor {
            None => format!("{}/api/v1/contacts?limit=50", ctx.base_url),
            Some(c) => format!("{}/api/v1/contacts?limit=50&cursor={c}", ctx.base_url),
        };
        let body: serde_json::Value = ctx
            .http
            .get(url)
            .bearer_auth(&ctx.token)
            .send()
            .await?
            .json()
            .await?;
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            bail!("fewer than {page} pages");
        }
    }
    cursor.context("no cursor")
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn run(ctx: &Arc<BenchContext>, call: &Call, clients: usize, length: Duration) -> Outcome {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let ctx = ctx.clone();
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match once(&ctx, &call, client).await {
                        Ok(()) => latencies.push(began.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut outcome = Outcome {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            outcome.latencies.extend(latencies);
            outcome.errors += errors;
        }
    }
    outcome.elapsed = start.elapsed();
    outcome
}

async fn once(ctx: &BenchContext, call: &Call, client: usize) -> anyhow::Result<()> {
    let random_id = || ctx.ids[rand::rng().random_range(0..ctx.ids.len())];
    let response = match call {
        Call::DatabaseRead => {
            let row = ctx.floor[client]
                .query_opt(
                    crm_contacts::FIND_CONTACT_SQL,
                    &[&ctx.tenant.as_uuid(), &random_id()],
                )
                .await?;
            return row.map(|_| ()).context("no row");
        }
        Call::Create => {
            let email = format!("bench-{}@example.com", uuid::Uuid::now_v7());
            ctx.http
                .post(format!("{}/api/v1/contacts", ctx.base_url))
                .bearer_auth(&ctx.token)
                .json(&json!({"first_name": "Bench", "last_name": "Mark", "emails": [{"address": email}],
                              "phones": [{"number": "+1 212 736 5000"}], "lifecycle_stage": "lead"}))
                .send()
                .await?
        }
        Call::Get(path) => {
            let path = path.replace("{id}", &random_id().to_string());
            ctx.http
                .get(format!("{}{path}", ctx.base_url))
                .bearer_auth(&ctx.token)
                .send()
                .await?
        }
    };
    let status = response.status();
    response.bytes().await?;
    if !status.is_success() {
        bail!("status {status}");
    }
    Ok(())
}

fn percentile(latencies: &[Duration], quantile: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}
