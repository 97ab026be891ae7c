//! `crm`: the operator CLI.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use crm_domain::TenantId;
use crm_platform::config::{Config, JwtConfig};
use crm_platform::edge::kv::KeyValue;
use crm_platform::App;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc instead of the system allocator: a batch of a thousand contacts builds and drops
/// millions of small JSON values, and glibc's malloc and free were a third of its CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Operate the CRM contacts API: migrate the database, create tenants, issue development tokens,
/// seed data, serve the API natively.
///
/// The API's configuration is read from `SPIN_VARIABLE_*` environment variables, the same names
/// Spin's environment provider reads (see the README).
#[derive(Parser)]
#[command(name = "crm", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Connection string of the schema owner (migrations, tenants and seeding run as the owner, not as
/// the application role).
#[derive(clap::Args)]
struct OwnerDatabase {
    /// PostgreSQL URL of the schema owner.
    #[arg(
        long = "database-url",
        env = "CRM_MIGRATE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/crm?sslmode=disable"
    )]
    url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (safe to run concurrently; refuses edited migrations).
    Migrate {
        #[command(flatten)]
        database: OwnerDatabase,
        /// Create the database first when it does not exist (local development).
        #[arg(long)]
        create_database: bool,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Purge expired idempotency keys, contact merges past their undo time and expired exports, and finished
    /// deliveries and fanned-out outbox events older than the retention, and create the audit
    /// partitions ahead (run daily, e.g. from cron).
    Maintain {
        /// Days finished deliveries and delivered events are kept.
        #[arg(long, default_value_t = 30)]
        retention_days: i32,
        #[command(flatten)]
        database: OwnerDatabase,
    },
    /// Build the index of every custom field marked `indexed` and drop those no field needs,
    /// concurrently, without blocking writes (run every minute, e.g. from cron).
    SearchIndexes {
        #[command(flatten)]
        database: OwnerDatabase,
    },
    /// Maintain the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a development HS256 token signed with `jwt_hs256_secret`.
    Token {
        /// The tenant the token acts for.
        #[arg(long)]
        tenant: String,
        /// Space-separated scopes, e.g. "contacts:read contacts:write".
        #[arg(long)]
        scopes: String,
        /// Lifetime: 90s, 30m, 1h, 12h; at most the deployment's `jwt_max_lifetime_seconds` (24h by
        /// default).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The `sub` claim: who the audit trail records as the actor.
        #[arg(long, default_value = "dev")]
        subject: String,
    },
    /// Insert synthetic contacts for a tenant (bulk COPY; no audit records or events).
    Seed {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        contacts: usize,
        #[command(flatten)]
        database: OwnerDatabase,
    },
    /// Import a CSV or NDJSON file of contacts into a tenant: an import job (as `POST
    /// /api/v1/imports` makes), uploaded and worked here, with progress on stderr and a summary.
    /// Reads the API's `SPIN_VARIABLE_*` configuration, as `serve` does.
    Import {
        /// The file.
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
        /// `csv` or `ndjson` (by default, from the file's extension: `.ndjson`/`.jsonl`, else csv).
        #[arg(long)]
        format: Option<String>,
        /// `COLUMN=FIELD`, repeatable: the column's target (`emails`, `custom.plan`, ...); an empty
        /// FIELD ignores the column. Columns not named map by their own name.
        #[arg(long = "mapping", value_name = "COLUMN=FIELD")]
        mapping: Vec<String>,
        /// A CSV's delimiter (found from the first line when absent).
        #[arg(long)]
        delimiter: Option<String>,
        /// `create_only`, `update_by_email`, `update_by_external_id` or `skip_duplicates`.
        #[arg(long, default_value = "update_by_email")]
        dedupe: String,
        /// The unique custom field that identifies a contact (`update_by_external_id`).
        #[arg(long)]
        external_id: Option<String>,
        /// Count what would happen; change no contact.
        #[arg(long)]
        dry_run: bool,
        /// A static list every imported contact joins.
        #[arg(long)]
        list_id: Option<String>,
    },
    /// Export a tenant's contacts as CSV or NDJSON (as `GET /api/v1/contacts/export` does), to a file
    /// or stdout, with progress on stderr. Reads the API's `SPIN_VARIABLE_*` configuration.
    Export {
        #[arg(long)]
        tenant: String,
        /// `csv` or `ndjson`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// `NAME=VALUE`, repeatable: a filter of `GET /api/v1/contacts` (`company=Acme`,
        /// `contactable_via=email`, `sort=-updated_at`, ...).
        #[arg(long = "filter", value_name = "NAME=VALUE")]
        filters: Vec<String>,
        /// Where to write (stdout when absent).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Serve every component's routes natively (for machines without Spin).
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        /// The key-value store for rate limits and the read cache: `memory` (this process only)
        /// or a Redis URL (`redis://127.0.0.1:6379`), shared by every server that uses it.
        #[arg(long, env = "CRM_KV", default_value = "memory")]
        kv: String,
        /// Seconds between periodic webhook dispatch passes (retries); wake-ups start one at once.
        #[arg(long, default_value_t = 1)]
        dispatch_interval: u64,
        /// Seconds a client has to send a request's head; a connection past it is closed.
        #[arg(long, default_value_t = 10)]
        header_read_timeout: u64,
        /// Seconds a client has to send a request's body after its head; past it: 400.
        #[arg(long, default_value_t = 30)]
        body_read_timeout: u64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Create the monthly partitions up to MONTHS ahead (run monthly, e.g. from cron).
    Maintain {
        #[arg(long, default_value_t = crm::audit::MONTHS_AHEAD)]
        months: i32,
        #[command(flatten)]
        database: OwnerDatabase,
    },
    /// Delete records past each tenant's retention and drop partitions past every tenant's.
    Purge {
        /// Retention of tenants that set none.
        #[arg(long, default_value_t = 24)]
        default_retention_months: i32,
        #[command(flatten)]
        database: OwnerDatabase,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Change a tenant's settings.
    Set {
        /// The tenant id.
        tenant: String,
        /// Require `If-Match` on every change to a contact (answers 428 without it).
        #[arg(long)]
        require_if_match: Option<bool>,
        /// Default region for phone numbers written without a country code.
        #[arg(long)]
        region: Option<String>,
        /// Rate-limit overrides as JSON: {"tenant_per_minute": N, "principal_per_minute": N,
        /// "expensive_per_minute": N}; members left out keep the defaults. Applies within a minute.
        #[arg(long)]
        rate_limits: Option<String>,
        /// Months of audit records to keep (`crm audit purge` deletes older ones).
        #[arg(long)]
        audit_retention_months: Option<i32>,
        /// `suspended`: the tenant's tokens answer 403 until it is `active` again (applies within
        /// `tenant_cache_seconds`).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        database: OwnerDatabase,
    },
    /// Create a tenant and print its id.
    Create {
        /// The tenant's display name.
        name: String,
        /// Default region for phone numbers written without a country code.
        #[arg(long, default_value = "US")]
        region: String,
        #[command(flatten)]
        database: OwnerDatabase,
    },
}

#[tokio::main]
async fn main() {
    crm_platform::logging::init();
    if let Err(error) = run(Cli::parse()).await {
        tracing::error!(error = format!("{error:#}"), "crm failed");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate {
            database,
            create_database,
        } => {
            if create_database && crm::migrate::create_database(&database.url).await? {
                println!("created the database");
            }
            let report = crm::migrate::run(&database.url).await?;
            for name in &report.applied {
                println!("applied {name}");
            }
            println!(
                "{} applied, {} already up to date",
                report.applied.len(),
                report.already
            );
        }
        Command::SearchIndexes { database } => {
            let synced = crm::search_indexes::sync(&database.url).await?;
            for name in &synced.created {
                println!("built {name}");
            }
            for name in &synced.dropped {
                println!("dropped {name}");
            }
            println!(
                "{} built, {} dropped",
                synced.created.len(),
                synced.dropped.len()
            );
        }
        Command::Maintain {
            retention_days,
            database,
        } => {
            let purged = crm::maintain::purge(&database.url, retention_days).await?;
            println!(
                "purged {} expired idempotency key(s), {} finished deliver(ies), {} delivered event(s), {} expired merge(s), {} expired export(s)",
                purged.idempotency_keys, purged.deliveries, purged.events, purged.merges, purged.exports
            );
            let created = crm::audit::maintain(&database.url, crm::audit::MONTHS_AHEAD).await?;
            println!("{created} audit partition(s) created");
        }
        Command::Audit {
            command: AuditCommand::Maintain { months, database },
        } => {
            let created = crm::audit::maintain(&database.url, months).await?;
            println!("{created} audit partition(s) created");
        }
        Command::Audit {
            command:
                AuditCommand::Purge {
                    default_retention_months,
                    database,
                },
        } => {
            let report = crm::audit::purge(&database.url, default_retention_months).await?;
            println!(
                "{} audit record(s) deleted; partitions dropped: {}",
                report.deleted_records,
                if report.dropped_partitions.is_empty() {
                    "none".into()
                } else {
                    report.dropped_partitions.join(", ")
                }
            );
        }
        Command::Tenant {
            command:
                TenantCommand::Set {
                    tenant,
                    require_if_match,
                    region,
                    rate_limits,
                    audit_retention_months,
                    status,
                    database,
                },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let changes = crm::tenants::TenantUpdate {
                require_if_match,
                region: region.as_deref(),
                rate_limits: rate_limits.as_deref(),
                audit_retention_months,
                status: status.as_deref(),
            };
            crm::tenants::update(&database.url, tenant, changes).await?;
            println!("updated {tenant}");
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    region,
                    database,
                },
        } => {
            println!(
                "{}",
                crm::tenants::create(&database.url, &name, &region).await?
            );
        }
        Command::Token {
            tenant,
            scopes,
            ttl,
            subject,
        } => {
            let jwt = JwtConfig::from_env()?;
            let tenant = parse_tenant(&tenant)?;
            let token = crm_platform::auth::issue_hs256_token(
                &jwt,
                &subject,
                tenant,
                &scopes,
                parse_ttl(&ttl)?,
            )?;
            println!("{token}");
        }
        Command::Seed {
            tenant,
            contacts,
            database,
        } => crm::seed::run(&database.url, parse_tenant(&tenant)?, contacts).await?,
        Command::Import {
            file,
            tenant,
            format,
            mapping,
            delimiter,
            dedupe,
            external_id,
            dry_run,
            list_id,
        } => {
            let app = App::new(Config::from_env()?, KeyValue::memory())?;
            let format = format.unwrap_or_else(|| {
                let extension = file
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default();
                if matches!(extension, "ndjson" | "jsonl") {
                    "ndjson"
                } else {
                    "csv"
                }
                .to_owned()
            });
            let mapping = mapping
                .iter()
                .map(|pair| {
                    let (column, field) = pair
                        .split_once('=')
                        .with_context(|| format!("--mapping {pair:?}: use COLUMN=FIELD"))?;
                    let target = match field {
                        "" => serde_json::Value::Null,
                        field => serde_json::Value::from(field),
                    };
                    Ok((column.to_owned(), target))
                })
                .collect::<anyhow::Result<serde_json::Map<_, _>>>()?;
            let draft = crm_domain::import::ImportDraft {
                format,
                delimiter,
                mapping: Some(mapping),
                dedupe: Some(dedupe),
                external_id,
                dry_run,
                list_id,
            };
            let job = crm::transfer::import(&app, parse_tenant(&tenant)?, &file, draft).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
        }
        Command::Export {
            tenant,
            format,
            filters,
            output,
        } => {
            let app = Arc::new(App::new(Config::from_env()?, KeyValue::memory())?);
            let format = match format.as_str() {
                "csv" => crm_domain::import::Format::Csv,
                "ndjson" => crm_domain::import::Format::Ndjson,
                other => bail!("--format {other:?}: use csv or ndjson"),
            };
            let filters = filters
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(name, value)| (name.to_owned(), value.to_owned()))
                        .with_context(|| format!("--filter {pair:?}: use NAME=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            crm::transfer::export(app, parse_tenant(&tenant)?, &filters, format, &mut out).await?;
        }
        Command::Serve {
            listen,
            kv,
            dispatch_interval,
            header_read_timeout,
            body_read_timeout,
        } => {
            let kv = match kv.as_str() {
                "memory" => KeyValue::memory(),
                url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                    KeyValue::redis(url).await
                }
                other => bail!("--kv {other:?}: use memory or a redis:// URL"),
            };
            let app = Arc::new(App::new(Config::from_env()?, kv)?);
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            app.db
                .ping()
                .await
                .context("the database is not reachable with database_url")?;
            tracing::info!(address = %format!("http://{listen}"), "serving");
            tokio::spawn(crm::dispatcher::run(
                app.clone(),
                Duration::from_secs(dispatch_interval.max(1)),
            ));
            tokio::spawn(crm::jobs::run(
                app.clone(),
                Duration::from_secs(dispatch_interval.max(1)),
            ));
            let timeouts = crm::server::ClientTimeouts {
                header_read: Duration::from_secs(header_read_timeout.max(1)),
                body_read: Duration::from_secs(body_read_timeout.max(1)),
            };
            crm::server::serve(listener, app, timeouts, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
    }
    Ok(())
}

fn parse_tenant(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).with_context(|| format!("{raw:?} is not a tenant id (a UUID)"))
}

fn parse_ttl(raw: &str) -> anyhow::Result<Duration> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let number: u64 = number
        .parse()
        .with_context(|| format!("ttl {raw:?} must start with a number"))?;
    let seconds = match unit {
        "s" | "" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => bail!("ttl {raw:?}: use s, m, h or d"),
    };
    Ok(Duration::from_secs(seconds))
}
