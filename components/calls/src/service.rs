//! Call changes, whoever makes them: each function takes a unit of work and typed arguments and
//! returns the call as stored, with its audit record, its event and the cache invalidations (the
//! call's, and the contacts whose `last_contacted_at` moved) in the unit of work. Nothing here
//! knows HTTP.

use crate::repository::{self, UNKNOWN_CONTACT};
use crm_domain::call::{Call, CallDraft, NewCall};
use crm_domain::event::CallAction;
use crm_domain::{CallId, ContactId};
use crm_platform::document::{from_value, merge_patch};
use crm_platform::edge::cache;
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::tenants::TenantSettings;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// Logs a call. Without `contact_id` it is linked to the tenant's one live contact with the other
/// party's number, if exactly one has it; the contact's `last_contacted_at` follows.
pub async fn log(uow: &UnitOfWork<'_>, draft: CallDraft) -> Result<Call, ApiError> {
    let settings = uow.settings().await?;
    let call = NewCall::parse(draft, uow.region(&settings))?;
    let contact = match call.contact_id {
        Some(contact) => Some(contact),
        None => {
            repository::only_contact_with_number(uow.tx(), uow.tenant(), call.counterpart().e164())
                .await?
        }
    };
    let logged = repository::insert(uow.tx(), uow.tenant(), CallId::generate(), contact, &call)
        .await
        .map_err(on_constraint(UNKNOWN_CONTACT, unknown_contact))?;
    touch_contacts(uow, &[contact]).await?;
    uow.record_change(CallAction::Logged, logged.id, None, &logged)
        .await?;
    Ok(logged)
}

/// Merges `patch` (RFC 7396) into the call's writable fields when `expected` admits its version.
pub async fn update(
    uow: &UnitOfWork<'_>,
    id: CallId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<Call, ApiError> {
    let (settings, before) = locked_call(uow, id, expected).await?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: CallDraft = from_value(view)?;
    let call = NewCall::parse(draft, uow.region(&settings))?;
    let after = repository::update(uow.tx(), uow.tenant(), id, call.contact_id, &call)
        .await
        .map_err(on_constraint(UNKNOWN_CONTACT, unknown_contact))?;
    touch_contacts(uow, &[before.contact_id, call.contact_id]).await?;
    uow.invalidate(cache::CALL, id);
    uow.record_change(CallAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Removes the call when `expected` admits its version.
pub async fn delete(
    uow: &UnitOfWork<'_>,
    id: CallId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let (_, before) = locked_call(uow, id, expected).await?;
    repository::delete(uow.tx(), uow.tenant(), id).await?;
    touch_contacts(uow, &[before.contact_id]).await?;
    uow.invalidate(cache::CALL, id);
    uow.record_removal(CallAction::Deleted, id, &before).await
}

/// The tenant's settings and the call, locked for a change whose `expected` version it has.
async fn locked_call(
    uow: &UnitOfWork<'_>,
    id: CallId,
    expected: Option<&ExpectedVersion>,
) -> Result<(TenantSettings, Call), ApiError> {
    let settings = uow.settings().await?;
    let call = repository::find_for_update(uow.tx(), uow.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, call.version)?;
    Ok((settings, call))
}

/// Moves the contacts' `last_contacted_at` and makes their cached copies stale.
async fn touch_contacts(
    uow: &UnitOfWork<'_>,
    contacts: &[Option<ContactId>],
) -> Result<(), ApiError> {
    for contact in contacts.iter().flatten() {
        repository::touch_contact(uow.tx(), uow.tenant(), *contact).await?;
        uow.invalidate(cache::CONTACT, *contact);
    }
    Ok(())
}

fn unknown_contact() -> ApiError {
    ApiError::invalid_field(
        "/contact_id",
        "not_found",
        "no contact of this tenant has this id",
    )
}
