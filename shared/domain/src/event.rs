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
}

impl ContactAction {
    /// The outbox event type: `contact.created`, ...
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Created => "contact.created",
            Self::Updated => "contact.updated",
            Self::Deleted => "contact.deleted",
            Self::Restored => "contact.restored",
            Self::Erased => "contact.erased",
        }
    }

    /// The audit action: `create`, ...
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Updated => "update",
            Self::Deleted => "delete",
            Self::Restored => "restore",
            Self::Erased => "erase",
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
    /// An event about any entity, carrying its API representation.
    pub fn of<T: serde::Serialize>(
        event_type: &'static str,
        entity_type: &'static str,
        entity_id: impl EntityId,
        entity: &T,
    ) -> Self {
        Self {
            event_type,
            entity_type,
            entity_id: entity_id.as_uuid(),
            data: serde_json::to_value(entity).unwrap_or(Value::Null),
        }
    }

    pub fn contact(action: ContactAction, contact: &Contact) -> Self {
        let data = match action {
            ContactAction::Erased => json!({"id": contact.id}),
            _ => serde_json::to_value(contact).unwrap_or(Value::Null),
        };
        Self {
            event_type: action.event_type(),
            entity_type: "contact",
            entity_id: contact.id.as_uuid(),
            data,
        }
    }
}
