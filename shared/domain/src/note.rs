//! Notes on a contact: a Markdown body kept exactly as written, pinned or not, by an author.

use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, NoteId};
use serde::{Deserialize, Serialize};

/// The largest body a note holds, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A note as a create body (and a merge patch's result) carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteDraft {
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub pinned: bool,
}

/// A valid note: a body that is not blank, at most [`MAX_BODY_BYTES`], free of control characters
/// other than tabs and line breaks; stored as given (Markdown is not rendered or rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub body: String,
    pub pinned: bool,
}

impl NewNote {
    pub fn parse(draft: NoteDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let body = errors.take(parse_body(draft.body));
        errors.into_result(|| Self {
            body: body.unwrap_or_default(),
            pinned: draft.pinned,
        })
    }
}

fn parse_body(body: Option<String>) -> Result<String, FieldError> {
    let body = body.unwrap_or_default();
    if body.trim().is_empty() {
        return Err(FieldError::new("/body", "required", "a note needs a body"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(FieldError::new(
            "/body",
            "too_long",
            format!("must be at most {MAX_BODY_BYTES} bytes of UTF-8"),
        ));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(FieldError::new(
            "/body",
            "invalid_characters",
            "must not contain control characters other than tabs and line breaks",
        ));
    }
    Ok(body)
}

/// Who wrote a note: the actor of the change that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// `user`, `api_client`, `import_job`, `workflow_rule` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// A note as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub id: NoteId,
    pub contact_id: ContactId,
    pub body: String,
    pub pinned: bool,
    pub author: Author,
    pub version: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl Note {
    /// The writable fields as a create body carries them, for JSON Merge Patch.
    pub fn writable_view(&self) -> serde_json::Value {
        serde_json::json!({"body": self.body, "pinned": self.pinned})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(body: &str) -> NoteDraft {
        NoteDraft {
            body: Some(body.to_owned()),
            pinned: false,
        }
    }

    #[test]
    fn bodies_are_kept_as_written() {
        let markdown = "  # Call recap\n\n- asked for **pricing**\r\n\t- follow up  ";
        assert_eq!(NewNote::parse(draft(markdown)).unwrap().body, markdown);
    }

    #[test]
    fn blank_long_and_control_bodies_are_refused() {
        let code = |body: &str| NewNote::parse(draft(body)).unwrap_err().0[0].code;
        assert_eq!(code(" \n "), "required");
        assert_eq!(code(&"x".repeat(MAX_BODY_BYTES + 1)), "too_long");
        assert_eq!(code("bell\u{7}"), "invalid_characters");
        assert!(NewNote::parse(draft(&"é".repeat(MAX_BODY_BYTES / 2))).is_ok());
        assert_eq!(
            NewNote::parse(NoteDraft::default()).unwrap_err().0[0].field,
            "/body"
        );
    }
}
