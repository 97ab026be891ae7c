//! Domain events, written to the outbox in the transaction of the change they describe.

use crate::contact::Contact;
use serde_json::Value;
use uuid::Uuid;

/// Something that happened to an entity, for webhooks, the timeline and real-time feeds.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// `contact.created`, `contact.updated`, ...
    pub event_type: &'static str,
    pub entity_type: &'static str,
    pub entity_id: Uuid,
    /// The entity as the API returns it, after the change.
    pub data: Value,
}

impl DomainEvent {
    pub fn contact_created(contact: &Contact) -> Self {
        Self {
            event_type: "contact.created",
            entity_type: "contact",
            entity_id: contact.id.as_uuid(),
            data: serde_json::to_value(contact).unwrap_or(Value::Null),
        }
    }
}
