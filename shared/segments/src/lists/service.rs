//! List changes, whoever makes them: a list's definition (audited and evented as `list.*`) and a
//! static list's members (each added or removed contact audited as a change of that contact and
//! evented as `list.member_added` / `list.member_removed`, all in one statement however many). A
//! smart list's members are computed when read: it has no membership changes. Nothing here knows
//! HTTP.

use super::repository::{self, NAME_TAKEN};
use crate::tags::repository as tags;
use crm_domain::audit::AuditRecord;
use crm_domain::contact::filter::ContactFilter;
use crm_domain::event::{DomainEvent, ListAction, ListMembershipAction};
use crm_domain::list::{
    ContactList, ListDraft, ListKind, ListMembership, MemberOutcome, MemberResult,
    MembershipChange, MembershipResults, NewList, MAX_LISTS_PER_TENANT,
};
use crm_domain::{ContactId, FieldError, ListId, ValidationErrors};
use crm_platform::document::{from_value, merge_patch};
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::limits;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::Value;
use std::collections::HashSet;

/// Defines a list; at most [`MAX_LISTS_PER_TENANT`], names unique case-insensitively.
pub async fn create_list(uow: &UnitOfWork<'_>, draft: ListDraft) -> Result<ContactList, ApiError> {
    let list = NewList::parse(draft)?;
    check_filter(uow, &list).await?;
    if limits::count_locked(uow.tx(), uow.tenant(), "lists").await? >= MAX_LISTS_PER_TENANT {
        return Err(ApiError::conflict(
            format!("a tenant has at most {MAX_LISTS_PER_TENANT} lists"),
            "",
            "too_many_lists",
            "delete a list first",
        ));
    }
    let created = repository::insert(uow.tx(), uow.tenant(), &list)
        .await
        .map_err(on_constraint(NAME_TAKEN, name_taken))?;
    uow.record_change(ListAction::Created, created.id, None, &created)
        .await?;
    Ok(created)
}

/// Merges `patch` (RFC 7396) into the list when `expected` admits its version. A list's kind does
/// not change; a smart list's new filter is checked as a new list's is.
pub async fn update_list(
    uow: &UnitOfWork<'_>,
    id: ListId,
    patch: &Value,
    expected: Option<&ExpectedVersion>,
) -> Result<ContactList, ApiError> {
    let before = locked_list(uow, id, expected).await?;
    let mut view = before.writable_view();
    merge_patch(&mut view, patch);
    let draft: ListDraft = from_value(view)?;
    let list = NewList::parse(draft)?;
    if list.kind != before.kind {
        return Err(ApiError::invalid_field(
            "/kind",
            "immutable",
            "a list's kind does not change; create another list",
        ));
    }
    check_filter(uow, &list).await?;
    let after = repository::update(uow.tx(), uow.tenant(), id, &list)
        .await
        .map_err(on_constraint(NAME_TAKEN, name_taken))?;
    uow.record_change(ListAction::Updated, id, Some(&before), &after)
        .await?;
    Ok(after)
}

/// Deletes the list and its memberships (its `list.deleted` event stands for them).
pub async fn delete_list(
    uow: &UnitOfWork<'_>,
    id: ListId,
    expected: Option<&ExpectedVersion>,
) -> Result<(), ApiError> {
    let before = locked_list(uow, id, expected).await?;
    repository::delete(uow.tx(), uow.tenant(), id).await?;
    uow.record_removal(ListAction::Deleted, id, &before).await
}

/// Adds and removes members of a static list; one result per id, in the order named (`add`,
/// then `remove`). Only live contacts of the tenant are added; anyone can be removed.
pub async fn change_members(
    uow: &UnitOfWork<'_>,
    id: ListId,
    change: MembershipChange,
) -> Result<MembershipResults, ApiError> {
    // Held against a concurrent deletion of the list; its definition is not changed.
    let list = repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    if list.kind == ListKind::Smart {
        return Err(ApiError::conflict(
            "a smart list's members are those its filter matches",
            "/kind",
            "smart_list",
            "change the list's filter, or use a static list",
        ));
    }
    let valid = |ids: &[(String, Option<ContactId>)]| -> Vec<ContactId> {
        ids.iter().filter_map(|(_, id)| *id).collect()
    };
    let live = repository::live_contacts(uow.tx(), uow.tenant(), &valid(&change.add)).await?;
    let added: HashSet<ContactId> = repository::add(uow.tx(), uow.tenant(), id, &live)
        .await?
        .into_iter()
        .collect();
    let removed: HashSet<ContactId> =
        repository::remove(uow.tx(), uow.tenant(), id, &valid(&change.remove))
            .await?
            .into_iter()
            .collect();
    let live: HashSet<ContactId> = live.into_iter().collect();

    let mut results = Vec::with_capacity(change.add.len() + change.remove.len());
    let mut records = Vec::with_capacity(added.len() + removed.len());
    let mut reported = HashSet::new();
    let membership = |contact: ContactId| ListMembership {
        contact_id: contact,
        list_id: id,
        list_name: list.name.clone(),
    };
    for (raw, contact) in change.add {
        let result = match contact {
            None => MemberOutcome::InvalidId,
            Some(contact) if !live.contains(&contact) => MemberOutcome::NotFound,
            Some(contact) if added.contains(&contact) && reported.insert(contact) => {
                let member = membership(contact);
                let action = ListMembershipAction::Added;
                records.push((
                    AuditRecord::of(action, contact, None, Some(&member)),
                    DomainEvent::of(action, contact, &member),
                ));
                MemberOutcome::Added
            }
            Some(_) => MemberOutcome::AlreadyMember,
        };
        results.push(MemberResult {
            contact_id: raw,
            result,
        });
    }
    for (raw, contact) in change.remove {
        let result = match contact {
            None => MemberOutcome::InvalidId,
            Some(contact) if removed.contains(&contact) && reported.insert(contact) => {
                let member = membership(contact);
                let action = ListMembershipAction::Removed;
                records.push((
                    AuditRecord::of(action, contact, Some(&member), None),
                    DomainEvent::of(action, contact, &member),
                ));
                MemberOutcome::Removed
            }
            Some(_) => MemberOutcome::NotMember,
        };
        results.push(MemberResult {
            contact_id: raw,
            result,
        });
    }
    let records: Vec<_> = records
        .iter()
        .map(|(audit, event)| (audit, event))
        .collect();
    uow.record_all(&records).await?;
    Ok(MembershipResults {
        list_id: id,
        added: added.len(),
        removed: removed.len(),
        results,
    })
}

/// A smart list's filter reads as the contacts list's query parameters would (with the tenant's
/// region for phones), and names only tags the tenant has.
async fn check_filter(uow: &UnitOfWork<'_>, list: &NewList) -> Result<(), ApiError> {
    let Some(saved) = &list.filter else {
        return Ok(());
    };
    let settings = uow.settings().await?;
    let filter = ContactFilter::from_saved(saved, uow.region(&settings), "/filter")?;
    let mut errors = ValidationErrors::default();
    for (name, ids) in [
        ("tags_any", &filter.tags_any),
        ("tags_all", &filter.tags_all),
        ("tags_none", &filter.tags_none),
    ] {
        if ids.is_empty() {
            continue;
        }
        let known = tags::known(uow.tx(), uow.tenant(), ids).await?;
        if let Some(unknown) = ids.iter().find(|id| !known.contains(id)) {
            errors.push(FieldError::new(
                format!("/filter/{name}"),
                "not_found",
                format!("no tag of this tenant has the id {unknown}"),
            ));
        }
    }
    Ok(errors.into_result(|| ())?)
}

async fn locked_list(
    uow: &UnitOfWork<'_>,
    id: ListId,
    expected: Option<&ExpectedVersion>,
) -> Result<ContactList, ApiError> {
    let settings = uow.settings().await?;
    let list = repository::find(uow.tx(), uow.tenant(), id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    expected::check(expected, settings.require_if_match, list.version)?;
    Ok(list)
}

fn name_taken() -> ApiError {
    ApiError::conflict(
        "another list has this name",
        "/name",
        "name_taken",
        "list names are unique, whatever their case",
    )
}
