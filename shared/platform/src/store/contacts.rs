//! What every contact sub-resource (notes, tags, later lists and relationships) asks of its
//! contact: whether it is live, optionally holding it for the change.

use crate::store::db::{DbError, Tx};
use crm_domain::{ContactId, TenantId};

/// How a sub-resource's change holds its contact until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// A read: nothing held.
    Nothing,
    /// A new row that refers to the contact: it cannot be deleted for good (erased) meanwhile.
    KeyShare,
    /// A change of a set the contact owns (its tags): changes of the same contact's set queue.
    NoKeyUpdate,
}

/// Whether the contact exists within the tenant and is not deleted; held as `hold` says.
pub async fn is_live(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    hold: Hold,
) -> Result<bool, DbError> {
    let lock = match hold {
        Hold::Nothing => "",
        Hold::KeyShare => " for key share",
        Hold::NoKeyUpdate => " for no key update",
    };
    let statement = format!(
        "select 1 from contacts where tenant_id = $1 and id = $2 and deleted_at is null{lock}"
    );
    Ok(tx
        .query_opt(&statement, &[tenant.into(), contact.into()])
        .await?
        .is_some())
}
