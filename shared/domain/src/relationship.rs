//! Relationships: typed links between two contacts of a tenant, read from either side with that
//! side's name for the link ("manager of" one way, "reports to" the other).

use crate::contact::PersonName;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, RelationshipId};
use serde::{Deserialize, Serialize};

/// A kind of link every tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    pub key: &'static str,
    /// What the first contact is to the second.
    pub forward: &'static str,
    /// What the second contact is to the first.
    pub reverse: &'static str,
}

pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        key: "parent",
        forward: "parent of",
        reverse: "child of",
    },
    BuiltIn {
        key: "spouse",
        forward: "spouse of",
        reverse: "spouse of",
    },
    BuiltIn {
        key: "manager",
        forward: "manager of",
        reverse: "reports to",
    },
    BuiltIn {
        key: "assistant",
        forward: "assistant to",
        reverse: "executive of",
    },
    BuiltIn {
        key: "colleague",
        forward: "colleague of",
        reverse: "colleague of",
    },
];

/// The most relationships one contact has (both directions together).
pub const MAX_PER_CONTACT: i64 = 500;
pub const MAX_NAME_CHARS: usize = 50;

/// A link type: a built-in (its key) or one of the tenant's (its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipType {
    pub id: String,
    pub forward_name: String,
    pub reverse_name: String,
    pub built_in: bool,
}

impl RelationshipType {
    /// Symmetric types (spouse, colleague) name the link the same from both sides, so A-B and
    /// B-A are one link.
    pub fn symmetric(&self) -> bool {
        self.forward_name.eq_ignore_ascii_case(&self.reverse_name)
    }

    pub fn built_in(key: &str) -> Option<Self> {
        BUILT_INS.iter().find(|b| b.key == key).map(|b| Self {
            id: b.key.to_owned(),
            forward_name: b.forward.to_owned(),
            reverse_name: b.reverse.to_owned(),
            built_in: true,
        })
    }
}

/// A tenant's own link type, as a create body carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipTypeDraft {
    #[serde(default)]
    pub forward_name: Option<String>,
    #[serde(default)]
    pub reverse_name: Option<String>,
}

/// A valid link type: both names 1 to 50 characters (the rules of names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelationshipType {
    pub forward_name: String,
    pub reverse_name: String,
}

impl NewRelationshipType {
    pub fn parse(draft: RelationshipTypeDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut name = |raw: Option<String>, field: &str| {
            let parsed = raw.and_then(|raw| {
                errors
                    .take(PersonName::parse(&raw, field, MAX_NAME_CHARS))
                    .flatten()
            });
            if parsed.is_none() && !errors.0.iter().any(|e| e.field == field) {
                errors.push(FieldError::new(
                    field,
                    "required",
                    "a link type needs both names",
                ));
            }
            parsed.map(PersonName::into_inner).unwrap_or_default()
        };
        let forward_name = name(draft.forward_name, "/forward_name");
        let reverse_name = name(draft.reverse_name, "/reverse_name");
        errors.into_result(|| Self {
            forward_name,
            reverse_name,
        })
    }
}

/// A link to make from a contact: its type (a built-in key or a tenant type's id) and the other
/// contact.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipDraft {
    #[serde(rename = "type")]
    pub kind: String,
    pub contact_id: String,
}

/// The other contact of a link, as a contact's list of links shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedContact {
    pub id: ContactId,
    pub display_name: String,
}

/// A link as one of its contacts sees it: `name` is what this contact is to the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub id: RelationshipId,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub contact: RelatedContact,
    pub created_at: String,
}

/// A link as stored, what its audit record and events carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: RelationshipId,
    #[serde(rename = "type")]
    pub kind: String,
    pub from_contact_id: ContactId,
    pub to_contact_id: ContactId,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_name_both_directions() {
        let manager = RelationshipType::built_in("manager").unwrap();
        assert_eq!(
            (manager.forward_name.as_str(), manager.reverse_name.as_str()),
            ("manager of", "reports to")
        );
        assert!(!manager.symmetric());
        assert!(RelationshipType::built_in("spouse").unwrap().symmetric());
        assert!(RelationshipType::built_in("enemy").is_none());
    }

    #[test]
    fn a_tenant_type_needs_both_names() {
        let error = NewRelationshipType::parse(RelationshipTypeDraft {
            forward_name: Some("mentor of".into()),
            reverse_name: None,
        })
        .unwrap_err();
        assert_eq!(error.0[0].field, "/reverse_name");
        assert!(NewRelationshipType::parse(RelationshipTypeDraft {
            forward_name: Some(" mentor of ".into()),
            reverse_name: Some("mentee of".into()),
        })
        .is_ok());
    }
}
