//! Audit records: who did what to which entity, with a field-level diff.

use crate::contact::Contact;
use crate::event::{Action, ContactAction};
use crate::ids::EntityId;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One field that changed. `old` is null for a creation, `new` is null for a removal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// An audit record to append in the transaction of the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// `create`, `update`, `delete`, ...
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: Uuid,
    pub changes: Vec<FieldChange>,
    /// The contacts the change is about (whose timelines show it), without repeats.
    pub contacts: Vec<Uuid>,
}

impl AuditRecord {
    /// The record of `action` on a contact: the field-level diff from `before` (absent for a
    /// creation) to `after`. An erasure records which fields existed, never their values.
    pub fn contact(action: ContactAction, before: Option<&Contact>, after: &Contact) -> Self {
        let view = |contact: Option<&Contact>| {
            contact
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .unwrap_or(Value::Null)
        };
        let changes = match action {
            ContactAction::Erased => Vec::new(),
            _ => diff(&view(before), &view(Some(after))),
        };
        Self {
            action: action.audit_action(),
            entity_type: ContactAction::ENTITY,
            entity_id: after.id.as_uuid(),
            changes,
            contacts: vec![after.id.as_uuid()],
        }
    }

    /// The record of `action` on the entity `entity_id`, diffing its API representations.
    pub fn of<A: Action, T: Serialize>(
        action: A,
        entity_id: impl EntityId,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Self {
        let view = |value: Option<&T>| {
            value.map_or(Value::Null, |v| {
                serde_json::to_value(v).unwrap_or(Value::Null)
            })
        };
        let (before, after) = (view(before), view(after));
        let contacts = if A::ENTITY == ContactAction::ENTITY {
            vec![entity_id.as_uuid()]
        } else {
            let mut contacts: Vec<Uuid> = Vec::new();
            for field in A::CONTACT_FIELDS {
                for side in [&before, &after] {
                    let named = side.get(field).and_then(Value::as_str);
                    if let Some(id) = named.and_then(|id| Uuid::parse_str(id).ok()) {
                        if !contacts.contains(&id) {
                            contacts.push(id);
                        }
                    }
                }
            }
            contacts
        };
        Self {
            action: action.audit_action(),
            entity_type: A::ENTITY,
            entity_id: entity_id.as_uuid(),
            changes: diff(&before, &after),
            contacts,
        }
    }
}

/// Server-owned fields that every write touches; listing them would drown the real changes.
/// (`last_contacted_at` follows calls, which are audited themselves.)
const UNAUDITED_FIELDS: [&str; 5] = [
    "id",
    "version",
    "created_at",
    "updated_at",
    "last_contacted_at",
];

/// The top-level fields whose values differ between two JSON objects, in field order; a contact's
/// custom field values are compared key by key (`custom.<key>`), so each is audited on its own.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut changes = top_level_diff(before, after);
    if let Some(at) = changes.iter().position(|c| c.field == "custom") {
        let custom = changes.remove(at);
        let per_key = top_level_diff(&custom.old, &custom.new)
            .into_iter()
            .map(|change| FieldChange {
                field: format!("custom.{}", change.field),
                ..change
            });
        changes.splice(at..at, per_key);
    }
    changes
}

fn top_level_diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|field| !UNAUDITED_FIELDS.contains(&field.as_str()))
        .filter_map(|field| {
            let (old, new) = (before.get(field), after.get(field));
            let value = |side: Option<&Value>| side.cloned().unwrap_or(Value::Null);
            (old.unwrap_or(&Value::Null) != new.unwrap_or(&Value::Null)).then(|| FieldChange {
                field: field.clone(),
                old: value(old),
                new: value(new),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_values_are_audited_key_by_key() {
        let before = json!({"first_name": "Ada", "custom": {"tier": "gold", "seats": 3}});
        let after =
            json!({"first_name": "Ada", "custom": {"tier": "silver", "seats": 3, "vip": true}});
        let fields: Vec<String> = diff(&before, &after).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, ["custom.tier", "custom.vip"]);
    }

    #[test]
    fn lists_only_changed_fields_and_skips_server_fields() {
        let before = json!({"id": 1, "version": 1, "first_name": "Ada", "last_name": "L"});
        let after = json!({"id": 1, "version": 2, "first_name": "Ada", "last_name": "Lovelace"});
        assert_eq!(
            diff(&before, &after),
            vec![FieldChange {
                field: "last_name".into(),
                old: json!("L"),
                new: json!("Lovelace"),
            }]
        );
    }

    #[test]
    fn a_creation_lists_every_non_null_field_as_new() {
        let changes = diff(&Value::Null, &json!({"first_name": "Ada", "company": null}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].old, Value::Null);
    }
}
