//! Domain events, written to the outbox in the transaction of the change they describe.

use crate::contact::Contact;
use crate::ids::EntityId;
use serde_json::{json, Value};
use uuid::Uuid;

/// What happened to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactAction {
    Created,
    Updated,
    Deleted,
    Restored,
    Erased,
    /// Other contacts were merged into this one (the survivor).
    Merged,
    /// This contact was merged into another (it is deleted, naming its survivor).
    MergedInto,
    /// A merge into this contact was undone.
    MergeUndone,
    /// A merge of this contact was undone: it is back, as it was.
    Unmerged,
}

/// A kind of change of one entity type: its audit action and its event type, named once, so that
/// no change is recorded with a mismatched pair of strings.
pub trait Action: Copy {
    /// The entity type the action applies to: `contact`, `call`, `webhook`.
    const ENTITY: &'static str;
    /// The members of the entity's representation that name the contacts it belongs to (a call's
    /// `contact_id`, both ends of a link): its changes show on their timelines. A change of a
    /// contact itself belongs to that contact; an entity of the tenant's own (a tag, a list, a
    /// webhook) belongs to none.
    const CONTACT_FIELDS: &'static [&'static str] = &[];
    /// The audit action: `create`, `update`, ...
    fn audit_action(self) -> &'static str;
    /// The outbox event type: `contact.created`, ...
    fn event_type(self) -> &'static str;
}

impl Action for ContactAction {
    const ENTITY: &'static str = "contact";

    fn audit_action(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::Deleted => "delete",
            Self::Restored => "restore",
            Self::Erased => "erase",
            Self::Merged => "merge",
            Self::MergedInto => "merged_into",
            Self::MergeUndone | Self::Unmerged => "unmerge",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Created => "contact.created",
            Self::Updated => "contact.updated",
            Self::Deleted => "contact.deleted",
            Self::Restored | Self::Unmerged => "contact.restored",
            Self::Erased => "contact.erased",
            Self::Merged => "contact.merged",
            Self::MergedInto => "contact.merged_into",
            Self::MergeUndone => "contact.unmerged",
        }
    }
}

/// What can happen to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAction {
    Logged,
    Updated,
    Deleted,
}

impl Action for CallAction {
    const ENTITY: &'static str = "call";
    const CONTACT_FIELDS: &'static [&'static str] = &["contact_id"];

    fn audit_action(self) -> &'static str {
        match self {
            Self::Logged => "create",
            Self::Updated => "update",
            Self::Deleted => "delete",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Logged => "call.logged",
            Self::Updated => "call.updated",
            Self::Deleted => "call.deleted",
        }
    }
}

/// An entity's create/update/delete actions: `$name::{Created, Updated, Deleted}`, audited as
/// `create`/`update`/`delete` of `$entity`, evented as `$entity.created` and so on.
macro_rules! lifecycle_action {
    ($(#[$doc:meta])* $name:ident, $entity:literal) => {
        lifecycle_action!($(#[$doc])* $name, $entity, []);
    };
    ($(#[$doc:meta])* $name:ident, $entity:literal, [$($field:literal),*]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            Created,
            Updated,
            Deleted,
        }

        impl Action for $name {
            const ENTITY: &'static str = $entity;
            const CONTACT_FIELDS: &'static [&'static str] = &[$($field),*];

            fn audit_action(self) -> &'static str {
                match self {
                    Self::Created => "create",
                    Self::Updated => "update",
                    Self::Deleted => "delete",
                }
            }

            fn event_type(self) -> &'static str {
                match self {
                    Self::Created => concat!($entity, ".created"),
                    Self::Updated => concat!($entity, ".updated"),
                    Self::Deleted => concat!($entity, ".deleted"),
                }
            }
        }
    };
}

lifecycle_action!(
    /// What can happen to a note.
    NoteAction,
    "note",
    ["contact_id"]
);
lifecycle_action!(
    /// What can happen to a tag of the vocabulary.
    TagAction,
    "tag"
);
lifecycle_action!(
    /// What can happen to a link between two contacts (it is never updated: a changed link is
    /// another link).
    RelationshipAction,
    "relationship",
    ["from_contact_id", "to_contact_id"]
);

/// A consent record was appended (records are never changed or removed, but by erasure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentRecorded;

impl Action for ConsentRecorded {
    const ENTITY: &'static str = "consent";
    const CONTACT_FIELDS: &'static [&'static str] = &["contact_id"];

    fn audit_action(self) -> &'static str {
        "create"
    }

    fn event_type(self) -> &'static str {
        "consent.recorded"
    }
}

/// A contact's communication preferences changed: a change of the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactPreferencesChanged;

impl Action for ContactPreferencesChanged {
    const ENTITY: &'static str = "contact";

    fn audit_action(self) -> &'static str {
        "preferences"
    }

    fn event_type(self) -> &'static str {
        "contact.preferences_changed"
    }
}

lifecycle_action!(
    /// What can happen to a custom field's definition (it is archived, never deleted).
    CustomFieldAction,
    "custom_field"
);
lifecycle_action!(
    /// What can happen to a list (its definition; membership changes are [`ListMembershipAction`]).
    ListAction,
    "list"
);

/// A contact was added to or removed from a static list: a change of the contact (its timeline and
/// its erasure find it), evented as `list.member_added` / `list.member_removed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMembershipAction {
    Added,
    Removed,
}

impl Action for ListMembershipAction {
    const ENTITY: &'static str = "contact";

    fn audit_action(self) -> &'static str {
        match self {
            Self::Added => "list_add",
            Self::Removed => "list_remove",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Added => "list.member_added",
            Self::Removed => "list.member_removed",
        }
    }
}

/// A contact's set of tags changed (tags attached, detached or replaced): a change of the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactTagsChanged;

impl Action for ContactTagsChanged {
    const ENTITY: &'static str = "contact";

    fn audit_action(self) -> &'static str {
        "tag"
    }

    fn event_type(self) -> &'static str {
        "contact.tags_changed"
    }
}

/// What can happen to a webhook subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAction {
    Created,
    Updated,
    SecretRotated,
    Deleted,
}

impl Action for WebhookAction {
    const ENTITY: &'static str = "webhook";

    fn audit_action(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::SecretRotated => "rotate_secret",
            Self::Deleted => "delete",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Created => "webhook.created",
            Self::Updated | Self::SecretRotated => "webhook.updated",
            Self::Deleted => "webhook.deleted",
        }
    }
}

/// Something that happened to an entity, for webhooks, the timeline and real-time feeds.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// `contact.created`, `contact.updated`, ...
    pub event_type: &'static str,
    pub entity_type: &'static str,
    pub entity_id: Uuid,
    /// The entity as the API returns it, after the change; only the id once it is erased.
    pub data: Value,
}

impl DomainEvent {
    /// The event of `action` on the entity `entity_id`, carrying its API representation.
    pub fn of<A: Action, T: serde::Serialize>(
        action: A,
        entity_id: impl EntityId,
        entity: &T,
    ) -> Self {
        Self {
            event_type: action.event_type(),
            entity_type: A::ENTITY,
            entity_id: entity_id.as_uuid(),
            data: serde_json::to_value(entity).unwrap_or(Value::Null),
        }
    }

    /// A contact's event: its erasure carries only its id.
    pub fn contact(action: ContactAction, contact: &Contact) -> Self {
        let data = match action {
            ContactAction::Erased => json!({"id": contact.id}),
            _ => serde_json::to_value(contact).unwrap_or(Value::Null),
        };
        Self {
            event_type: action.event_type(),
            entity_type: ContactAction::ENTITY,
            entity_id: contact.id.as_uuid(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_actions_name_their_entity() {
        assert_eq!(NoteAction::Created.event_type(), "note.created");
        assert_eq!(TagAction::Deleted.event_type(), "tag.deleted");
        assert_eq!(TagAction::Updated.audit_action(), "update");
        assert_eq!(<NoteAction as Action>::ENTITY, "note");
        for event in [
            NoteAction::Created.event_type(),
            TagAction::Updated.event_type(),
            ListAction::Deleted.event_type(),
            ListMembershipAction::Added.event_type(),
            ListMembershipAction::Removed.event_type(),
        ] {
            assert!(crate::webhook::EVENT_TYPES.contains(&event), "{event}");
        }
    }
}
