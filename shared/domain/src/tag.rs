//! Tags: a tenant's vocabulary, and the set attached to a contact.

use crate::contact::PersonName;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, TagId};
use serde::{Deserialize, Serialize};

/// The most tags one contact carries.
pub const MAX_TAGS_PER_CONTACT: usize = 100;
/// The most tags one tenant defines.
pub const MAX_TAGS_PER_TENANT: i64 = 10_000;
pub const MAX_NAME_CHARS: usize = 50;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A tag as a create body (and a merge patch's result) carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagDraft {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A valid tag: a name (trimmed, 1 to 50 characters, the rules of names), a colour `#rrggbb`
/// (lower-cased) or none, a description of at most 500 characters or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTag {
    pub name: String,
    pub colour: Option<String>,
    pub description: Option<String>,
}

impl NewTag {
    pub fn parse(draft: TagDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = match draft.name {
            Some(raw) => errors
                .take(PersonName::parse(&raw, "/name", MAX_NAME_CHARS))
                .flatten(),
            None => None,
        };
        if name.is_none() && errors.is_empty() {
            errors.push(FieldError::new("/name", "required", "a tag needs a name"));
        }
        let colour = draft.colour.and_then(|raw| errors.take(parse_colour(&raw)));
        let description = draft.description.and_then(|raw| {
            errors
                .take(PersonName::parse(
                    &raw,
                    "/description",
                    MAX_DESCRIPTION_CHARS,
                ))
                .flatten()
        });
        errors.into_result(|| Self {
            name: name.map(PersonName::into_inner).unwrap_or_default(),
            colour,
            description: description.map(PersonName::into_inner),
        })
    }
}

fn parse_colour(raw: &str) -> Result<String, FieldError> {
    let colour = raw.trim().to_ascii_lowercase();
    let hex = colour.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(colour)
    } else {
        Err(FieldError::new(
            "/colour",
            "invalid_colour",
            "must be #rrggbb, e.g. #1f77b4",
        ))
    }
}

/// A tag as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub id: TagId,
    pub name: String,
    pub colour: Option<String>,
    pub description: Option<String>,
    /// How many contacts carry it.
    pub contact_count: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Tag {
    /// The writable fields as a create body carries them, for JSON Merge Patch.
    pub fn writable_view(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name, "colour": self.colour, "description": self.description
        })
    }
}

/// A tag as a contact shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedTag {
    pub id: TagId,
    pub name: String,
    pub colour: Option<String>,
}

/// The tags a contact carries, by name: what its tag changes are audited and evented as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTags {
    pub contact_id: ContactId,
    pub tags: Vec<AttachedTag>,
}

/// A body naming one tag to attach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagAttachment {
    pub tag_id: String,
}

/// One operation of a tags batch (`POST /api/v1/tags/batch`): a tag attached to or detached from
/// a contact.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum TagOperation {
    Attach { contact_id: String, tag_id: String },
    Detach { contact_id: String, tag_id: String },
}

/// A body naming the whole set of tags a contact should carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSet {
    pub tag_ids: Vec<String>,
}

/// Reads tag ids (at `field`/i), without repeats, at most [`MAX_TAGS_PER_CONTACT`].
pub fn parse_tag_ids(raw: &[String], field: &str) -> Result<Vec<TagId>, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if raw.len() > MAX_TAGS_PER_CONTACT {
        errors.push(FieldError::new(
            field,
            "too_many",
            format!("a contact carries at most {MAX_TAGS_PER_CONTACT} tags"),
        ));
    }
    let mut ids: Vec<TagId> = Vec::with_capacity(raw.len());
    for (index, value) in raw.iter().enumerate() {
        match TagId::parse(value.trim()) {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("{field}/{index}"),
                "invalid_id",
                "must be a tag id (a UUID)",
            )),
        }
    }
    errors.into_result(|| ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str, colour: Option<&str>) -> TagDraft {
        TagDraft {
            name: Some(name.to_owned()),
            colour: colour.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn names_are_trimmed_and_colours_normalised() {
        let tag = NewTag::parse(draft("  VIP ", Some("#1F77B4"))).unwrap();
        assert_eq!(
            (tag.name.as_str(), tag.colour.as_deref()),
            ("VIP", Some("#1f77b4"))
        );
    }

    #[test]
    fn bad_tags_name_their_fields() {
        let fields = |d: TagDraft| -> Vec<String> {
            NewTag::parse(d)
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(draft("  ", None)), ["/name"]);
        assert_eq!(
            fields(draft(&"x".repeat(51), Some("red"))),
            ["/name", "/colour"]
        );
        assert_eq!(fields(TagDraft::default()), ["/name"]);
    }

    #[test]
    fn tag_ids_are_read_without_repeats_and_bounded() {
        let id = TagId::generate().to_string();
        assert_eq!(
            parse_tag_ids(&[id.clone(), id], "/tag_ids").unwrap().len(),
            1
        );
        let error = parse_tag_ids(&["x".into()], "/tag_ids").unwrap_err();
        assert_eq!(error.0[0].field, "/tag_ids/0");
        let many: Vec<String> = (0..=MAX_TAGS_PER_CONTACT)
            .map(|_| TagId::generate().to_string())
            .collect();
        assert_eq!(
            parse_tag_ids(&many, "/tag_ids").unwrap_err().0[0].code,
            "too_many"
        );
    }
}
