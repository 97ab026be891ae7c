//! Audit log maintenance: monthly partitions ahead of time, and retention.

use anyhow::Context;
use chrono::{Datelike, Months, NaiveDate, Utc};

/// How many months of partitions are kept ready beyond the current one.
pub const MONTHS_AHEAD: i32 = 12;

/// Creates any missing monthly partition from this month through `months` ahead. Returns how many.
pub async fn maintain(owner_url: &str, months: i32) -> anyhow::Result<i32> {
    let client = crate::connect(owner_url).await?;
    ensure_partitions(&client, months).await
}

pub(crate) async fn ensure_partitions(
    client: &tokio_postgres::Client,
    months: i32,
) -> anyhow::Result<i32> {
    Ok(client
        .query_one("select ensure_audit_partitions(now(), $1)", &[&months])
        .await
        .context("creating audit partitions (has `crm migrate` run?)")?
        .get(0))
}

#[derive(Debug, PartialEq, Eq)]
pub struct PurgeReport {
    pub deleted_records: u64,
    pub dropped_partitions: Vec<String>,
}

/// Deletes every tenant's records older than its retention (`settings.audit_retention_months`, else
/// `default_months`), then drops the monthly partitions that ended before every tenant's retention.
pub async fn purge(owner_url: &str, default_months: i32) -> anyhow::Result<PurgeReport> {
    let client = crate::connect(owner_url).await?;
    let deleted_records = client
        .execute(
            "delete from audit_log a using tenants t
             where a.tenant_id = t.id
               and a.occurred_at < now() - make_interval(months =>
                   coalesce((t.settings->>'audit_retention_months')::int, $1))",
            &[&default_months],
        )
        .await
        .context("deleting expired audit records")?;
    let longest: i32 = client
        .query_one(
            "select greatest($1, coalesce(max((settings->>'audit_retention_months')::int), 0)) from tenants",
            &[&default_months],
        )
        .await?
        .get(0);
    let today = Utc::now().date_naive();
    let cutoff = first_of_month(today)
        .checked_sub_months(Months::new(u32::try_from(longest).unwrap_or(0)))
        .context("retention reaches before year 0")?;
    let partitions: Vec<String> = client
        .query(
            "select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
             where i.inhparent = 'audit_log'::regclass order by 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut dropped_partitions = Vec::new();
    for name in partitions {
        let Some(start) = partition_month(&name) else {
            continue;
        };
        let end = start
            .checked_add_months(Months::new(1))
            .context("month overflow")?;
        if end <= cutoff {
            client
                .batch_execute(&format!("drop table if exists \"{name}\""))
                .await?;
            dropped_partitions.push(name);
        }
    }
    Ok(PurgeReport {
        deleted_records,
        dropped_partitions,
    })
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// `audit_log_2026_11` -> 2026-11-01.
fn partition_month(name: &str) -> Option<NaiveDate> {
    let suffix = name.strip_prefix("audit_log_")?;
    let (year, month) = suffix.split_once('_')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_partition_months() {
        assert_eq!(
            partition_month("audit_log_2026_11"),
            NaiveDate::from_ymd_opt(2026, 11, 1)
        );
        assert_eq!(partition_month("audit_log_v1"), None);
        assert_eq!(partition_month("contacts"), None);
    }
}
