//! `crm search-indexes`: builds the index of every custom field marked `indexed`, with statistics
//! of its expression, and drops those no field needs any more, concurrently (writes go on
//! meanwhile), as the schema owner. Run it every minute from cron, beside the webhook dispatch
//! (README, "Scheduled maintenance"); a run with nothing to do makes three catalog reads and
//! returns.

use crm_contacts::search::indexes::{custom_field_index, PREFIX};
use crm_domain::custom_field::FieldType;
use std::collections::BTreeMap;

/// What a run changed, by index name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
}

/// Makes the custom field indexes those the tenants' definitions ask for. One run at a time (an
/// advisory lock); an index a failed build left invalid is dropped and built again.
pub async fn sync(owner_url: &str) -> anyhow::Result<Synced> {
    let client = crate::connect(owner_url).await?;
    client
        .execute(
            "select pg_advisory_lock(hashtext('crm search-indexes'))",
            &[],
        )
        .await?;
    let mut wanted = BTreeMap::new();
    for row in client
        .query(
            "select distinct key, type from custom_fields where indexed and not archived",
            &[],
        )
        .await?
    {
        let key: String = row.get(0);
        let kind = FieldType::parse(row.get(1))
            .ok_or_else(|| anyhow::anyhow!("custom field {key} has an unknown type"))?;
        if let Some(index) = custom_field_index(&key, kind) {
            wanted.insert(index.name.clone(), index);
        }
    }
    let existing = client
        .query(
            "select i.relname, x.indisvalid
             from pg_index x
             join pg_class i on i.oid = x.indexrelid
             join pg_class t on t.oid = x.indrelid
             where t.relname = 'contacts' and t.relnamespace = 'public'::regnamespace
               and starts_with(i.relname, $1)",
            &[&PREFIX],
        )
        .await?;
    // Statistics objects share their index's name (`CustomFieldIndex::statistics`).
    let statistics: Vec<String> = client
        .query(
            "select stxname::text from pg_statistic_ext where starts_with(stxname::text, $1)",
            &[&PREFIX],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut synced = Synced::default();
    let mut valid = Vec::new();
    for row in existing {
        let name: String = row.get(0);
        let is_valid: bool = row.get(1);
        if is_valid && wanted.contains_key(&name) {
            valid.push(name);
            continue;
        }
        client
            .batch_execute(&format!("drop index concurrently if exists {name}"))
            .await?;
        if !wanted.contains_key(&name) {
            synced.dropped.push(name);
        }
    }
    for name in statistics.iter().filter(|name| !wanted.contains_key(*name)) {
        client
            .batch_execute(&format!("drop statistics if exists {name}"))
            .await?;
    }
    let mut new_statistics = false;
    for (name, index) in wanted {
        if !valid.contains(&name) {
            client.batch_execute(&index.create).await?;
            synced.created.push(name.clone());
        }
        // Also for an index built before its statistics were made here; gathered once, when new.
        if !statistics.contains(&name) {
            client.batch_execute(&index.statistics).await?;
            new_statistics = true;
        }
    }
    if new_statistics {
        client.batch_execute("analyze contacts").await?;
    }
    Ok(synced)
}
