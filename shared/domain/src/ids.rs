//! Identifiers. Ids are UUIDv7 so that they sort by creation time, which keyset pagination uses.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// What every entity id is: a UUID with a type, so that a call's id cannot be passed where a
/// contact's is expected. Generic code (path parameters, stored columns) converts through it; the
/// same methods are inherent on each id, so callers need not import the trait.
pub trait EntityId: Copy + fmt::Display {
    fn from_uuid(uuid: Uuid) -> Self;
    fn as_uuid(&self) -> Uuid;
    fn parse(raw: &str) -> Option<Self>;
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a client-supplied id; `None` for anything that is not a UUID.
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::try_parse(raw).ok().map(Self)
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl EntityId for $name {
            fn from_uuid(uuid: Uuid) -> Self {
                $name::from_uuid(uuid)
            }

            fn as_uuid(&self) -> Uuid {
                $name::as_uuid(self)
            }

            fn parse(raw: &str) -> Option<Self> {
                $name::parse(raw)
            }
        }
    };
}

uuid_id!(
    /// The tenant a request acts for. It only ever comes from a verified token.
    TenantId
);
uuid_id!(
    /// A contact, unique within its tenant.
    ContactId
);
uuid_id!(
    /// A merge of contacts into one, which can be undone.
    MergeId
);
uuid_id!(
    /// An import job.
    ImportId
);
uuid_id!(
    /// An export job.
    ExportId
);
uuid_id!(
    /// A logged call.
    CallId
);
uuid_id!(
    /// A webhook subscription.
    WebhookId
);
uuid_id!(
    /// A note on a contact.
    NoteId
);
uuid_id!(
    /// A tag of a tenant's vocabulary.
    TagId
);
uuid_id!(
    /// A tenant's custom contact field (its definition).
    CustomFieldId
);
uuid_id!(
    /// A consent record (append-only).
    ConsentId
);
uuid_id!(
    /// A static or smart list of contacts.
    ListId
);
uuid_id!(
    /// A link between two contacts.
    RelationshipId
);
uuid_id!(
    /// One event's delivery to one webhook subscription.
    DeliveryId
);
uuid_id!(
    /// An outbox event (what webhooks deliver).
    EventId
);
uuid_id!(
    /// A record of the audit log.
    AuditRecordId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_sort_by_creation() {
        let first = ContactId::generate();
        let second = ContactId::generate();
        assert!(first < second);
    }

    #[test]
    fn parse_rejects_non_uuids() {
        assert!(ContactId::parse("not-a-uuid").is_none());
        assert!(ContactId::parse("").is_none());
        assert!(ContactId::parse("0192d7a4-5b6c-7d8e-9f00-112233445566").is_some());
    }
}
