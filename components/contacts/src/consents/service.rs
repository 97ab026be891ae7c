//! Consent records, whoever appends them: a live contact's, recorded by the change's actor, audited
//! and evented (`consent.recorded`). Records are never changed; a withdrawal is a new record.
//! Nothing here knows HTTP.

use super::repository;
use crm_domain::consent::{ConsentDraft, ConsentRecord, NewConsent};
use crm_domain::event::ConsentRecorded;
use crm_domain::ContactId;
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;

/// Appends a record to the live contact's consent history.
pub async fn record(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    draft: ConsentDraft,
) -> Result<ConsentRecord, ApiError> {
    let consent = NewConsent::parse(draft, chrono::Utc::now())?;
    if !contacts::is_live(uow.tx(), uow.tenant(), contact, Hold::KeyShare).await? {
        return Err(ApiError::NotFound);
    }
    let record = repository::insert(uow.tx(), uow.tenant(), contact, &consent, uow.actor()).await?;
    uow.record_change(ConsentRecorded, record.id, None, &record)
        .await?;
    Ok(record)
}
