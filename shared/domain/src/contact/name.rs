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
    if has_invisible_formatting(text) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            "must not contain bidirectional controls or invisible characters (zero-width joiners \
             only between letters of scripts that use them)",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Bidirectional embeddings, overrides, isolates and marks reorder how a name is shown (a name
/// that reads one way and sorts or matches another); zero-width spaces and the like make two names
/// that look the same differ. The zero-width joiner and non-joiner are letters' business in scripts
/// such as Persian and Devanagari: allowed between two letters outside ASCII, refused elsewhere.
fn has_invisible_formatting(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().any(|(i, c)| match c {
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{200B}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{180E}'
        | '\u{00AD}' => true,
        '\u{200C}' | '\u{200D}' => {
            let joins = |neighbour: Option<&char>| {
                neighbour.is_some_and(|n| !n.is_ascii() && (n.is_alphabetic() || is_mark(*n)))
            };
            !(i > 0 && joins(chars.get(i - 1)) && joins(chars.get(i + 1)))
        }
        _ => false,
    })
}

/// Combining marks (the vowel signs and viramas that joiners sit beside in Indic scripts).
fn is_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0900}'..='\u{0DFF}'
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_invisible_characters_are_refused() {
        for raw in [
            "Ada\u{202E}ecalevol",
            "\u{2067}Ada\u{2069}",
            "A\u{200B}da",
            "Ada\u{200D}",
            "A\u{200C}da",
            "Ada\u{FEFF}",
            "Ad\u{00AD}a",
            "\u{200F}Ada",
        ] {
            let error = PersonName::parse(raw, "/first_name", 100).unwrap_err();
            assert_eq!(error.code, "invalid_characters", "{raw:?}");
        }
        // Persian and Devanagari use the joiners between letters.
        for raw in [
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
            "\u{0915}\u{094D}\u{200D}\u{0937}",
        ] {
            assert!(
                PersonName::parse(raw, "/first_name", 100).is_ok(),
                "{raw:?}"
            );
        }
    }

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
