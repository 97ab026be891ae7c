//! Consent records: per contact and purpose, who granted or withdrew what, on which legal basis
//! (GDPR art. 6(1)), from which source, when. Records are only ever appended, so the state of every
//! purpose at any past moment is the latest record made effective at or before it.

use crate::contact::PersonName;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ConsentId, ContactId};
use crate::note::Author;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The lawful bases of GDPR art. 6(1) (a) to (f).
pub const LEGAL_BASES: &[&str] = &[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
];
pub const STATUSES: &[&str] = &["granted", "withdrawn"];
pub const MAX_PURPOSE_CHARS: usize = 64;
pub const MAX_SOURCE_CHARS: usize = 200;
pub const MAX_EVIDENCE_CHARS: usize = 1_000;

/// A consent record as a create body carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentDraft {
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub legal_basis: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub evidence: Option<String>,
    /// When it took effect; now if absent. Never in the future.
    #[serde(default)]
    pub effective_at: Option<String>,
}

/// A valid consent record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConsent {
    pub purpose: String,
    pub status: &'static str,
    pub legal_basis: &'static str,
    pub source: String,
    pub evidence: Option<String>,
    pub effective_at: Option<DateTime<Utc>>,
}

impl NewConsent {
    /// `now` bounds `effective_at`: a record says what happened, not what will.
    pub fn parse(draft: ConsentDraft, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let purpose = match draft.purpose {
            Some(raw) => errors.take(parse_purpose(&raw, "/purpose")),
            None => {
                errors.push(FieldError::new("/purpose", "required", "name the purpose"));
                None
            }
        };
        let mut one_of = |raw: Option<String>, field: &str, allowed: &'static [&'static str]| {
            let found = raw.as_deref().and_then(|raw| {
                let raw = raw.trim();
                allowed.iter().find(|v| **v == raw).copied()
            });
            if found.is_none() {
                errors.push(FieldError::new(
                    field,
                    if raw.is_none() {
                        "required"
                    } else {
                        "invalid_value"
                    },
                    format!("must be one of {}", allowed.join(", ")),
                ));
            }
            found
        };
        let status = one_of(draft.status, "/status", STATUSES);
        let legal_basis = one_of(draft.legal_basis, "/legal_basis", LEGAL_BASES);
        let source = match draft.source {
            Some(raw) => errors
                .take(PersonName::parse(&raw, "/source", MAX_SOURCE_CHARS))
                .flatten(),
            None => None,
        };
        if source.is_none() && !errors.0.iter().any(|e| e.field == "/source") {
            errors.push(FieldError::new(
                "/source",
                "required",
                "say where the consent was given (a form, a call, an email)",
            ));
        }
        let evidence = draft.evidence.and_then(|raw| {
            errors
                .take(PersonName::parse(&raw, "/evidence", MAX_EVIDENCE_CHARS))
                .flatten()
        });
        let effective_at = draft.effective_at.and_then(|raw| {
            let at = errors.take(crate::time::parse(&raw, "/effective_at"))?;
            if at > now {
                errors.push(FieldError::new(
                    "/effective_at",
                    "in_the_future",
                    "a consent record says what happened: it cannot take effect later",
                ));
                return None;
            }
            Some(at)
        });
        errors.into_result(|| Self {
            purpose: purpose.unwrap_or_default(),
            status: status.unwrap_or("granted"),
            legal_basis: legal_basis.unwrap_or("consent"),
            source: source.map(PersonName::into_inner).unwrap_or_default(),
            evidence: evidence.map(PersonName::into_inner),
            effective_at,
        })
    }
}

/// A purpose key: lower-case letters, digits and `_`, starting with a letter, 1 to 64 characters
/// (`marketing_email`, `newsletter`).
pub fn parse_purpose(raw: &str, field: &str) -> Result<String, FieldError> {
    let raw = raw.trim();
    let valid = raw.len() <= MAX_PURPOSE_CHARS
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "invalid_purpose",
            "must be 1 to 64 lower-case letters, digits or _, starting with a letter (e.g. marketing_email)",
        ))
    }
}

/// A consent record as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub id: ConsentId,
    pub contact_id: ContactId,
    pub purpose: String,
    pub status: String,
    pub legal_basis: String,
    pub source: String,
    pub evidence: Option<String>,
    /// When it took effect.
    pub effective_at: String,
    /// Who recorded it: the actor of the change.
    pub recorded_by: Author,
    /// When it was recorded.
    pub recorded_at: String,
}

/// The state of one purpose: its latest record effective at the moment asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurposeState {
    pub purpose: String,
    pub status: String,
    pub legal_basis: String,
    pub source: String,
    pub effective_at: String,
    pub record_id: ConsentId,
}

/// The consent state of a contact at a moment: every purpose it has a record for by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentState {
    pub contact_id: ContactId,
    pub at: String,
    pub purposes: Vec<PurposeState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(value: serde_json::Value) -> ConsentDraft {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_record_names_purpose_status_basis_and_source() {
        let now = Utc::now();
        let ok = NewConsent::parse(
            draft(
                serde_json::json!({"purpose": "newsletter", "status": "granted",
                "legal_basis": "consent", "source": "signup form"}),
            ),
            now,
        )
        .unwrap();
        assert_eq!((ok.status, ok.legal_basis), ("granted", "consent"));
        let fields: Vec<String> = NewConsent::parse(
            draft(
                serde_json::json!({"purpose": "News Letter", "status": "maybe",
                "effective_at": "2999-01-01T00:00:00Z"}),
            ),
            now,
        )
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.field)
        .collect();
        assert_eq!(
            fields,
            [
                "/purpose",
                "/status",
                "/legal_basis",
                "/source",
                "/effective_at"
            ]
        );
    }
}
