//! A contact's activity timeline: one feed of everything that happened to it, each entry of one
//! kind, saying what, when and by whom.

use serde::Serialize;
use serde_json::Value;

/// The kinds of entry, as `?kinds=` names them.
pub const KINDS: &[&str] = &[
    "contact",
    "tags",
    "lists",
    "calls",
    "notes",
    "relationships",
    "consents",
    "deliveries",
];

/// The kind of the entry an audit record of `action` on an `entity_type` makes: a change of the
/// contact's own fields is `contact`; tag and list changes of a contact are `tags` and `lists`;
/// a change of something the contact owns is its kind (`calls`, `notes`, ...).
pub fn kind_of(entity_type: &str, action: &str) -> &'static str {
    match (entity_type, action) {
        ("contact", "tag") => "tags",
        ("contact", "list_add" | "list_remove") => "lists",
        ("call", _) => "calls",
        ("note", _) => "notes",
        ("relationship", _) => "relationships",
        ("consent", _) => "consents",
        _ => "contact",
    }
}

/// Who made an entry happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryActor {
    /// `user`, `api_client`, `import_job`, `workflow_rule` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// The audit record's id, or the webhook delivery's.
    pub id: String,
    pub kind: String,
    /// When it happened (RFC 3339).
    pub at: String,
    pub actor: EntryActor,
    /// The audit action (`create`, `update`, `tag`, `list_add`, ...), or a delivery's status
    /// (`pending`, `succeeded`, `dead`).
    pub action: String,
    /// What it happened to: `contact`, `call`, `note`, `relationship`, `consent`, `delivery`.
    pub entity_type: String,
    pub entity_id: String,
    /// An audit record's field-level changes; a delivery's event type, subscription, attempts and
    /// last answer.
    pub details: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_change_has_a_kind_the_feed_filters_on() {
        for (entity, action, kind) in [
            ("contact", "update", "contact"),
            ("contact", "tag", "tags"),
            ("contact", "list_remove", "lists"),
            ("call", "create", "calls"),
            ("note", "delete", "notes"),
            ("relationship", "create", "relationships"),
            ("consent", "create", "consents"),
        ] {
            assert_eq!(kind_of(entity, action), kind);
            assert!(KINDS.contains(&kind));
        }
    }
}
