//! `crm-bench`: requests per second and p50/p95/p99 latency of the contacts API against a running server
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
    /// The bare Spin component of `infra/bench/floor` (`spin up -f infra/bench/floor/spin.toml`):
    /// measured as "floor: bare Spin component select by primary key" beside the API.
    #[arg(long)]
    floor_url: Option<String>,
}

/// One request of a scenario.
#[derive(Clone)]
enum Call {
    Get(String),
    /// A read by id among the first [`REPEATED_IDS`] sampled ids: after the warm-up, cache hits.
    GetRepeated(String),
    Create,
    DatabaseRead,
    /// `GET {floor_url}/floor/contacts/{tenant}/{id}`.
    FloorRead,
    /// `POST /api/v1/contacts/search` with a body of this shape, its values drawn per request.
    Search(Shape),
    /// `POST /api/v1/contacts/batch` of [`BATCH_SIZE`] creates of new contacts.
    BatchCreate,
    /// `POST /api/v1/contacts/batch` of [`BATCH_SIZE`] upserts of existing contacts (a new job
    /// title each time), each client its own contacts so that no two batches wait on each other.
    BatchUpsert,
}

/// Operations per batch request.
const BATCH_SIZE: usize = 1_000;

/// The searches of the search benchmark (issue 15).
#[derive(Clone, Copy)]
enum Shape {
    /// `last_name starts_with` the first three letters of a seeded last name.
    NamePrefix,
    /// `q`: a seeded email with two letters swapped.
    FuzzyEmail,
    /// `custom.account eq` one contact's account (infra/bench/search.sql).
    CustomEquality,
    /// `or` of two `and` groups, one with a tag condition.
    TwoGroupsWithTag,
    /// `q`: one word of the seeded notes, ranked.
    FullText,
}

/// What the search scenarios draw their values from.
#[derive(Default)]
struct SearchData {
    last_names: Vec<String>,
    emails: Vec<String>,
    contacts: i64,
    tag: Option<uuid::Uuid>,
}

/// Words of the notes infra/bench/search.sql writes.
const NOTE_WORDS: &[&str] = &[
    "pricing",
    "onboarding",
    "renewal",
    "integrations",
    "security",
    "migration",
    "webhooks",
    "quarterly",
];

/// How many ids the repeated-read scenario cycles through.
const REPEATED_IDS: usize = 64;

struct BenchContext {
    http: reqwest::Client,
    base_url: String,
    token: String,
    ids: Vec<uuid::Uuid>,
    tenant: TenantId,
    floor: Vec<tokio_postgres::Client>,
    floor_url: Option<String>,
    search: SearchData,
    /// Primary emails of live contacts, for the batch upsert: each request takes the next
    /// [`BATCH_SIZE`] (wrapping around), so that no two requests in flight update the same contact
    /// and each updates contacts no recent request updated, as an import of existing contacts does
    /// (updating the same thousand over and over measured the bloat of their row versions).
    upsert_emails: Vec<String>,
    /// How many batch upserts have been sent: which slice of `upsert_emails` the next one takes.
    upserts_sent: std::sync::atomic::AtomicUsize,
}

/// How many contacts the batch upsert cycles through at most.
const UPSERT_POOL: usize = 100 * BATCH_SIZE;

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
    // One connection per client for the PostgreSQL floor, opened only when it runs: they count
    // against the server's max_connections, shared with the servers under test.
    let mut floor = Vec::new();
    let database_floor = "floor: PostgreSQL select by primary key";
    if args.only.is_empty()
        || args
            .only
            .iter()
            .any(|w| database_floor.contains(w.as_str()))
    {
        for _ in 0..max_clients {
            floor.push(crm::connect(&args.database_url).await?);
        }
    }
    let search = if args.only.iter().any(|w| w.contains("search")) {
        search_data(&owner, tenant, total).await?
    } else {
        SearchData::default()
    };
    let upsert_emails = if args
        .only
        .iter()
        .any(|w| "batch upsert".contains(w.as_str()))
    {
        owner
            .query(
                "select address from contact_emails where tenant_id = $1 and live and is_primary
                 order by contact_id limit $2",
                &[
                    &tenant.as_uuid(),
                    &(UPSERT_POOL.max(max_clients * BATCH_SIZE) as i64),
                ],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        Vec::new()
    };
    let ctx = Arc::new(BenchContext {
        search,
        upsert_emails,
        upserts_sent: std::sync::atomic::AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(max_clients)
            .build()?,
        base_url: args.base_url.trim_end_matches('/').to_owned(),
        token,
        ids,
        tenant,
        floor,
        floor_url: args.floor_url.clone(),
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
    let mut scenarios = vec![
        ("create", Call::Create),
        ("read by id", Call::Get("/api/v1/contacts/{id}".into())),
        (
            "read by id, repeated ids",
            Call::GetRepeated("/api/v1/contacts/{id}".into()),
        ),
        ("list page 1", Call::Get("/api/v1/contacts?limit=50".into())),
        (
            "list page 1000",
            Call::Get(format!("/api/v1/contacts?limit=50&cursor={page_1000}")),
        ),
        (
            "filtered list",
            Call::Get("/api/v1/contacts?limit=50&lifecycle_stage=customer&owner_id=user-7".into()),
        ),
        (
            "floor: PostgreSQL select by primary key",
            Call::DatabaseRead,
        ),
        (
            "timeline page 1",
            Call::Get("/api/v1/contacts/{id}/timeline?limit=50".into()),
        ),
    ];
    // A tag's contacts, when the tenant has tags (infra/bench/organising.sql seeds 50, 3 a contact).
    if let Some(row) = owner
        .query_opt(
            "select id from tags where tenant_id = $1 order by name limit 1",
            &[&tenant.as_uuid()],
        )
        .await?
    {
        let tag: uuid::Uuid = row.get(0);
        scenarios.push((
            "tag-filtered list",
            Call::Get(format!("/api/v1/contacts?limit=50&tags_any={tag}")),
        ));
    }
    // The searches, when asked for by name (their tenant is infra/bench/search.sql's).
    let searches = if ctx.search.emails.is_empty() {
        &[][..]
    } else {
        &[
            ("search: name prefix", Shape::NamePrefix),
            ("search: fuzzy email", Shape::FuzzyEmail),
            ("search: custom field equality", Shape::CustomEquality),
            ("search: two-group or with a tag", Shape::TwoGroupsWithTag),
            ("search: full-text term", Shape::FullText),
        ][..]
    };
    for (name, shape) in searches {
        scenarios.push((name, Call::Search(*shape)));
    }
    scenarios.push(("batch create (1,000 a request)", Call::BatchCreate));
    if ctx.upsert_emails.len() >= max_clients * BATCH_SIZE {
        scenarios.push(("batch upsert (1,000 a request)", Call::BatchUpsert));
    }
    if ctx.floor_url.is_some() {
        scenarios.push((
            "floor: bare Spin component select by primary key",
            Call::FloorRead,
        ));
    }
    println!("| scenario | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let chosen = |name: &str| {
        args.only.is_empty() || args.only.iter().any(|word| name.contains(word.as_str()))
    };
    let scenarios: Vec<_> = scenarios
        .into_iter()
        .filter(|(name, _)| chosen(name))
        .collect();
    let mut batches = Vec::new();
    for (name, call) in &scenarios {
        for &clients in &args.concurrency {
            // Warm connections and caches briefly, then measure.
            run(&ctx, call, clients, Duration::from_secs(1)).await;
            let result = run(&ctx, call, clients, Duration::from_secs(args.seconds)).await;
            let per_second = result.latencies.len() as f64 / result.elapsed.as_secs_f64();
            if matches!(call, Call::BatchCreate | Call::BatchUpsert) {
                batches.push(format!(
                    "| {name} | {clients} | {:.0} |",
                    per_second * BATCH_SIZE as f64
                ));
            }
            println!(
                "| {name} | {clients} | {} | {per_second:.0} | {:.2} | {:.2} | {:.2} | {} |",
                result.latencies.len(),
                percentile(&result.latencies, 0.50),
                percentile(&result.latencies, 0.95),
                percentile(&result.latencies, 0.99),
                result.errors
            );
        }
    }
    if !batches.is_empty() {
        println!();
        println!("| batch scenario | clients | contacts/s |");
        println!("|---|---:|---:|");
        for row in batches {
            println!("{row}");
        }
    }
    print_costs(&ctx, &scenarios).await;
    Ok(())
}

/// One request of each API scenario at a time, reading the server's `Server-Timing` (the server
/// needs `server_timing=true`): the database calls, connection checkouts and key-value operations
/// each costs, counted by the server, averaged over a few sequential requests.
async fn print_costs(ctx: &Arc<BenchContext>, scenarios: &[(&str, Call)]) {
    const SAMPLES: usize = 20;
    println!();
    println!("| scenario | db calls | db checkouts | kv ops | server ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, call) in scenarios {
        if matches!(call, Call::DatabaseRead | Call::FloorRead) {
            continue;
        }
        let mut totals = [0.0f64; 4];
        let mut counted = 0;
        for _ in 0..SAMPLES {
            if let Ok(Some(cost)) = send(ctx, call).await.map(|r| server_timing(&r)) {
                for (total, value) in totals.iter_mut().zip(cost) {
                    *total += value;
                }
                counted += 1;
            }
        }
        if counted == 0 {
            println!("| {name} | - | - | - | - |");
            continue;
        }
        let mean = |i: usize| totals[i] / counted as f64;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2} |",
            mean(0),
            mean(1),
            mean(2),
            mean(3)
        );
    }
}

/// Samples what the search scenarios draw from.
async fn search_data(
    owner: &tokio_postgres::Client,
    tenant: TenantId,
    contacts: i64,
) -> anyhow::Result<SearchData> {
    let texts = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let last_names = texts(
        owner
            .query(
                "select distinct last_name from contacts
                 where tenant_id = $1 and char_length(last_name) >= 3 limit 100",
                &[&tenant.as_uuid()],
            )
            .await?,
    );
    let emails = texts(
        owner
            .query(
                "select address from contact_emails where tenant_id = $1
                 order by random() limit 1000",
                &[&tenant.as_uuid()],
            )
            .await?,
    );
    let tag = owner
        .query_opt(
            "select id from tags where tenant_id = $1 order by name limit 1",
            &[&tenant.as_uuid()],
        )
        .await?
        .map(|row| row.get(0));
    if last_names.is_empty() || emails.is_empty() {
        bail!("tenant {tenant} has no contacts to search: seed it first");
    }
    Ok(SearchData {
        last_names,
        emails,
        contacts,
        tag,
    })
}

/// A search body of `shape`, its values drawn at random from `data`.
fn search_body(data: &SearchData, shape: Shape) -> serde_json::Value {
    let mut rng = rand::rng();
    let condition = |field: &str, op: &str, value: serde_json::Value| json!({"field": field, "op": op, "value": value});
    match shape {
        Shape::NamePrefix => {
            let name = &data.last_names[rng.random_range(0..data.last_names.len())];
            let prefix: String = name.chars().take(3).collect();
            json!({"filter": condition("last_name", "starts_with", json!(prefix))})
        }
        Shape::FuzzyEmail => {
            let email = &data.emails[rng.random_range(0..data.emails.len())];
            let mut letters: Vec<char> = email.chars().collect();
            let at = rng.random_range(1..letters.len().saturating_sub(2).max(2));
            letters.swap(at, at - 1);
            json!({"q": letters.into_iter().collect::<String>(), "limit": 20})
        }
        Shape::CustomEquality => {
            let account = format!("A-{}", rng.random_range(1..=data.contacts.max(1)));
            json!({"filter": condition("custom.account", "eq", json!(account))})
        }
        Shape::TwoGroupsWithTag => json!({"filter": {"or": [
            {"and": [condition("tags", "contains", json!(data.tag)),
                     condition("lifecycle_stage", "eq", json!("customer"))]},
            {"and": [condition("custom.tier", "eq", json!("platinum")),
                     condition("custom.score", "gte", json!(990))]}]}}),
        Shape::FullText => {
            json!({"q": NOTE_WORDS[rng.random_range(0..NOTE_WORDS.len())]})
        }
    }
}

/// `[db calls, checkouts, kv ops, app ms]` of a `Server-Timing` header as the API writes it.
fn server_timing(response: &reqwest::Response) -> Option<[f64; 4]> {
    let header = response.headers().get("server-timing")?.to_str().ok()?;
    let numbers: Vec<f64> = header
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    // db;desc="C calls, K checkouts";dur=D, kv;desc="O ops";dur=E, app;dur=A
    match numbers.as_slice() {
        [calls, checkouts, _, ops, _, app] => Some([*calls, *checkouts, *ops, *app]),
        _ => None,
    }
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
    if let Call::DatabaseRead = call {
        let id = ctx.ids[rand::rng().random_range(0..ctx.ids.len())];
        let row = ctx.floor[client]
            .query_opt(
                crm_contacts::FIND_CONTACT_SQL,
                &[&ctx.tenant.as_uuid(), &id],
            )
            .await?;
        return row.map(|_| ()).context("no row");
    }
    let response = send(ctx, call).await?;
    let status = response.status();
    response.bytes().await?;
    if !status.is_success() {
        bail!("status {status}");
    }
    Ok(())
}

/// Sends one HTTP request of `call`.
async fn send(ctx: &BenchContext, call: &Call) -> anyhow::Result<reqwest::Response> {
    let random_id = |among: usize| ctx.ids[rand::rng().random_range(0..among.min(ctx.ids.len()))];
    let get = |url: String| ctx.http.get(url).bearer_auth(&ctx.token).send();
    Ok(match call {
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
            let path = path.replace("{id}", &random_id(usize::MAX).to_string());
            get(format!("{}{path}", ctx.base_url)).await?
        }
        Call::GetRepeated(path) => {
            let path = path.replace("{id}", &random_id(REPEATED_IDS).to_string());
            get(format!("{}{path}", ctx.base_url)).await?
        }
        Call::FloorRead => {
            let floor = ctx.floor_url.as_deref().context("no --floor-url")?;
            let url = format!(
                "{floor}/floor/contacts/{}/{}",
                ctx.tenant,
                random_id(usize::MAX)
            );
            ctx.http.get(url).send().await?
        }
        Call::Search(shape) => {
            ctx.http
                .post(format!("{}/api/v1/contacts/search", ctx.base_url))
                .bearer_auth(&ctx.token)
                .json(&search_body(&ctx.search, *shape))
                .send()
                .await?
        }
        Call::BatchCreate | Call::BatchUpsert => {
            let operations: Vec<serde_json::Value> = match call {
                Call::BatchCreate => (0..BATCH_SIZE)
                    .map(|_| {
                        let email = format!("bench-{}@example.com", uuid::Uuid::now_v7());
                        json!({"op": "create", "contact": {"first_name": "Bench", "last_name": "Batch",
                              "emails": [{"address": email}], "phones": [{"number": "+1 212 736 5000"}],
                              "lifecycle_stage": "lead"}})
                    })
                    .collect(),
                _ => {
                    let title = format!("Title {}", rand::rng().random_range(0..1_000_000));
                    let slices = ctx.upsert_emails.len() / BATCH_SIZE;
                    let slice = ctx
                        .upserts_sent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        % slices;
                    ctx.upsert_emails[slice * BATCH_SIZE..(slice + 1) * BATCH_SIZE]
                        .iter()
                        .map(|email| {
                            json!({"op": "upsert", "contact": {"job_title": title,
                                  "emails": [{"address": email}]}})
                        })
                        .collect()
                }
            };
            let response = ctx
                .http
                .post(format!("{}/api/v1/contacts/batch", ctx.base_url))
                .bearer_auth(&ctx.token)
                .json(&json!({ "operations": operations }))
                .send()
                .await?;
            // A batch whose operations failed answers 207: for a benchmark, an error.
            if response.status() != reqwest::StatusCode::OK {
                bail!("batch answered {}", response.status());
            }
            response
        }
        Call::DatabaseRead => bail!("not an HTTP scenario"),
    })
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
