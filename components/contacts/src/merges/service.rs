//! Merging contacts and undoing a merge, whoever asks: each takes a unit of work and typed
//! arguments, and writes the contacts, what moves between them, the merge record, the audit
//! records and the events in it. Nothing here knows HTTP.

use super::repository::{self, Holdings, MergeRecord, NewMerge};
use crate::repository as contacts;
use crate::repository::EMAIL_TAKEN;
use crate::service::{email_taken, record_all_noted, unique_values, values_taken};
use crate::{custom_fields, preferences};
use crm_domain::contact::merge::{
    merged_preferences, plan_links, same_preferences, unmerged_view, Attachment, LinkOutcome,
    MergeRequest, Moved, PreferencesChange,
};
use crm_domain::contact::{Contact, ContactDraft, ContactPhone, EmailAddress, NewContact};
use crm_domain::custom_field::CustomSchema;
use crm_domain::event::ContactAction;
use crm_domain::preferences::Preferences;
use crm_domain::{relationship, tag, ContactId, FieldError, MergeId, ValidationErrors};
use crm_platform::document::from_value;
use crm_platform::edge::cache;
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected::{self, ExpectedVersion};
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use serde_json::{json, Map, Value};

/// What a merge did, or would do (`record` is `None` for a dry run).
#[derive(Debug)]
pub struct MergeOutcome {
    pub record: Option<MergeRecord>,
    /// The survivor as the merge leaves it.
    pub contact: Contact,
    pub merged_ids: Vec<ContactId>,
    pub moved: Moved,
}

/// Merges `request.others` into `survivor_id` when `expected` admits the survivor's version: the
/// survivor's fields chosen by the request's rules, everything the others have moved to it, the
/// others marked merged into it, and a record that lets the merge be undone for `undo_days`. A dry
/// run reads, validates and plans the same and writes nothing.
pub async fn merge(
    uow: &UnitOfWork<'_>,
    survivor_id: ContactId,
    request: &MergeRequest,
    expected: Option<&ExpectedVersion>,
    undo_days: u64,
) -> Result<MergeOutcome, ApiError> {
    let (tx, tenant) = (uow.tx(), uow.tenant());
    let settings = uow.settings().await?;
    let everyone: Vec<ContactId> = std::iter::once(survivor_id)
        .chain(request.others.iter().copied())
        .collect();
    let locked = contacts::find_all_for_update(tx, tenant, &everyone).await?;
    let survivor = locked
        .iter()
        .find(|c| c.id == survivor_id)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    if let Some(into) = survivor.merged_into {
        return Err(ApiError::Merged { into });
    }
    if survivor.deleted_at.is_some() {
        return Err(ApiError::conflict(
            "the contact is deleted; restore it before merging into it",
            "",
            "deleted",
            "restore the contact first",
        ));
    }
    expected::check(expected, settings.require_if_match, survivor.version)?;
    let others = mergeable(request, &locked)?;

    let view = request.merged_view(&survivor, &others)?;
    let fields = custom_fields::repository::list(tx, tenant, true).await?;
    let draft: ContactDraft = from_value(view)?;
    let schema = CustomSchema {
        fields: &fields,
        previous: Some(&survivor.custom),
    };
    let stored: Vec<ContactPhone> = std::iter::once(&survivor)
        .chain(&others)
        .flat_map(|contact| contact.phones.iter().cloned())
        .collect();
    let contact = NewContact::parse_change(draft, uow.region(&settings), schema, &stored)
        .map_err(|errors| under("/contact", errors))?;
    let merged_ids: Vec<ContactId> = others.iter().map(|c| c.id).collect();
    let holdings = repository::holdings(tx, tenant, survivor.id, &merged_ids).await?;
    let moved = plan(&survivor, &merged_ids, holdings)?;

    if request.dry_run {
        let mut preview = contact.to_contact(
            survivor.id,
            survivor.version + 1,
            survivor.created_at,
            survivor.updated_at,
        );
        preview.last_contacted_at = locked.iter().filter_map(|c| c.last_contacted_at).max();
        return Ok(MergeOutcome {
            record: None,
            contact: preview,
            merged_ids,
            moved,
        });
    }

    let merged_after = repository::mark_merged(tx, tenant, survivor.id, &others).await?;
    unique_values(uow, &fields, &contact, Some(&survivor)).await?;
    let after = contacts::update(tx, tenant, &[(&survivor, &contact)])
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?
        .remove(0);
    repository::move_to(tx, tenant, survivor.id, &merged_ids, &moved).await?;
    if let Some(change) = &moved.preferences {
        preferences::repository::upsert(tx, tenant, survivor.id, &change.after.to_new()).await?;
    }
    let record = repository::insert(
        tx,
        tenant,
        NewMerge {
            survivor_before: &survivor,
            survivor_after: &after,
            merged_before: &others,
            moved: &moved,
            actor_type: uow.actor().kind(),
            actor: uow.actor().id(),
            undo_days,
        },
    )
    .await?;
    for call in &moved.calls {
        uow.invalidate(cache::CALL, crm_domain::CallId::from_uuid(call.id));
    }
    let about = json!({
        "merge_id": record.id,
        "merged_contact_ids": merged_ids,
        "moved": moved,
    });
    let merged_into = json!({"merge_id": record.id, "merged_into": survivor.id});
    let mut changes = vec![(
        ContactAction::Merged,
        Some(&survivor),
        &after,
        Some(("merge", &about)),
    )];
    for (before, after) in others.iter().zip(&merged_after) {
        changes.push((
            ContactAction::MergedInto,
            Some(before),
            after,
            Some(("merge", &merged_into)),
        ));
    }
    record_all_noted(uow, &changes).await?;
    Ok(MergeOutcome {
        record: Some(record),
        contact: after,
        merged_ids,
        moved,
    })
}

/// The contacts to merge, in the request's order: each must exist and be live (422 for one that
/// does not exist, 409 for one deleted or merged already, every one at fault named).
fn mergeable(request: &MergeRequest, locked: &[Contact]) -> Result<Vec<Contact>, ApiError> {
    let mut missing = ValidationErrors::default();
    let mut unavailable = Vec::new();
    let mut others = Vec::new();
    for (at, id) in request.others.iter().enumerate() {
        let field = format!("/contact_ids/{at}");
        match locked.iter().find(|c| c.id == *id) {
            None => missing.push(FieldError::new(field, "not_found", "no such contact")),
            Some(c) if c.merged_into.is_some() => unavailable.push(FieldError::new(
                field,
                "merged",
                format!(
                    "was merged into {} already",
                    c.merged_into.map(|id| id.to_string()).unwrap_or_default()
                ),
            )),
            Some(c) if c.deleted_at.is_some() => unavailable.push(FieldError::new(
                field,
                "deleted",
                "is deleted: restore it before merging it",
            )),
            Some(c) => others.push(c.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::Validation(missing));
    }
    if !unavailable.is_empty() {
        return Err(ApiError::Conflict {
            detail: "some of the contacts cannot be merged".into(),
            errors: unavailable,
            extra: Map::new(),
        });
    }
    Ok(others)
}

/// What merging `merged` into `survivor` moves, refused (409) when the survivor would carry more
/// tags or links than a contact may.
fn plan(survivor: &Contact, merged: &[ContactId], holdings: Holdings) -> Result<Moved, ApiError> {
    let added = |theirs: &[Attachment], mine: &[uuid::Uuid]| {
        let mut added: Vec<uuid::Uuid> = theirs
            .iter()
            .map(|a| a.id)
            .filter(|id| !mine.contains(id))
            .collect();
        added.sort();
        added.dedup();
        added
    };
    let tags_added = added(&holdings.tags, &holdings.survivor_tags);
    let tags = holdings.survivor_tags.len() + tags_added.len();
    if tags > tag::MAX_TAGS_PER_CONTACT {
        return Err(ApiError::conflict(
            format!(
                "the merged contact would carry {tags} tags, at most {}",
                tag::MAX_TAGS_PER_CONTACT
            ),
            "/contact_ids",
            "too_many_tags",
            "detach some tags first",
        ));
    }
    let lists_added = added(&holdings.lists, &holdings.survivor_lists);
    let relationships = plan_links(&holdings.links, survivor.id, merged);
    let links = holdings
        .links
        .iter()
        .filter(|l| !merged.contains(&l.from_contact_id) && !merged.contains(&l.to_contact_id))
        .count()
        + relationships
            .iter()
            .filter(|l| l.outcome == LinkOutcome::Moved)
            .count();
    if i64::try_from(links).unwrap_or(i64::MAX) > relationship::MAX_PER_CONTACT {
        return Err(ApiError::conflict(
            format!(
                "the merged contact would have {links} relationships, at most {}",
                relationship::MAX_PER_CONTACT
            ),
            "/contact_ids",
            "too_many_relationships",
            "remove some relationships first",
        ));
    }
    let preferences_of = |id: ContactId| {
        holdings
            .preferences
            .iter()
            .find(|p| p.contact_id == id)
            .cloned()
    };
    let mine = preferences_of(survivor.id).unwrap_or_else(|| Preferences::unset(survivor.id));
    let theirs: Vec<Preferences> = merged.iter().filter_map(|id| preferences_of(*id)).collect();
    let after = merged_preferences(&mine, &theirs);
    let preferences = (!same_preferences(&mine, &after)).then_some(PreferencesChange {
        before: mine,
        after,
    });
    Ok(Moved {
        calls: holdings.calls,
        notes: holdings.notes,
        consent_records: holdings.consent_records,
        tags: holdings.tags,
        tags_added,
        lists: holdings.lists,
        lists_added,
        relationships,
        preferences,
    })
}

/// Undoes the merge `id`: the merged contacts live again as they were, everything moved goes back
/// to them, and the survivor's fields the merge changed go back to what they were. Refused with
/// 409 when it was undone already, has expired, or later changes conflict (every one named): a
/// field the merge set and someone changed since, something moved that is no longer on the
/// survivor, an email of a merged contact that another contact holds now.
pub async fn undo(uow: &UnitOfWork<'_>, id: MergeId) -> Result<MergeRecord, ApiError> {
    let (tx, tenant) = (uow.tx(), uow.tenant());
    let record = repository::find(tx, tenant, id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(at) = &record.undone_at {
        return Err(ApiError::conflict(
            format!("the merge was undone at {at}"),
            "",
            "undone",
            "a merge is undone once",
        ));
    }
    if record.expired {
        return Err(ApiError::conflict(
            format!("the merge could be undone until {}", record.expires_at),
            "",
            "expired",
            "merges can be undone for merge_undo_days after they are made",
        ));
    }
    let everyone: Vec<ContactId> = std::iter::once(record.survivor_id)
        .chain(record.merged_ids.iter().copied())
        .collect();
    let locked = contacts::find_all_for_update(tx, tenant, &everyone).await?;
    let survivor = locked
        .iter()
        .find(|c| c.id == record.survivor_id)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    let mut conflicts = Vec::new();
    if let Some(into) = survivor.merged_into {
        conflicts.push(FieldError::new(
            "/survivor",
            "merged",
            format!("was merged into {into} since: undo that merge first"),
        ));
    } else if survivor.deleted_at.is_some() {
        conflicts.push(FieldError::new(
            "/survivor",
            "deleted",
            "was deleted since: restore it first",
        ));
    }
    for (at, merged) in record.merged_ids.iter().enumerate() {
        let still_merged = locked
            .iter()
            .any(|c| c.id == *merged && c.merged_into == Some(survivor.id));
        if !still_merged {
            conflicts.push(FieldError::new(
                format!("/merged_contact_ids/{at}"),
                "changed_since_merge",
                "is no longer merged into the survivor",
            ));
        }
    }
    let view = unmerged_view(&record.survivor_before, &record.survivor_after, &survivor)
        .unwrap_or_else(|fields| {
            conflicts.extend(fields);
            Value::Null
        });
    let email_keys: Vec<String> = record
        .merged_before
        .iter()
        .flat_map(|c| &c.emails)
        .filter_map(|e| EmailAddress::parse(&e.address, "").ok())
        .map(|e| e.key())
        .collect();
    let moved = &record.moved;
    let now = repository::where_now(tx, tenant, survivor.id, moved, email_keys).await?;
    let on_survivor = |kind: &str, items: &[Attachment], now: &dyn Fn(&uuid::Uuid) -> bool| {
        items
            .iter()
            .filter(|item| !now(&item.id))
            .map(|item| {
                FieldError::new(
                    format!("/moved/{kind}/{}", item.id),
                    "changed_since_merge",
                    "is no longer on the survivor (deleted or moved since)",
                )
            })
            .collect::<Vec<_>>()
    };
    let survivor_id = survivor.id;
    conflicts.extend(on_survivor("calls", &moved.calls, &|id| {
        now.calls.get(id) == Some(&Some(survivor_id))
    }));
    conflicts.extend(on_survivor("notes", &moved.notes, &|id| {
        now.notes.get(id) == Some(&survivor_id)
    }));
    conflicts.extend(on_survivor(
        "consent_records",
        &moved.consent_records,
        &|id| now.consent_records.get(id) == Some(&survivor_id),
    ));
    for link in moved
        .relationships
        .iter()
        .filter(|l| l.outcome == LinkOutcome::Moved)
    {
        if now.links.get(&link.was.id) != Some(&(link.now_from_contact_id, link.now_to_contact_id))
        {
            conflicts.push(FieldError::new(
                format!("/moved/relationships/{}", link.was.id),
                "changed_since_merge",
                "was removed since",
            ));
        }
    }
    for (key, holder) in &now.email_holders {
        conflicts.push(FieldError::new(
            "/merged_contacts/emails",
            "duplicate",
            format!("{key} is held by the contact {holder} now"),
        ));
    }
    if let Some(change) = &moved.preferences {
        let current = preferences::repository::find(tx, tenant, survivor.id, true).await?;
        if !same_preferences(&current, &change.after) {
            conflicts.push(FieldError::new(
                "/survivor/preferences",
                "changed_since_merge",
                "changed since the merge: undoing it would lose that change",
            ));
        }
    }
    let fields = custom_fields::repository::list(tx, tenant, true).await?;
    conflicts.extend(unique_values_taken(uow, &fields, &record, &view).await?);
    if !conflicts.is_empty() {
        return Err(later_changes(conflicts));
    }

    let settings = uow.settings().await?;
    let draft: ContactDraft = from_value(view)?;
    let schema = CustomSchema {
        fields: &fields,
        previous: Some(&survivor.custom),
    };
    let contact = NewContact::parse_change(draft, uow.region(&settings), schema, &survivor.phones)
        .map_err(|errors| later_changes(under("/survivor", errors).field_errors().to_vec()))?;
    let after = contacts::update(tx, tenant, &[(&survivor, &contact)])
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?
        .remove(0);
    let merged: Vec<Contact> = locked
        .iter()
        .filter(|c| record.merged_ids.contains(&c.id))
        .cloned()
        .collect();
    let restored = repository::unmark_merged(tx, tenant, &merged)
        .await
        .map_err(on_constraint(EMAIL_TAKEN, email_taken))?;
    repository::move_back(tx, tenant, survivor.id, moved).await?;
    if let Some(change) = &moved.preferences {
        preferences::repository::upsert(tx, tenant, survivor.id, &change.before.to_new()).await?;
    }
    let undone = repository::mark_undone(tx, tenant, id).await?;
    for call in &moved.calls {
        uow.invalidate(cache::CALL, crm_domain::CallId::from_uuid(call.id));
    }
    let about = json!({"merge_id": id, "restored_contact_ids": record.merged_ids});
    let unmerged = json!({"merge_id": id});
    let mut changes = vec![(
        ContactAction::MergeUndone,
        Some(&survivor),
        &after,
        Some(("merge", &about)),
    )];
    for (before, after) in merged.iter().zip(&restored) {
        changes.push((
            ContactAction::Unmerged,
            Some(before),
            after,
            Some(("merge", &unmerged)),
        ));
    }
    record_all_noted(uow, &changes).await?;
    Ok(undone)
}

/// The values of unique custom fields the merged contacts would bring back that another contact
/// holds now: a live contact but the survivor, or the survivor as the undo leaves it (`view`).
async fn unique_values_taken(
    uow: &UnitOfWork<'_>,
    fields: &[crm_domain::custom_field::CustomField],
    record: &MergeRecord,
    view: &Value,
) -> Result<Vec<FieldError>, ApiError> {
    let mut taken = Vec::new();
    for (at, merged) in record.merged_before.iter().enumerate() {
        let elsewhere = values_taken(uow, fields, &merged.custom, Some(record.survivor_id)).await?;
        let survivor_keeps = fields
            .iter()
            .filter(|f| f.unique && !f.archived)
            .filter(|f| {
                let kept = view.get("custom").and_then(|c| c.get(&f.key));
                kept.is_some() && kept == merged.custom.get(&f.key)
            });
        let mut keys: Vec<&str> = elsewhere
            .iter()
            .copied()
            .chain(survivor_keeps)
            .map(|f| f.key.as_str())
            .collect();
        keys.sort();
        keys.dedup();
        taken.extend(keys.into_iter().map(|key| {
            FieldError::new(
                format!("/merged_contacts/{at}/custom/{key}"),
                "value_taken",
                "another contact has this value now: the fields' values are unique",
            )
        }));
    }
    Ok(taken)
}

/// The 409 of an undo that later changes stand in the way of.
fn later_changes(errors: Vec<FieldError>) -> ApiError {
    ApiError::Conflict {
        detail: "later changes conflict with undoing the merge; every one is named".into(),
        errors,
        extra: Map::new(),
    }
}

/// Validation errors of a contact the merge composes, at `prefix` (`/contact/emails/3/address`).
fn under(prefix: &str, errors: ValidationErrors) -> ApiError {
    ApiError::Validation(ValidationErrors(
        errors
            .0
            .into_iter()
            .map(|e| FieldError {
                field: format!("{prefix}{}", e.field),
                ..e
            })
            .collect(),
    ))
}
