//! Lists: named groups of a tenant's contacts. A static list holds the members added to it; a
//! smart list holds every live contact its saved filter matches, computed when it is read.

use crate::contact::PersonName;
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, ListId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most lists (static and smart) one tenant defines.
pub const MAX_LISTS_PER_TENANT: i64 = 1_000;
/// The most contact ids one membership change names (`add` and `remove` together).
pub const MAX_MEMBERS_PER_CHANGE: usize = 1_000;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;

/// Whether members are added by hand or computed from a saved filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Static,
    Smart,
}

impl ListKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Smart => "smart",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "static" => Some(Self::Static),
            "smart" => Some(Self::Smart),
            _ => None,
        }
    }
}

/// A list as a create body (and a merge patch's result) carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDraft {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub filter: Option<Value>,
}

/// A valid list: a name (the rules of names, 1 to 100 characters), a description of at most
/// 1,000 characters or none, a kind, and for a smart list its saved filter, an object whose members
/// the contacts list's reading of filters checks (it needs the tenant's region for phones).
#[derive(Debug, Clone, PartialEq)]
pub struct NewList {
    pub name: String,
    pub description: Option<String>,
    pub kind: ListKind,
    pub filter: Option<Map<String, Value>>,
}

impl NewList {
    pub fn parse(draft: ListDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = match draft.name {
            Some(raw) => errors
                .take(PersonName::parse(&raw, "/name", MAX_NAME_CHARS))
                .flatten(),
            None => None,
        };
        if name.is_none() && errors.is_empty() {
            errors.push(FieldError::new("/name", "required", "a list needs a name"));
        }
        let description = draft.description.and_then(|raw| {
            errors
                .take(PersonName::parse(
                    &raw,
                    "/description",
                    MAX_DESCRIPTION_CHARS,
                ))
                .flatten()
        });
        let kind = match draft.kind.as_deref() {
            None => Some(ListKind::Static),
            Some(raw) => {
                let kind = ListKind::parse(raw);
                if kind.is_none() {
                    errors.push(FieldError::new(
                        "/kind",
                        "invalid_kind",
                        "must be static or smart",
                    ));
                }
                kind
            }
        };
        let filter = match (kind, draft.filter) {
            (Some(ListKind::Smart), Some(Value::Object(filter))) if !filter.is_empty() => {
                Some(filter)
            }
            (Some(ListKind::Smart), Some(Value::Object(_))) => {
                errors.push(FieldError::new(
                    "/filter",
                    "required",
                    "a smart list's filter names at least one condition",
                ));
                None
            }
            (Some(ListKind::Smart), None | Some(Value::Null)) => {
                errors.push(FieldError::new(
                    "/filter",
                    "required",
                    "a smart list needs a filter",
                ));
                None
            }
            (Some(ListKind::Smart), Some(_)) => {
                errors.push(FieldError::new(
                    "/filter",
                    "invalid_type",
                    "must be an object of contacts list filters",
                ));
                None
            }
            (_, None | Some(Value::Null)) => None,
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "/filter",
                    "not_allowed",
                    "only a smart list has a filter; a static list's members are added to it",
                ));
                None
            }
        };
        errors.into_result(|| Self {
            name: name.map(PersonName::into_inner).unwrap_or_default(),
            description: description.map(PersonName::into_inner),
            kind: kind.unwrap_or(ListKind::Static),
            filter,
        })
    }
}

/// A list as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactList {
    pub id: ListId,
    pub name: String,
    pub description: Option<String>,
    pub kind: ListKind,
    /// A smart list's saved filter; null for a static list.
    pub filter: Option<Map<String, Value>>,
    /// A static list's live members; null for a smart list (its members are computed when read).
    pub member_count: Option<i64>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl ContactList {
    /// The writable fields as a create body carries them, for JSON Merge Patch.
    pub fn writable_view(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "filter": self.filter,
        })
    }
}

/// A list as a contact shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSummary {
    pub id: ListId,
    pub name: String,
    pub kind: ListKind,
}

/// The lists a contact is on: static lists that hold it, smart lists whose filter matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLists {
    pub contact_id: ContactId,
    pub lists: Vec<ListSummary>,
}

/// One contact's membership of one static list: what adding or removing it is audited and
/// evented as (a change of the contact, so its timeline and erasure find it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMembership {
    pub contact_id: ContactId,
    pub list_id: ListId,
    pub list_name: String,
}

/// A body adding and removing members of a static list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipChangeDraft {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// What happened to one id of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberOutcome {
    /// Added to the list.
    Added,
    /// Already on the list: nothing changed.
    AlreadyMember,
    /// Removed from the list.
    Removed,
    /// Not on the list: nothing changed.
    NotMember,
    /// No live contact of the tenant has this id: nothing changed.
    NotFound,
    /// Not a contact id (a UUID): nothing changed.
    InvalidId,
}

/// One id's outcome, in the order the body named them (`add` first, then `remove`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberResult {
    pub contact_id: String,
    pub result: MemberOutcome,
}

/// The answer to a membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipResults {
    pub list_id: ListId,
    pub added: usize,
    pub removed: usize,
    pub results: Vec<MemberResult>,
}

/// One operation of a lists batch (`POST /api/v1/lists/batch`): a contact added to or removed
/// from a static list.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum MemberOperation {
    Add { list_id: String, contact_id: String },
    Remove { list_id: String, contact_id: String },
}

/// What a lists batch operation answers: the membership it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub list_id: ListId,
    pub contact_id: ContactId,
}

/// A membership change read: each id parsed (or not), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub add: Vec<(String, Option<ContactId>)>,
    pub remove: Vec<(String, Option<ContactId>)>,
}

impl MembershipChange {
    /// At least one and at most [`MAX_MEMBERS_PER_CHANGE`] ids, none both added and removed. An id
    /// that is not a UUID is not an error of the whole change: its result says `invalid_id`.
    pub fn parse(draft: MembershipChangeDraft) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let total = draft.add.len() + draft.remove.len();
        if total == 0 {
            errors.push(FieldError::new(
                "",
                "required",
                "name contact ids in add or remove",
            ));
        }
        if total > MAX_MEMBERS_PER_CHANGE {
            errors.push(FieldError::new(
                "",
                "too_many",
                format!("at most {MAX_MEMBERS_PER_CHANGE} contact ids per call, add and remove together"),
            ));
        }
        let read = |ids: Vec<String>| -> Vec<(String, Option<ContactId>)> {
            ids.into_iter()
                .map(|raw| {
                    let id = ContactId::parse(raw.trim());
                    (raw, id)
                })
                .collect()
        };
        let add = read(draft.add);
        let remove = read(draft.remove);
        for (index, (_, id)) in remove.iter().enumerate() {
            if id.is_some() && add.iter().any(|(_, added)| added == id) {
                errors.push(FieldError::new(
                    format!("/remove/{index}"),
                    "conflicting",
                    "this contact is also in add",
                ));
            }
        }
        errors.into_result(|| Self { add, remove })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(value: Value) -> ListDraft {
        serde_json::from_value(value).unwrap()
    }

    fn fields(value: Value) -> Vec<String> {
        NewList::parse(draft(value))
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn lists_are_static_unless_smart_with_a_filter() {
        let list = NewList::parse(draft(json!({"name": " Leads "}))).unwrap();
        assert_eq!((list.name.as_str(), list.kind), ("Leads", ListKind::Static));
        let smart = NewList::parse(draft(
            json!({"name": "Hot", "kind": "smart", "filter": {"lifecycle_stage": "lead"}}),
        ))
        .unwrap();
        assert_eq!(smart.filter.unwrap()["lifecycle_stage"], "lead");
        assert_eq!(fields(json!({"name": "x", "kind": "smart"})), ["/filter"]);
        assert_eq!(
            fields(json!({"name": "x", "kind": "smart", "filter": {}})),
            ["/filter"]
        );
        assert_eq!(
            fields(json!({"name": "x", "filter": {"company": "a"}})),
            ["/filter"]
        );
        assert_eq!(fields(json!({"kind": "dynamic"})), ["/name", "/kind"]);
    }

    #[test]
    fn membership_changes_are_bounded_and_unambiguous() {
        let id = ContactId::generate().to_string();
        let change = MembershipChange::parse(MembershipChangeDraft {
            add: vec![id.clone(), "nope".into()],
            remove: vec![],
        })
        .unwrap();
        assert_eq!(change.add[1].1, None);
        let both = MembershipChange::parse(MembershipChangeDraft {
            add: vec![id.clone()],
            remove: vec![id],
        })
        .unwrap_err();
        assert_eq!(both.0[0].field, "/remove/0");
        let many = MembershipChange::parse(MembershipChangeDraft {
            add: vec!["x".into(); MAX_MEMBERS_PER_CHANGE + 1],
            remove: vec![],
        })
        .unwrap_err();
        assert_eq!(many.0[0].code, "too_many");
        assert!(MembershipChange::parse(MembershipChangeDraft::default()).is_err());
    }
}
