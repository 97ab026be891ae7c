//! Contact changes, whoever makes them (an HTTP request, an import, a workflow, a test): each
//! function takes a unit of work and typed arguments and returns the contact as stored, with its
//! audit record, its event and its cache invalidation in the unit of work. Nothing here knows HTTP.

use crate::custom_fields;
use crate::repository::{self, EMAIL_TAKEN};
use crm_domain::audit::{AuditRecord, FieldChange};
use crm_domain::contact::{Contact, ContactDraft, EmailAddress, NewContact};
use crm_domain::custom_field::{CustomField, CustomSchema};
use crm_domain::event::{ContactAction, DomainEvent};
use crm_domain::ContactId;
use crm_platform::document::{from_value, merge_patch};
use crm_platform::edge::cache;
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::tenants::TenantSettings;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;

/// What an upsert did.
#[derive(Debug)]
pub enum Upserted {
    Created(Contact),
    Updated(Contact),
}

/// Creates a contact from `draft`, validated as a whole.
pub async fn create(uow: &UnitOfWork<'_>, draft: ContactDraft) -> Result<Contact, ApiError> {
    let settings = uow.settings().await?;
    let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
    let schema = CustomSchema {
        fields: &fields,
        previous: None,
    };
    let contact = NewContact::parse(draft, uow.region(&settings), schema)?;
    insert(uow, &fields, &contact).await
}

/// Creates the contact `draft` describes, or, when a live contact has the email `key`, merges
/// `patch` (the same body, as a JSON Merge Patch) into it when `expected` admits its version (the
/// tenant's `require_if_match` applies to that update). An expected version with no contact to
/// update fails: there is no current version to match (RFC 9110, 13.1.1).
pub async fn upsert(
    uow: &UnitOfWork<'_>,
    draft: ContactDraft,
    patch: &Value,
    key: &str,
    expected: Option<&ExpectedVersion>,
) -> Result<Upserted, ApiError> {
    let settings = uow.settings().await?;
    match repository::find_live_by_email_for_update(uow.tx(), uow.tenant(), key).await? {
        Some(before) => {
            expected::check(expected, settings.require_if_match, before.version)?;
            Ok(Upserted::Updated(
                apply_patch(uow, &settings, before, patch).await?,
            ))
        }
        None if expected.is_some() => Err(ApiError::PreconditionFailed),
        None => {
            let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
            let schema = CustomSchema {
                fields: &fields,
                previous: None,
            };
            let contact = NewContact::parse(draft, uow.region(&settings), schema)?;
            Ok(Upserted::Created(insert(uow, &fields, &contact).await?))
        }
    }
}

/// Merges `patch` (RFC 7396) into the contact's writable fields when `expected` admits its
/// version; a deleted contact must be restored first.
pub async fn update(
    uow: &UnitOfWork<'_>,
    id: ContactId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<Contact, ApiError> {
    let settings = uow.settings().await?;
    let before = locked_for_change(uow, id, &settings, expected).await?;
    if before.deleted_at.is_some() {
        return Err(ApiError::conflict(
            "the contact is deleted; restore it before changing it",
            "",
            "deleted",
            "restore the contact first",
        ));
    }
    apply_patch(uow, &settings, before, patch).await
}

/// Soft-deletes the contact (restorable); deleting a deleted contact changes nothing.
pub async fn delete(
    uow: &UnitOfWork<'_>,
    id: ContactId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let settings = uow.settings().await?;
    let before = locked_for_change(uow, id, &settings, expected).await?;
    if before.deleted_at.is_none() {
        let after = repository::set_deleted(uow.tx(), uow.tenant(), id, true).await?;
        record(uow, ContactAction::Deleted, Some(&before), &after).await?;
    }
    Ok(())
}

/// Undoes a soft delete when `expected` admits the contact's version; a conflict when another live
/// contact has taken one of its emails.
pub async fn restore(
    uow: &UnitOfWork<'_>,
    id: ContactId,
    expected: Option<&ExpectedVersion>,
) -> Result<Contact, ApiError> {
    let settings = uow.settings().await?;
    let before = locked_for_change(uow, id, &settings, expected).await?;
    if before.deleted_at.is_none() {
        return Ok(before);
    }
    let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
    if let Some(field) = values_taken(uow, &fields, &before.custom, Some(id))
        .await?
        .first()
    {
        return Err(value_taken(field));
    }
    let after = repository::set_deleted(uow.tx(), uow.tenant(), id, false)
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
    record(uow, ContactAction::Restored, Some(&before), &after).await?;
    Ok(after)
}

/// Removes the contact and its calls for good, scrubs its personal data from audit diffs and outbox
/// events, and turns the stored responses of the requests that made them into `410 Gone`.
pub async fn erase(uow: &UnitOfWork<'_>, id: ContactId) -> Result<(), ApiError> {
    let contact = repository::find_for_update(uow.tx(), uow.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Its calls go with it: no cached copy of one may outlive the erasure.
    for call in repository::calls_of(uow.tx(), uow.tenant(), id).await? {
        uow.invalidate(cache::CALL, call);
    }
    repository::erase(uow.tx(), uow.tenant(), id).await?;
    record(uow, ContactAction::Erased, None, &contact).await
}

/// The email an upsert matches on: the one marked primary, else the first.
pub fn upsert_key(draft: &ContactDraft) -> Result<String, ApiError> {
    let email = draft
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| draft.emails.first())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "/emails",
                "required",
                "an upsert matches on an email: give at least one",
            )
        })?;
    EmailAddress::parse(&email.address, "/emails/0/address")
        .map(|email| email.key())
        .map_err(|e| ApiError::Validation(crm_domain::ValidationErrors(vec![e])))
}

/// The conflict of an email another live contact of the tenant already has.
pub fn email_taken() -> ApiError {
    ApiError::conflict(
        "another live contact of this tenant already has this email address",
        "/emails",
        "duplicate",
        "is already used by another contact",
    )
}

/// Locks the contact for a change and checks the tenant's and the caller's preconditions; a merged
/// contact answers 410 naming its survivor (undo the merge to change it again).
async fn locked_for_change(
    uow: &UnitOfWork<'_>,
    id: ContactId,
    settings: &TenantSettings,
    expected: Option<&ExpectedVersion>,
) -> Result<Contact, ApiError> {
    let contact = repository::find_for_update(uow.tx(), uow.tenant(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(into) = contact.merged_into {
        return Err(ApiError::Merged { into });
    }
    expected::check(expected, settings.require_if_match, contact.version)?;
    Ok(contact)
}

/// Merges `patch` into the writable view of `before`, validates the result as a whole and stores
/// it; a patch that changes nothing stores nothing.
async fn apply_patch(
    uow: &UnitOfWork<'_>,
    settings: &TenantSettings,
    before: Contact,
    patch: &Value,
) -> Result<Contact, ApiError> {
    let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
    let Some(contact) = patched(&before, patch, &fields, uow.region(settings))? else {
        return Ok(before); // Nothing changes: no new version, no audit record, no event.
    };
    unique_values(uow, &fields, &contact, Some(&before)).await?;
    let after = repository::update(uow.tx(), uow.tenant(), &[(&before, &contact)])
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?
        .remove(0);
    record(uow, ContactAction::Updated, Some(&before), &after).await?;
    Ok(after)
}

/// `before` with `patch` merged into its writable view, validated as a whole against the tenant's
/// `fields`; `None` when the patch changes nothing.
pub(crate) fn patched(
    before: &Contact,
    patch: &Value,
    fields: &[CustomField],
    region: crm_domain::Region,
) -> Result<Option<NewContact>, ApiError> {
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: ContactDraft = from_value(view)?;
    let schema = CustomSchema {
        fields,
        previous: Some(&before.custom),
    };
    let contact = NewContact::parse_change(draft, region, schema, &before.phones)?;
    let preview = contact.to_contact(
        before.id,
        before.version,
        before.created_at,
        before.updated_at,
    );
    let changes = AuditRecord::contact(ContactAction::Updated, Some(before), &preview).changes;
    Ok((!changes.is_empty()).then_some(contact))
}

async fn insert(
    uow: &UnitOfWork<'_>,
    fields: &[CustomField],
    contact: &NewContact,
) -> Result<Contact, ApiError> {
    unique_values(uow, fields, contact, None).await?;
    let contact = repository::insert(uow.tx(), uow.tenant(), &[(ContactId::generate(), contact)])
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?
        .remove(0);
    record(uow, ContactAction::Created, None, &contact).await?;
    Ok(contact)
}

/// Refuses a value of a unique custom field that another live contact holds (409 at
/// `/custom/<key>`); a value the contact already had is not checked again.
pub(crate) async fn unique_values(
    uow: &UnitOfWork<'_>,
    fields: &[CustomField],
    contact: &NewContact,
    before: Option<&Contact>,
) -> Result<(), ApiError> {
    let mut changed = contact.custom.clone();
    if let Some(before) = before {
        changed.retain(|key, value| before.custom.get(key) != Some(value));
    }
    let taken = values_taken(uow, fields, &changed, before.map(|b| b.id)).await?;
    match taken.first() {
        Some(field) => Err(value_taken(field)),
        None => Ok(()),
    }
}

/// The unique fields of `fields` whose value in `custom` a live contact (other than `except`) holds.
pub(crate) async fn values_taken<'f>(
    uow: &UnitOfWork<'_>,
    fields: &'f [CustomField],
    custom: &serde_json::Map<String, Value>,
    except: Option<ContactId>,
) -> Result<Vec<&'f CustomField>, ApiError> {
    let mut taken = Vec::new();
    for field in fields.iter().filter(|f| f.unique && !f.archived) {
        let Some(value) = custom.get(&field.key) else {
            continue;
        };
        if custom_fields::repository::value_taken(uow.tx(), uow.tenant(), &field.key, value, except)
            .await?
        {
            taken.push(field);
        }
    }
    Ok(taken)
}

/// The conflict of a unique custom field's value another contact holds (409 at `/custom/<key>`).
fn value_taken(field: &CustomField) -> ApiError {
    ApiError::conflict(
        format!("another contact has this {}", field.label),
        &format!("/custom/{}", field.key),
        "value_taken",
        "the field's values are unique within the tenant",
    )
}

/// The audit record and event of `action`, and the invalidation of the contact's cached copies.
async fn record(
    uow: &UnitOfWork<'_>,
    action: ContactAction,
    before: Option<&Contact>,
    after: &Contact,
) -> Result<(), ApiError> {
    record_all(uow, &[(action, before, after)]).await
}

/// [`record`] of many changes, in one statement.
pub(crate) async fn record_all(
    uow: &UnitOfWork<'_>,
    changes: &[(ContactAction, Option<&Contact>, &Contact)],
) -> Result<(), ApiError> {
    let noted: Vec<_> = changes
        .iter()
        .map(|(action, before, after)| (*action, *before, *after, None))
        .collect();
    record_all_noted(uow, &noted).await
}

/// What a change was beyond its fields (a merge: which, and what moved): a member of the event
/// (`name`) and an entry of the audit record's changes under the same name.
pub(crate) type Note<'a> = Option<(&'static str, &'a Value)>;

/// [`record_all`] of changes that carry a [`Note`] each.
pub(crate) async fn record_all_noted(
    uow: &UnitOfWork<'_>,
    changes: &[(ContactAction, Option<&Contact>, &Contact, Note<'_>)],
) -> Result<(), ApiError> {
    let records: Vec<(AuditRecord, DomainEvent)> = changes
        .iter()
        .map(|(action, before, after, note)| {
            uow.invalidate(cache::CONTACT, after.id);
            let mut audit = AuditRecord::contact(*action, *before, after);
            let mut event = DomainEvent::contact(*action, after);
            if let Some((name, value)) = note {
                audit.changes.push(FieldChange {
                    field: (*name).into(),
                    old: Value::Null,
                    new: (*value).clone(),
                });
                if let Some(data) = event.data.as_object_mut() {
                    data.insert((*name).into(), (*value).clone());
                }
            }
            (audit, event)
        })
        .collect();
    let records: Vec<_> = records
        .iter()
        .map(|(audit, event)| (audit, event))
        .collect();
    uow.record_all(&records).await
}
