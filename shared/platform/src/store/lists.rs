//! What the components that read lists need of a list's definition: the segments component, which
//! owns lists, and the contacts component, which reads a list's contacts and a contact's lists.

use crate::store::db::{DbError, Row, SqlValue, Tx};
use crm_domain::list::{ListKind, ListSummary};
use crm_domain::{ListId, TenantId};
use serde_json::{Map, Value};

/// A list as its contacts are read: which it is, and a smart list's saved filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ListDefinition {
    pub summary: ListSummary,
    /// A smart list's saved filter (the contacts list's filters, as a JSON object).
    pub filter: Option<Map<String, Value>>,
}

const COLUMNS: &str = "id, name, kind, filter";

/// The list `id` of the tenant, if it has one.
pub async fn definition(
    tx: &Tx,
    tenant: TenantId,
    id: ListId,
) -> Result<Option<ListDefinition>, DbError> {
    tx.query_opt(
        &format!("select {COLUMNS} from lists where tenant_id = $1 and id = $2"),
        &[tenant.into(), id.into()],
    )
    .await?
    .map(|row| definition_from_row(&row))
    .transpose()
}

/// Those of the lists `ids` the tenant has, in one statement.
pub async fn definitions(
    tx: &Tx,
    tenant: TenantId,
    ids: &[ListId],
) -> Result<Vec<ListDefinition>, DbError> {
    tx.query(
        &format!(
            "select {COLUMNS} from lists where tenant_id = $1 and id = any($2::text[]::uuid[])"
        ),
        &[tenant.into(), SqlValue::id_array(ids)],
    )
    .await?
    .iter()
    .map(definition_from_row)
    .collect()
}

/// Every smart list of the tenant, by name.
pub async fn smart_lists(tx: &Tx, tenant: TenantId) -> Result<Vec<ListDefinition>, DbError> {
    tx.query(
        &format!(
            "select {COLUMNS} from lists where tenant_id = $1 and kind = 'smart' order by lower(name), id"
        ),
        &[tenant.into()],
    )
    .await?
    .iter()
    .map(definition_from_row)
    .collect()
}

/// A list's id, name and kind, from a row with those columns.
pub fn summary_from_row(row: &Row) -> Result<ListSummary, DbError> {
    let kind: String = row.get("kind")?;
    Ok(ListSummary {
        id: row.get("id")?,
        name: row.get("name")?,
        kind: ListKind::parse(&kind).unwrap_or(ListKind::Static),
    })
}

fn definition_from_row(row: &Row) -> Result<ListDefinition, DbError> {
    let filter: Option<Value> = row.get("filter")?;
    Ok(ListDefinition {
        summary: summary_from_row(row)?,
        filter: match filter {
            Some(Value::Object(filter)) => Some(filter),
            _ => None,
        },
    })
}
