//! Names and labels: trimmed, bounded, free of control characters.

use crate::error::FieldError;

/// A person's first, last or display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_CHARS: usize = 100;

    /// Trims `raw`; `Ok(None)` when nothing is left. `field` names the JSON pointer for errors.
    pub fn parse(raw: &str, field: &str, max_chars: usize) -> Result<Option<Self>, FieldError> {
        bounded_text(raw, field, max_chars).map(|text| text.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A short free-text label such as `work` or `mobile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str, field: &str) -> Result<Option<Self>, FieldError> {
        bounded_text(raw, field, Self::MAX_CHARS).map(|text| text.map(Self))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

pub(crate) fn bounded_text(
    raw: &str,
    field: &str,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_drops_blank_names() {
        let name = PersonName::parse("  Ada ", "/first_name", 100).unwrap();
        assert_eq!(name.unwrap().as_str(), "Ada");
        assert_eq!(PersonName::parse("   ", "/first_name", 100).unwrap(), None);
    }

    #[test]
    fn rejects_long_names_by_characters_not_bytes() {
        let exactly = "é".repeat(100);
        assert!(PersonName::parse(&exactly, "/first_name", 100).is_ok());
        let error = PersonName::parse(&"é".repeat(101), "/first_name", 100).unwrap_err();
        assert_eq!(error.code, "too_long");
        assert_eq!(error.field, "/first_name");
    }

    #[test]
    fn rejects_control_characters() {
        let error = PersonName::parse("Ada\u{0}Lovelace", "/last_name", 100).unwrap_err();
        assert_eq!(error.code, "invalid_characters");
    }
}
