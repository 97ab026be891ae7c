//! The migration runner: applies pending files in order, each in its own transaction, records them
//! with a checksum, refuses to run when a landed file changed, and serialises concurrent runners with
//! an advisory lock.

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Chosen once; any value works as long as every runner uses the same.
const LOCK_KEY: i64 = 0x0c12_a000_0001;

const CREATE_VERSION_TABLE: &str = "
    create table if not exists schema_migrations (
        version text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
    )";

#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<String>,
    pub already: usize,
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Brings the database at `url` (connected as the owner of the schema) up to date.
///
/// # Errors
/// When a landed migration's checksum differs from the file's, or a migration fails (it is then
/// rolled back whole, and the ones before it stay applied).
pub async fn run(url: &str) -> anyhow::Result<Report> {
    run_migrations(url, MIGRATIONS).await
}

pub async fn run_migrations(url: &str, migrations: &[(&str, &str)]) -> anyhow::Result<Report> {
    let client = crate::connect(url).await?;
    // Session-level lock: a second runner waits here, then finds nothing left to do.
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .context("taking the migration lock")?;
    let mut result = apply(&client, migrations).await;
    // Partitions are created ahead on every run, so an operator's routine `crm migrate` keeps the
    // audit log writable month after month.
    if result.is_ok() && has_partitioned_audit(&client).await? {
        if let Err(error) =
            crate::audit::ensure_partitions(&client, crate::audit::MONTHS_AHEAD).await
        {
            result = Err(error);
        }
    }
    client
        .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await
        .context("releasing the migration lock")?;
    result
}

async fn apply(
    client: &tokio_postgres::Client,
    migrations: &[(&str, &str)],
) -> anyhow::Result<Report> {
    client.batch_execute(CREATE_VERSION_TABLE).await?;
    let landed: Vec<(String, String)> = client
        .query("select version, checksum from schema_migrations", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut report = Report {
        applied: Vec::new(),
        already: 0,
    };
    for (name, sql) in migrations {
        let sum = checksum(sql);
        if let Some((_, landed_sum)) = landed.iter().find(|(version, _)| version == name) {
            if *landed_sum != sum {
                bail!("migration {name} was changed after it was applied; restore it and add a new migration instead");
            }
            report.already += 1;
            continue;
        }
        let wrapped = format!("begin;\n{sql}\n;insert into schema_migrations (version, checksum) values ('{name}', '{sum}');\ncommit;");
        if let Err(error) = client.batch_execute(&wrapped).await {
            // A failed statement leaves the transaction aborted; end it before reporting.
            let _ = client.batch_execute("rollback").await;
            return Err(anyhow::anyhow!(
                "migration {name} failed and was rolled back: {}",
                describe(&error)
            ));
        }
        report.applied.push((*name).to_owned());
    }
    Ok(report)
}

/// Creates the database `url` names, connecting to the cluster's `postgres` database to do so.
/// Returns false when it already exists.
pub async fn create_database(url: &str) -> anyhow::Result<bool> {
    let mut config: tokio_postgres::Config =
        url.parse().context("the database URL is not valid")?;
    let name = config
        .get_dbname()
        .context("the database URL names no database")?
        .to_owned();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("database name {name:?}: use letters, digits and underscores");
    }
    config.dbname("postgres");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot connect to PostgreSQL to create the database")?;
    tokio::spawn(connection);
    let exists = client
        .query_opt("select 1 from pg_database where datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("create database \"{name}\""))
            .await?;
    }
    Ok(!exists)
}

async fn has_partitioned_audit(client: &tokio_postgres::Client) -> anyhow::Result<bool> {
    Ok(client
        .query_one(
            "select to_regproc('ensure_audit_partitions') is not null",
            &[],
        )
        .await?
        .get(0))
}

fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_order() {
        assert!(!MIGRATIONS.is_empty());
        let names: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.iter().all(|n| n.ends_with(".sql")));
    }
}
