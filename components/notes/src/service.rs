//! Note changes, whoever makes them: each function takes a unit of work and typed arguments and
//! returns the note as stored, audited (`entity_type: note`) and evented (`note.*`) in the unit of
//! work, its author the unit's actor. A note belongs to a live contact: another tenant's contact, a
//! deleted one or another contact's note is not found. Nothing here knows HTTP.

use crate::repository;
use crm_domain::event::NoteAction;
use crm_domain::note::{NewNote, Note, NoteDraft};
use crm_domain::{ContactId, NoteId};
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::contacts::{self, Hold};
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// Writes a note on `contact`, by the unit of work's actor.
pub async fn create(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    draft: NoteDraft,
) -> Result<Note, ApiError> {
    let note = NewNote::parse(draft)?;
    live_contact(uow, contact).await?;
    let created = repository::insert(uow.tx(), uow.tenant(), contact, &note, uow.actor()).await?;
    uow.record_change(NoteAction::Created, created.id, None, &created)
        .await?;
    Ok(created)
}

/// Merges `patch` (RFC 7396) into the note's body and pinned flag when `expected` admits its
/// version (and the tenant's `require_if_match` is met).
pub async fn update(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    id: NoteId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<Note, ApiError> {
    let before = locked(uow, contact, id, expected).await?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: NoteDraft = from_value(view)?;
    let note = NewNote::parse(draft)?;
    let after = repository::update(uow.tx(), uow.tenant(), contact, id, &note).await?;
    uow.record_change(NoteAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Removes the note when `expected` admits its version.
pub async fn delete(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    id: NoteId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let before = locked(uow, contact, id, expected).await?;
    repository::delete(uow.tx(), uow.tenant(), contact, id).await?;
    uow.record_removal(NoteAction::Deleted, id, &before).await
}

async fn live_contact(uow: &UnitOfWork<'_>, contact: ContactId) -> Result<(), ApiError> {
    if contacts::is_live(uow.tx(), uow.tenant(), contact, Hold::KeyShare).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The note of a live contact, locked for a change whose `expected` version it has.
async fn locked(
    uow: &UnitOfWork<'_>,
    contact: ContactId,
    id: NoteId,
    expected: Option<&ExpectedVersion>,
) -> Result<Note, ApiError> {
    let settings = uow.settings().await?;
    live_contact(uow, contact).await?;
    let note = repository::find(uow.tx(), uow.tenant(), contact, id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, note.version)?;
    Ok(note)
}
