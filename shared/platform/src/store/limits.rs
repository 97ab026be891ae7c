//! Per-tenant limits on how many of a thing a tenant keeps (tags, lists, subscriptions).

use crate::store::db::{DbError, Tx};
use crm_domain::TenantId;

/// How many rows of `table` the tenant has, counted after taking the tenant's lock on that table
/// (held until the transaction ends), so that two creations at once count one another and cannot
/// both pass the limit. `table` is a name from the code, never from a request.
pub async fn count_locked(tx: &Tx, tenant: TenantId, table: &'static str) -> Result<i64, DbError> {
    // Two statements: the count's snapshot must be taken after the lock is granted.
    tx.execute(
        "select pg_advisory_xact_lock(hashtextextended($2 || ':' || $1::uuid::text, 0))",
        &[tenant.into(), table.into()],
    )
    .await?;
    tx.query_one(
        &format!("select count(*)::int8 from {table} where tenant_id = $1"),
        &[tenant.into()],
    )
    .await?
    .get(0)
}
