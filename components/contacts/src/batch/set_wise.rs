//! A run of consecutive creates and upserts made set-wise: every contact validated in memory, the
//! upserts' contacts found and locked in one statement, the emails checked in one, the new contacts
//! written in one, the updated ones in two, and every audit record and event in one, where made one
//! by one each operation costs about six round trips. The answers are those the operations would
//! have had one by one; when that cannot be guaranteed the run is not made here (`None`) and the
//! caller makes its operations one by one:
//! - the tenant has a unique custom field (each value's check reads the table);
//! - two operations of the run name the same email, two upserts find the same contact, or an
//!   operation names an email held by a contact the run updates (a later operation would see the
//!   earlier one's change);
//! - a write meets a unique email taken meanwhile by a concurrent request.

use super::operations::{done, Changed};
use crate::repository::{self, EMAIL_TAKEN};
use crate::service::{self, email_taken};
use crm_domain::contact::{Contact, ContactDraft, EmailAddress, NewContact};
use crm_domain::custom_field::{CustomField, CustomSchema};
use crm_domain::event::ContactAction;
use crm_domain::ContactId;
use crm_platform::document::from_value;
use crm_platform::http::batch::Answer;
use crm_platform::store::db::on_constraint;
use crm_platform::store::expected;
use crm_platform::store::tenants::TenantSettings;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use http::StatusCode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// One operation of the run: an upsert when it has a key to match on.
pub struct Item<'a> {
    pub body: &'a Value,
    pub upsert: bool,
}

/// Makes the run `items`, answering each in order, or `None` when it must be made one by one.
pub async fn apply(
    uow: &UnitOfWork<'_>,
    items: &[Item<'_>],
    settings: &TenantSettings,
    fields: &[CustomField],
) -> Result<Option<Vec<Answer<Changed>>>, ApiError> {
    if fields.iter().any(|f| f.unique && !f.archived) {
        return Ok(None);
    }
    let region = uow.region(settings);
    let mut answers: Vec<Option<Answer<Changed>>> = items.iter().map(|_| None).collect();
    // Each operation read: its draft, and an upsert's key.
    let mut drafts: Vec<Option<(ContactDraft, Option<String>)>> = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (slot, item) in items.iter().enumerate() {
        let read = from_value::<ContactDraft>(item.body.clone()).and_then(|draft| {
            let key = match item.upsert {
                true => Some(service::upsert_key(&draft)?),
                false => None,
            };
            Ok((draft, key))
        });
        match read {
            Ok((draft, key)) => {
                for email in &draft.emails {
                    if let Ok(address) = EmailAddress::parse(&email.address, "") {
                        if !seen.insert(address.key()) {
                            return Ok(None);
                        }
                    }
                }
                drafts.push(Some((draft, key)));
            }
            Err(error) => {
                answers[slot] = Some(Err(error));
                drafts.push(None);
            }
        }
    }
    let keys: Vec<String> = drafts
        .iter()
        .flatten()
        .filter_map(|(_, key)| key.clone())
        .collect();
    let mut found: HashMap<String, Contact> = HashMap::new();
    if !keys.is_empty() {
        let mut contacts = HashSet::new();
        for (key, contact) in
            repository::find_live_by_emails_for_update(uow.tx(), uow.tenant(), keys).await?
        {
            if !contacts.insert(contact.id) {
                return Ok(None);
            }
            found.insert(key, contact);
        }
    }

    // Validated in memory, as each operation alone would be.
    let mut inserts: Vec<(usize, ContactId, NewContact)> = Vec::new();
    let mut updates: Vec<(usize, Contact, NewContact)> = Vec::new();
    for (slot, read) in drafts.into_iter().enumerate() {
        let Some((draft, key)) = read else { continue };
        let before = key.and_then(|key| found.remove(&key));
        let prepared = match before {
            Some(before) => expected::check(None, settings.require_if_match, before.version)
                .and_then(|()| service::patched(&before, items[slot].body, fields, region))
                .map(|patched| match patched {
                    Some(contact) => updates.push((slot, before, contact)),
                    None => answers[slot] = Some(Ok(done(StatusCode::OK, "updated", Some(before)))),
                }),
            None => {
                let schema = CustomSchema {
                    fields,
                    previous: None,
                };
                NewContact::parse(draft, region, schema)
                    .map_err(ApiError::from)
                    .map(|contact| inserts.push((slot, ContactId::generate(), contact)))
            }
        };
        if let Err(error) = prepared {
            answers[slot] = Some(Err(error));
        }
    }

    // An email another live contact holds is a conflict of the operation that names it.
    let emails = |contact: &NewContact| -> Vec<String> {
        contact.emails.iter().map(|e| e.address.key()).collect()
    };
    let named: Vec<String> = inserts
        .iter()
        .map(|(_, _, contact)| contact)
        .chain(updates.iter().map(|(_, _, contact)| contact))
        .flat_map(emails)
        .collect();
    let holders: HashMap<String, ContactId> =
        repository::live_holders_of_emails(uow.tx(), uow.tenant(), named)
            .await?
            .into_iter()
            .collect();
    // An email held by a contact this run updates may be one the update gives up: one by one, an
    // operation after that update would find it free, one before it taken.
    let updating: HashSet<ContactId> = updates.iter().map(|(_, before, _)| before.id).collect();
    let meets_an_update = |contact: &NewContact, own: Option<ContactId>| {
        emails(contact).iter().any(|key| {
            holders
                .get(key)
                .is_some_and(|holder| updating.contains(holder) && Some(*holder) != own)
        })
    };
    if inserts
        .iter()
        .any(|(_, _, contact)| meets_an_update(contact, None))
        || updates
            .iter()
            .any(|(_, before, contact)| meets_an_update(contact, Some(before.id)))
    {
        return Ok(None);
    }
    let taken = |contact: &NewContact, own: Option<ContactId>| {
        emails(contact)
            .iter()
            .any(|key| holders.get(key).is_some_and(|holder| Some(*holder) != own))
    };
    inserts.retain(|(slot, _, contact)| {
        let free = !taken(contact, None);
        if !free {
            answers[*slot] = Some(Err(email_taken()));
        }
        free
    });
    updates.retain(|(slot, before, contact)| {
        let free = !taken(contact, Some(before.id));
        if !free {
            answers[*slot] = Some(Err(email_taken()));
        }
        free
    });

    let written = uow
        .tx()
        .savepoint(async || write(uow, &inserts, &updates).await)
        .await?;
    let (created, updated) = match written {
        Ok(written) => written,
        // A concurrent request took an email meanwhile: made one by one, it is that one's conflict.
        Err(ApiError::Conflict { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    for ((slot, _, _), contact) in inserts.iter().zip(created) {
        answers[*slot] = Some(Ok(done(StatusCode::CREATED, "created", Some(contact))));
    }
    for ((slot, _, _), contact) in updates.iter().zip(updated) {
        answers[*slot] = Some(Ok(done(StatusCode::OK, "updated", Some(contact))));
    }
    Ok(Some(
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(ApiError::Internal(anyhow::anyhow!(
                        "an operation was not answered"
                    )))
                })
            })
            .collect(),
    ))
}

/// The run's writes: new contacts, updated ones, and their audit records and events; a conflict
/// when an email was taken meanwhile.
async fn write(
    uow: &UnitOfWork<'_>,
    inserts: &[(usize, ContactId, NewContact)],
    updates: &[(usize, Contact, NewContact)],
) -> Result<(Vec<Contact>, Vec<Contact>), ApiError> {
    let new: Vec<(ContactId, &NewContact)> = inserts.iter().map(|(_, id, c)| (*id, c)).collect();
    let changed: Vec<(&Contact, &NewContact)> =
        updates.iter().map(|(_, before, c)| (before, c)).collect();
    let created = match new.is_empty() {
        true => Vec::new(),
        false => repository::insert(uow.tx(), uow.tenant(), &new)
            .await
            .map_err(on_constraint(EMAIL_TAKEN, email_taken))?,
    };
    let updated = match changed.is_empty() {
        true => Vec::new(),
        false => repository::update(uow.tx(), uow.tenant(), &changed)
            .await
            .map_err(on_constraint(EMAIL_TAKEN, email_taken))?,
    };
    let records: Vec<(ContactAction, Option<&Contact>, &Contact)> = created
        .iter()
        .map(|after| (ContactAction::Created, None, after))
        .chain(
            updates
                .iter()
                .zip(&updated)
                .map(|((_, before, _), after)| (ContactAction::Updated, Some(before), after)),
        )
        .collect();
    service::record_all(uow, &records).await?;
    Ok((created, updated))
}
