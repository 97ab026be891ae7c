//! Calls: who called whom, when, how long, how it ended. Numbers are read like contacts' phones.

use crate::contact::PhoneNumber;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{CallId, ContactId};
use crate::region::Region;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const MAX_DURATION_SECONDS: i64 = 7 * 24 * 3600;
const MAX_NOTES_CHARS: usize = 10_000;
const MAX_SHORT_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Completed,
    Missed,
    Busy,
    Failed,
    NoAnswer,
    Voicemail,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

impl CallStatus {
    pub const ALL: [CallStatus; 6] = [
        Self::Completed,
        Self::Missed,
        Self::Busy,
        Self::Failed,
        Self::NoAnswer,
        Self::Voicemail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Missed => "missed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no_answer",
            Self::Voicemail => "voicemail",
        }
    }
}

/// Parses one of a fixed set of names, reporting the allowed ones.
pub fn parse_choice<T: Copy>(
    raw: &str,
    field: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, FieldError> {
    let wanted = raw.trim().to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|choice| name(*choice) == wanted)
        .ok_or_else(|| {
            let allowed: Vec<&str> = all.iter().map(|c| name(*c)).collect();
            FieldError::new(
                field,
                "invalid_choice",
                format!("must be one of {}", allowed.join(", ")),
            )
        })
}

/// A call as a client sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallDraft {
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub direction: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub recording_url: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// A call that satisfies every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    pub contact_id: Option<ContactId>,
    pub direction: Direction,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub started_at: DateTime<Utc>,
    pub duration_seconds: i64,
    pub status: CallStatus,
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub recording_url: Option<String>,
    pub agent_id: Option<String>,
}

impl NewCall {
    /// Validates every field and reports all that are wrong at once. `ended_at` and
    /// `duration_seconds` may both be given only when they agree; neither means 0 seconds.
    pub fn parse(draft: CallDraft, region: Region) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let contact_id = draft
            .contact_id
            .filter(|raw| !raw.trim().is_empty())
            .and_then(|raw| {
                let id = ContactId::parse(raw.trim());
                if id.is_none() {
                    errors.push(FieldError::new(
                        "/contact_id",
                        "invalid_id",
                        "must be a contact id (a UUID)",
                    ));
                }
                id
            });
        let direction = required(&draft.direction, "/direction", &mut errors).and_then(|raw| {
            errors.take(parse_choice(
                raw,
                "/direction",
                &[Direction::Inbound, Direction::Outbound],
                Direction::as_str,
            ))
        });
        let from = required(&draft.from, "/from", &mut errors)
            .and_then(|raw| errors.take(PhoneNumber::parse(raw, region, "/from")));
        let to = required(&draft.to, "/to", &mut errors)
            .and_then(|raw| errors.take(PhoneNumber::parse(raw, region, "/to")));
        let started_at = required(&draft.started_at, "/started_at", &mut errors)
            .and_then(|raw| errors.take(crate::time::parse(raw, "/started_at")));
        let status = required(&draft.status, "/status", &mut errors).and_then(|raw| {
            errors.take(parse_choice(
                raw,
                "/status",
                &CallStatus::ALL,
                CallStatus::as_str,
            ))
        });
        let ended_at = draft
            .ended_at
            .as_deref()
            .and_then(|raw| errors.take(crate::time::parse(raw, "/ended_at")));
        let duration_seconds = match (draft.duration_seconds, ended_at, started_at) {
            (Some(seconds), _, _) if !(0..=MAX_DURATION_SECONDS).contains(&seconds) => {
                errors.push(FieldError::new(
                    "/duration_seconds",
                    "out_of_range",
                    format!("must be from 0 to {MAX_DURATION_SECONDS}"),
                ));
                None
            }
            (seconds, Some(end), Some(start)) => {
                let measured = (end - start).num_seconds();
                if !(0..=MAX_DURATION_SECONDS).contains(&measured) {
                    errors.push(FieldError::new(
                        "/ended_at",
                        "out_of_range",
                        "must be after started_at, within a week",
                    ));
                    None
                } else if seconds.is_some_and(|s| (s - measured).abs() > 1) {
                    errors.push(FieldError::new(
                        "/duration_seconds",
                        "inconsistent",
                        "disagrees with ended_at - started_at",
                    ));
                    None
                } else {
                    Some(measured)
                }
            }
            (seconds, _, _) => Some(seconds.unwrap_or(0)),
        };
        let outcome = text(draft.outcome, "/outcome", MAX_SHORT_CHARS, &mut errors);
        let agent_id = text(draft.agent_id, "/agent_id", MAX_SHORT_CHARS, &mut errors);
        let notes = draft
            .notes
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
        {
            errors.push(FieldError::new(
                "/notes",
                "too_long",
                format!("must be at most {MAX_NOTES_CHARS} characters"),
            ));
        }
        let recording_url = draft
            .recording_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &recording_url {
            let valid = url.len() <= MAX_URL_CHARS
                && url
                    .strip_prefix("https://")
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                errors.push(FieldError::new(
                    "/recording_url",
                    "invalid_url",
                    "must be an https:// URL",
                ));
            }
        }
        match (direction, from, to, started_at, status, duration_seconds) {
            (
                Some(direction),
                Some(from),
                Some(to),
                Some(started_at),
                Some(status),
                Some(duration_seconds),
            ) if errors.is_empty() => Ok(Self {
                contact_id,
                direction,
                from,
                to,
                started_at,
                duration_seconds,
                status,
                outcome,
                notes,
                recording_url,
                agent_id,
            }),
            _ => Err(errors),
        }
    }

    /// The other party's number: the caller of an inbound call, the callee of an outbound one.
    pub fn counterpart(&self) -> &PhoneNumber {
        match self.direction {
            Direction::Inbound => &self.from,
            Direction::Outbound => &self.to,
        }
    }
}

fn required<'a>(raw: &'a str, field: &str, errors: &mut ValidationErrors) -> Option<&'a str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "required", "must be given"));
        None
    } else {
        Some(trimmed)
    }
}

fn text(
    raw: Option<String>,
    field: &str,
    max: usize,
    errors: &mut ValidationErrors,
) -> Option<String> {
    raw.and_then(|raw| {
        errors
            .take(crate::contact::PersonName::parse(&raw, field, max))
            .flatten()
    })
    .map(crate::contact::PersonName::into_inner)
}

/// A number on a call as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallNumber {
    pub number: String,
    pub e164: String,
    pub region: String,
}

impl From<&PhoneNumber> for CallNumber {
    fn from(phone: &PhoneNumber) -> Self {
        Self {
            number: phone.raw().to_owned(),
            e164: phone.e164().to_owned(),
            region: phone.region().to_string(),
        }
    }
}

/// A call as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub contact_id: Option<ContactId>,
    pub direction: Direction,
    pub from: CallNumber,
    pub to: CallNumber,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_seconds: i64,
    pub status: CallStatus,
    pub outcome: Option<String>,
    pub notes: Option<String>,
    pub recording_url: Option<String>,
    pub agent_id: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Call {
    /// The writable fields as a create body carries them, for JSON Merge Patch.
    pub fn writable_view(&self) -> serde_json::Value {
        let mut view = serde_json::json!({
            "contact_id": self.contact_id,
            "direction": self.direction,
            "from": self.from.number,
            "to": self.to.number,
            "started_at": self.started_at,
            "duration_seconds": self.duration_seconds,
            "status": self.status,
            "outcome": self.outcome,
            "notes": self.notes,
            "recording_url": self.recording_url,
            "agent_id": self.agent_id,
        });
        if let Some(fields) = view.as_object_mut() {
            fields.retain(|_, value| !value.is_null());
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> CallDraft {
        CallDraft {
            direction: "inbound".into(),
            from: "020 7946 0018".into(),
            to: "+1 212 736 5000".into(),
            started_at: "2026-11-24T09:00:00Z".into(),
            status: "completed".into(),
            ..Default::default()
        }
    }

    fn gb() -> Region {
        Region::parse("GB").unwrap()
    }

    #[test]
    fn reads_numbers_with_the_region_and_derives_the_duration() {
        let call = NewCall::parse(
            CallDraft {
                ended_at: Some("2026-11-24T09:02:05Z".into()),
                ..draft()
            },
            gb(),
        )
        .unwrap();
        assert_eq!(call.from.e164(), "+442079460018");
        assert_eq!(call.counterpart().e164(), "+442079460018");
        assert_eq!(call.duration_seconds, 125);
    }

    #[test]
    fn reports_every_problem_together() {
        let errors = NewCall::parse(
            CallDraft {
                direction: "sideways".into(),
                from: "12".into(),
                started_at: "yesterday".into(),
                status: "".into(),
                recording_url: Some("http://insecure.example.com/r.mp3".into()),
                ..draft()
            },
            gb(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "/direction",
                "/from",
                "/started_at",
                "/status",
                "/recording_url"
            ]
        );
    }

    #[test]
    fn duration_and_end_must_agree() {
        let errors = NewCall::parse(
            CallDraft {
                ended_at: Some("2026-11-24T09:01:00Z".into()),
                duration_seconds: Some(300),
                ..draft()
            },
            gb(),
        )
        .unwrap_err();
        assert_eq!(errors.0[0].code, "inconsistent");
        let errors = NewCall::parse(
            CallDraft {
                ended_at: Some("2026-11-24T08:59:00Z".into()),
                ..draft()
            },
            gb(),
        )
        .unwrap_err();
        assert_eq!(errors.0[0].field, "/ended_at");
    }
}
