//! A new contact as a client describes it, and the rules that turn it into a valid one.

use super::{
    AddressDraft, Contact, ContactEmail, ContactPhone, EmailAddress, Label, LifecycleStage,
    PersonName, PhoneNumber, PostalAddress,
};
use crate::custom_field::CustomSchema;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::ContactId;
use crate::region::Region;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashSet;

pub const MAX_EMAILS: usize = 10;
pub const MAX_PHONES: usize = 10;
/// Display names may be longer than first or last names: they often hold both plus a title.
const MAX_DISPLAY_NAME_CHARS: usize = 200;
const MAX_ORGANISATION_CHARS: usize = 200;
const MAX_SOURCE_CHARS: usize = 100;

/// The request body of a create, as raw strings. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDraft {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub emails: Vec<EmailDraft>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub phones: Vec<PhoneDraft>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub address: Option<AddressDraft>,
    #[serde(default)]
    pub lifecycle_stage: Option<String>,
    /// The user who owns the contact (an id from the identity provider, as in a token's `sub`).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Where the contact came from (`import`, `web_form`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// Values of the tenant's custom fields, by key.
    #[serde(default)]
    pub custom: Option<serde_json::Value>,
}

/// `"emails": null` means no emails, as an absent field does.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailDraft {
    pub address: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneDraft {
    pub number: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

/// A contact that satisfies every rule; only this can be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub display_name: PersonName,
    /// False when the display name was derived rather than given.
    pub display_name_explicit: bool,
    pub emails: Vec<NewEmail>,
    pub phones: Vec<NewPhone>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub address: Option<PostalAddress>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: Option<String>,
    pub source: Option<String>,
    /// Custom field values, each checked against its field.
    pub custom: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEmail {
    pub address: EmailAddress,
    pub label: Option<Label>,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPhone {
    pub number: PhoneNumber,
    pub label: Option<Label>,
    pub primary: bool,
}

impl NewContact {
    /// Validates every field of `draft` and reports all that are wrong at once.
    ///
    /// Phone numbers without a country code are read as dialled from `default_region`.
    /// When no entry is marked primary the first one becomes primary; two marked primary is an error.
    /// Custom field values are checked against `schema`, the tenant's fields.
    pub fn parse(
        draft: ContactDraft,
        default_region: Region,
        schema: CustomSchema<'_>,
    ) -> Result<Self, ValidationErrors> {
        Self::parse_change(draft, default_region, schema, &[])
    }

    /// [`parse`](Self::parse) of a stored contact's new state: a phone number written as `stored`
    /// holds it keeps the reading it was stored with (not read again, with today's default region),
    /// so a change that leaves the phones alone neither pays for libphonenumber again nor
    /// fails on a number the tenant's region now reads otherwise.
    pub fn parse_change(
        draft: ContactDraft,
        default_region: Region,
        schema: CustomSchema<'_>,
        stored: &[ContactPhone],
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let custom = schema.values(draft.custom, default_region, &mut errors);
        let name = |raw: Option<String>, field: &str, max: usize, errors: &mut ValidationErrors| {
            raw.and_then(|raw| errors.take(PersonName::parse(&raw, field, max)).flatten())
        };
        let first_name = name(
            draft.first_name,
            "/first_name",
            PersonName::MAX_CHARS,
            &mut errors,
        );
        let last_name = name(
            draft.last_name,
            "/last_name",
            PersonName::MAX_CHARS,
            &mut errors,
        );
        let display_name = name(
            draft.display_name,
            "/display_name",
            MAX_DISPLAY_NAME_CHARS,
            &mut errors,
        );
        let emails = parse_emails(draft.emails, &mut errors);
        let phones = parse_phones(draft.phones, default_region, stored, &mut errors);
        let mut text = |raw: Option<String>, field: &str, max: usize| {
            raw.and_then(|raw| errors.take(PersonName::parse(&raw, field, max)).flatten())
                .map(PersonName::into_inner)
        };
        let company = text(draft.company, "/company", MAX_ORGANISATION_CHARS);
        let job_title = text(draft.job_title, "/job_title", MAX_ORGANISATION_CHARS);
        let owner_id = text(draft.owner_id, "/owner_id", MAX_ORGANISATION_CHARS);
        let source = text(draft.source, "/source", MAX_SOURCE_CHARS);
        let address = draft
            .address
            .and_then(|a| PostalAddress::parse(a, &mut errors));
        let lifecycle_stage = draft
            .lifecycle_stage
            .filter(|raw| !raw.trim().is_empty())
            .and_then(|raw| errors.take(LifecycleStage::parse(&raw, "/lifecycle_stage")));
        let display_name_explicit = display_name.is_some();

        let display_name = display_name.or_else(|| {
            derive_display_name(first_name.as_ref(), last_name.as_ref(), &emails, &phones)
        });
        if display_name.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "",
                "required",
                "a contact needs a name, an email address or a phone number",
            ));
        }
        match display_name {
            Some(display_name) if errors.is_empty() => Ok(Self {
                first_name,
                last_name,
                display_name,
                display_name_explicit,
                emails,
                phones,
                company,
                job_title,
                address,
                lifecycle_stage,
                owner_id,
                source,
                custom,
            }),
            _ => Err(errors),
        }
    }
}

impl NewContact {
    /// The contact this becomes once stored as `id` at `version` (live, as every write leaves it).
    pub fn to_contact(
        &self,
        id: ContactId,
        version: i64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Contact {
        Contact {
            id,
            first_name: self.first_name.as_ref().map(|n| n.as_str().to_owned()),
            last_name: self.last_name.as_ref().map(|n| n.as_str().to_owned()),
            display_name: self.display_name.as_str().to_owned(),
            emails: self
                .emails
                .iter()
                .map(|e| ContactEmail {
                    address: e.address.as_str().to_owned(),
                    label: e.label.clone().map(Label::into_inner),
                    primary: e.primary,
                })
                .collect(),
            phones: self
                .phones
                .iter()
                .map(|p| ContactPhone {
                    number: p.number.raw().to_owned(),
                    e164: p.number.e164().to_owned(),
                    region: p.number.region().to_string(),
                    national: p.number.national().to_owned(),
                    label: p.label.clone().map(Label::into_inner),
                    primary: p.primary,
                })
                .collect(),
            company: self.company.clone(),
            job_title: self.job_title.clone(),
            address: self.address.clone(),
            lifecycle_stage: self.lifecycle_stage,
            owner_id: self.owner_id.clone(),
            source: self.source.clone(),
            custom: self.custom.clone(),
            display_name_explicit: self.display_name_explicit,
            last_contacted_at: None,
            version,
            created_at,
            updated_at,
            deleted_at: None,
            merged_into: None,
        }
    }
}

fn derive_display_name(
    first: Option<&PersonName>,
    last: Option<&PersonName>,
    emails: &[NewEmail],
    phones: &[NewPhone],
) -> Option<PersonName> {
    let full_name = [first, last]
        .into_iter()
        .flatten()
        .map(PersonName::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let derived = if !full_name.is_empty() {
        full_name
    } else if let Some(email) = emails.iter().find(|e| e.primary) {
        email.address.as_str().to_owned()
    } else {
        phones.iter().find(|p| p.primary)?.number.e164().to_owned()
    };
    PersonName::parse(&derived, "/display_name", MAX_DISPLAY_NAME_CHARS)
        .ok()
        .flatten()
}

fn parse_emails(drafts: Vec<EmailDraft>, errors: &mut ValidationErrors) -> Vec<NewEmail> {
    let entries = drafts
        .into_iter()
        .map(|d| RawEntry {
            value: d.address,
            label: d.label,
            primary: d.primary,
        })
        .collect();
    parse_entries(
        entries,
        "/emails",
        "address",
        MAX_EMAILS,
        errors,
        EmailAddress::parse,
        EmailAddress::key,
    )
    .into_iter()
    .map(|(address, label, primary)| NewEmail {
        address,
        label,
        primary,
    })
    .collect()
}

fn parse_phones(
    drafts: Vec<PhoneDraft>,
    region: Region,
    stored: &[ContactPhone],
    errors: &mut ValidationErrors,
) -> Vec<NewPhone> {
    let entries = drafts
        .into_iter()
        .map(|d| RawEntry {
            value: d.number,
            label: d.label,
            primary: d.primary,
        })
        .collect();
    let parse = |raw: &str, field: &str| {
        let known = stored.iter().find(|phone| phone.number == raw.trim());
        match known.and_then(PhoneNumber::as_stored) {
            Some(phone) => Ok(phone),
            None => PhoneNumber::parse(raw, region, field),
        }
    };
    let key = |phone: &PhoneNumber| phone.e164().to_owned();
    parse_entries(entries, "/phones", "number", MAX_PHONES, errors, parse, key)
        .into_iter()
        .map(|(number, label, primary)| NewPhone {
            number,
            label,
            primary,
        })
        .collect()
}

/// One entry of a contact's email or phone list, as sent.
struct RawEntry {
    value: String,
    label: Option<String>,
    primary: bool,
}

/// The rules every email or phone list follows: at most `max` entries, each value valid and listed
/// once (by `key`), labels bounded, and exactly one primary when there are any.
fn parse_entries<T>(
    entries: Vec<RawEntry>,
    list: &str,
    value_name: &str,
    max: usize,
    errors: &mut ValidationErrors,
    parse: impl Fn(&str, &str) -> Result<T, FieldError>,
    key: impl Fn(&T) -> String,
) -> Vec<(T, Option<Label>, bool)> {
    if entries.len() > max {
        errors.push(too_many(list, max));
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let field = format!("{list}/{index}/{value_name}");
        let value = errors.take(parse(&entry.value, &field));
        let label = label(entry.label, &format!("{list}/{index}/label"), errors);
        if let Some(value) = value {
            if !seen.insert(key(&value)) {
                errors.push(FieldError::new(field, "duplicate", "is listed twice"));
                continue;
            }
            parsed.push((value, label, entry.primary));
        }
    }
    let primaries: Vec<bool> = parsed.iter().map(|(_, _, primary)| *primary).collect();
    if let Some(first) = resolve_primary(&primaries, list, errors) {
        parsed[first].2 = true;
    }
    parsed
}

/// Enforces "exactly one primary when any": returns the index to promote when none is marked.
fn resolve_primary(
    primaries: &[bool],
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<usize> {
    match primaries.iter().filter(|primary| **primary).count() {
        0 if !primaries.is_empty() => Some(0),
        0 | 1 => None,
        _ => {
            errors.push(FieldError::new(
                field,
                "multiple_primary",
                "at most one entry may be primary",
            ));
            None
        }
    }
}

fn label(raw: Option<String>, field: &str, errors: &mut ValidationErrors) -> Option<Label> {
    raw.and_then(|raw| errors.take(Label::parse(&raw, field)).flatten())
}

fn too_many(field: &str, max: usize) -> FieldError {
    FieldError::new(
        field,
        "too_many",
        format!("at most {max} entries are allowed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb() -> Region {
        Region::parse("GB").unwrap()
    }

    fn email(address: &str, primary: bool) -> EmailDraft {
        EmailDraft {
            address: address.into(),
            label: None,
            primary,
        }
    }

    fn phone(number: &str) -> PhoneDraft {
        PhoneDraft {
            number: number.into(),
            label: Some("mobile".into()),
            primary: false,
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<(&str, &str)> {
        errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect()
    }

    #[test]
    fn derives_the_display_name_from_the_names() {
        let draft = ContactDraft {
            first_name: Some(" Ada ".into()),
            last_name: Some("Lovelace".into()),
            ..Default::default()
        };
        let contact = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap();
        assert_eq!(contact.display_name.as_str(), "Ada Lovelace");
    }

    #[test]
    fn derives_the_display_name_from_the_primary_email_without_names() {
        let draft = ContactDraft {
            emails: vec![email("a@example.com", false), email("b@example.com", true)],
            ..Default::default()
        };
        let contact = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap();
        assert_eq!(contact.display_name.as_str(), "b@example.com");
    }

    #[test]
    fn the_first_entry_becomes_primary_when_none_is_marked() {
        let draft = ContactDraft {
            emails: vec![email("a@example.com", false), email("b@example.com", false)],
            phones: vec![phone("07911 123456")],
            ..Default::default()
        };
        let contact = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap();
        assert!(contact.emails[0].primary && !contact.emails[1].primary);
        assert!(contact.phones[0].primary);
    }

    #[test]
    fn a_stored_number_keeps_the_reading_it_was_stored_with() {
        let draft = || ContactDraft {
            phones: vec![phone(" 07911 123456 "), phone("020 7946 0018")],
            ..Default::default()
        };
        let stored = NewContact::parse(draft(), gb(), CustomSchema::default())
            .unwrap()
            .to_contact(ContactId::generate(), 1, Utc::now(), Utc::now())
            .phones;
        assert_eq!(stored[0].e164, "+447911123456");
        let us = Region::parse("US").unwrap();
        // Read again with another default region, a national number means something else.
        let errors = NewContact::parse(draft(), us, CustomSchema::default()).unwrap_err();
        assert_eq!(fields(&errors)[0], ("/phones/0/number", "invalid_phone"));
        // As a change of the stored contact, each number it holds keeps its reading; a new one
        // is read with the default region.
        let mut changed = draft();
        changed.phones.push(phone("(212) 736-5000"));
        let contact = NewContact::parse_change(changed, us, CustomSchema::default(), &stored)
            .unwrap()
            .to_contact(ContactId::generate(), 2, Utc::now(), Utc::now());
        assert_eq!(contact.phones[..2], stored[..]);
        assert_eq!(contact.phones[2].e164, "+12127365000");
        assert_eq!(contact.phones[2].region, "US");
    }

    #[test]
    fn reports_every_invalid_field_together() {
        let draft = ContactDraft {
            first_name: Some("x".repeat(101)),
            emails: vec![
                email("nope", false),
                email("ok@example.com", true),
                email("OK@example.com", true),
            ],
            phones: vec![phone("123"), phone("07911 123456")],
            ..Default::default()
        };
        let errors = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap_err();
        assert_eq!(
            fields(&errors),
            vec![
                ("/first_name", "too_long"),
                ("/emails/0/address", "invalid_email"),
                ("/emails/2/address", "duplicate"),
                ("/phones/0/number", "invalid_phone"),
            ]
        );
    }

    #[test]
    fn two_primaries_are_refused() {
        let draft = ContactDraft {
            emails: vec![email("a@example.com", true), email("b@example.com", true)],
            ..Default::default()
        };
        let errors = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap_err();
        assert_eq!(fields(&errors), vec![("/emails", "multiple_primary")]);
    }

    #[test]
    fn an_empty_contact_is_refused() {
        let errors =
            NewContact::parse(ContactDraft::default(), gb(), CustomSchema::default()).unwrap_err();
        assert_eq!(fields(&errors), vec![("", "required")]);
    }

    #[test]
    fn more_than_ten_emails_are_refused() {
        let draft = ContactDraft {
            emails: (0..11)
                .map(|i| email(&format!("p{i}@example.com"), false))
                .collect(),
            ..Default::default()
        };
        let errors = NewContact::parse(draft, gb(), CustomSchema::default()).unwrap_err();
        assert_eq!(fields(&errors), vec![("/emails", "too_many")]);
    }
}
