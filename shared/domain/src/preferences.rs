//! A contact's communication preferences: how to reach it (a preferred channel, a language, a time
//! zone) and the channels it must not be contacted on.

use crate::error::{FieldError, ValidationErrors};
use crate::ids::ContactId;
use serde::{Deserialize, Serialize};

/// The channels a contact is reached on.
pub const CHANNELS: &[&str] = &["email", "phone", "sms", "post"];

/// The longest language tag accepted (RFC 5646 advises 35 characters for the common forms).
pub const MAX_LANGUAGE_CHARS: usize = 64;

/// Which channels the contact must not be contacted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoNotContact {
    #[serde(default)]
    pub email: bool,
    #[serde(default)]
    pub phone: bool,
    #[serde(default)]
    pub sms: bool,
    #[serde(default)]
    pub post: bool,
}

impl DoNotContact {
    /// The channels marked, in the order of [`CHANNELS`].
    pub fn channels(&self) -> impl Iterator<Item = &'static str> + '_ {
        let marked = [self.email, self.phone, self.sms, self.post];
        CHANNELS
            .iter()
            .zip(marked)
            .filter_map(|(channel, marked)| marked.then_some(*channel))
    }
}

/// Preferences as a merge patch's result carries them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesDraft {
    #[serde(default)]
    pub preferred_channel: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub do_not_contact: DoNotContact,
}

/// Valid preferences: a channel of [`CHANNELS`] or none, a well-formed BCP 47 language tag in its
/// canonical case (`pt-BR`, `zh-Hant-TW`) or none, an IANA time zone (`Europe/Lisbon`) or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPreferences {
    pub preferred_channel: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub do_not_contact: DoNotContact,
}

impl NewPreferences {
    pub fn parse(draft: PreferencesDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let preferred_channel = draft.preferred_channel.and_then(|raw| {
            errors.take(parse_channel(&raw, "/preferred_channel").map(str::to_owned))
        });
        let language = draft
            .language
            .and_then(|raw| errors.take(parse_language(&raw, "/language")));
        let time_zone = draft
            .time_zone
            .and_then(|raw| errors.take(parse_time_zone(&raw, "/time_zone")));
        errors.into_result(|| Self {
            preferred_channel,
            language,
            time_zone,
            do_not_contact: draft.do_not_contact,
        })
    }
}

/// A contact's preferences as the API returns them (defaults until first set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub contact_id: ContactId,
    pub preferred_channel: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub do_not_contact: DoNotContact,
    /// 0 until the preferences are first set.
    pub version: i64,
    pub updated_at: Option<String>,
}

impl Preferences {
    /// The preferences of a contact that has not set any: the defaults, version 0.
    pub fn unset(contact_id: ContactId) -> Self {
        Self {
            contact_id,
            preferred_channel: None,
            language: None,
            time_zone: None,
            do_not_contact: DoNotContact::default(),
            version: 0,
            updated_at: None,
        }
    }

    /// What is set, as a write stores it.
    pub fn to_new(&self) -> NewPreferences {
        NewPreferences {
            preferred_channel: self.preferred_channel.clone(),
            language: self.language.clone(),
            time_zone: self.time_zone.clone(),
            do_not_contact: self.do_not_contact,
        }
    }

    /// The writable fields, for JSON Merge Patch.
    pub fn writable_view(&self) -> serde_json::Value {
        serde_json::json!({
            "preferred_channel": self.preferred_channel,
            "language": self.language,
            "time_zone": self.time_zone,
            "do_not_contact": self.do_not_contact,
        })
    }
}

/// One of [`CHANNELS`].
pub fn parse_channel(raw: &str, field: &str) -> Result<&'static str, FieldError> {
    let raw = raw.trim().to_ascii_lowercase();
    CHANNELS
        .iter()
        .find(|channel| **channel == raw)
        .copied()
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_channel",
                format!("must be one of {}", CHANNELS.join(", ")),
            )
        })
}

/// An IANA time zone name, exactly as the tz database spells it.
pub fn parse_time_zone(raw: &str, field: &str) -> Result<String, FieldError> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map(|zone| zone.name().to_owned())
        .map_err(|_| {
            FieldError::new(
                field,
                "invalid_time_zone",
                "must be an IANA time zone, e.g. Europe/Lisbon or America/New_York",
            )
        })
}

/// A well-formed BCP 47 (RFC 5646) language tag, in its canonical case: `language[-extlang]
/// [-Script][-REGION](-variant)*(-x-extension)*[-x-private]`, or a private-use tag `x-...`.
pub fn parse_language(raw: &str, field: &str) -> Result<String, FieldError> {
    let invalid = || {
        FieldError::new(
            field,
            "invalid_language",
            "must be a BCP 47 language tag, e.g. en, pt-BR or zh-Hant-TW",
        )
    };
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_LANGUAGE_CHARS {
        return Err(invalid());
    }
    let subtags: Vec<&str> = raw.split('-').collect();
    if subtags
        .iter()
        .any(|s| s.is_empty() || s.len() > 8 || !s.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(invalid());
    }
    let alpha = |s: &str| s.chars().all(|c| c.is_ascii_alphabetic());
    let digit = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mut out: Vec<String> = Vec::with_capacity(subtags.len());
    let mut rest = subtags.as_slice();
    // A private-use tag: `x-` then 1 to 8 alphanumerics per subtag.
    if rest[0].eq_ignore_ascii_case("x") {
        if rest.len() < 2 {
            return Err(invalid());
        }
        return Ok(raw.to_ascii_lowercase());
    }
    let language = rest[0];
    if !(alpha(language) && (2..=3).contains(&language.len())
        || (5..=8).contains(&language.len()) && alpha(language))
    {
        return Err(invalid());
    }
    out.push(language.to_ascii_lowercase());
    rest = &rest[1..];
    // Up to three extended language subtags (3 letters) after a 2-3 letter language.
    let mut extlangs = 0;
    while language.len() <= 3
        && extlangs < 3
        && rest.first().is_some_and(|s| s.len() == 3 && alpha(s))
    {
        out.push(rest[0].to_ascii_lowercase());
        rest = &rest[1..];
        extlangs += 1;
    }
    if let Some(script) = rest.first().filter(|s| s.len() == 4 && alpha(s)) {
        let mut chars = script.chars();
        let first = chars.next().unwrap_or_default().to_ascii_uppercase();
        out.push(
            std::iter::once(first)
                .chain(chars.map(|c| c.to_ascii_lowercase()))
                .collect(),
        );
        rest = &rest[1..];
    }
    if let Some(region) = rest
        .first()
        .filter(|s| (s.len() == 2 && alpha(s)) || (s.len() == 3 && digit(s)))
    {
        out.push(region.to_ascii_uppercase());
        rest = &rest[1..];
    }
    while let Some(variant) = rest
        .first()
        .filter(|s| s.len() >= 5 || (s.len() == 4 && s.starts_with(|c: char| c.is_ascii_digit())))
    {
        out.push(variant.to_ascii_lowercase());
        rest = &rest[1..];
    }
    // Extensions (a singleton other than x, then subtags of 2 to 8) and a private-use part.
    while let Some(singleton) = rest.first().filter(|s| s.len() == 1) {
        let private = singleton.eq_ignore_ascii_case("x");
        let minimum = if private { 1 } else { 2 };
        let count = rest[1..]
            .iter()
            .take_while(|s| private || s.len() >= minimum && s.len() > 1)
            .count();
        if count == 0 {
            return Err(invalid());
        }
        out.extend(rest[..=count].iter().map(|s| s.to_ascii_lowercase()));
        rest = &rest[count + 1..];
        if private {
            break;
        }
    }
    if !rest.is_empty() {
        return Err(invalid());
    }
    Ok(out.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_well_formed_and_canonically_cased() {
        for (raw, canonical) in [
            ("en", "en"),
            ("PT-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sl-rozaj-biske", "sl-rozaj-biske"),
            ("de-CH-1901", "de-CH-1901"),
            ("en-US-u-ca-gregory", "en-US-u-ca-gregory"),
            ("en-x-private", "en-x-private"),
            ("x-whatever", "x-whatever"),
            ("zh-yue-HK", "zh-yue-HK"),
        ] {
            assert_eq!(
                parse_language(raw, "/language").unwrap(),
                canonical,
                "{raw}"
            );
        }
        for raw in [
            "",
            "e",
            "english-language-tag",
            "en--US",
            "en_US",
            "en-US-u",
            "123",
            "en-ÜS",
            "en-a-b",
        ] {
            assert!(parse_language(raw, "/language").is_err(), "{raw}");
        }
    }

    #[test]
    fn time_zones_are_iana_names_and_channels_known() {
        assert_eq!(
            parse_time_zone(" Europe/Lisbon ", "/time_zone").unwrap(),
            "Europe/Lisbon"
        );
        assert!(parse_time_zone("Mars/Olympus", "/time_zone").is_err());
        assert!(parse_time_zone("+01:00", "/time_zone").is_err());
        assert_eq!(parse_channel("SMS", "/c").unwrap(), "sms");
        assert!(parse_channel("fax", "/c").is_err());
    }
}
