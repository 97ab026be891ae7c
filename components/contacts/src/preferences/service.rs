//! Preference changes, whoever makes them: merge-patched under `If-Match`, audited and evented as
//! a change of the contact (`contact.preferences_changed`) when they differ. Nothing here knows
//! HTTP.

use super::repository;
use crm_domain::event::ContactPreferencesChanged;
use crm_domain::preferences::{NewPreferences, Preferences, PreferencesDraft};
use crm_domain::ContactId;
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// Merges `patch` (RFC 7396) into the live contact's preferences when `expected` admits their
/// version (0 before they are first set). A patch that changes nothing writes nothing.
pub async fn update(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<Preferences, ApiError> {
    if !contacts::is_live(uow.tx(), uow.tenant(), contact, Hold::NoKeyUpdate).await? {
        return Err(ApiError::NotFound);
    }
    let settings = uow.settings().await?;
    let before = repository::find(uow.tx(), uow.tenant(), contact, true).await?;
    expected::check(expected, settings.require_if_match, before.version)?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: PreferencesDraft = from_value(view)?;
    let preferences = NewPreferences::parse(draft)?;
    if before.version > 0 && preferences == before.to_new() {
        return Ok(before);
    }
    let after = repository::upsert(uow.tx(), uow.tenant(), contact, &preferences).await?;
    uow.record_change(ContactPreferencesChanged, contact, Some(&before), &after)
        .await?;
    Ok(after)
}
