//! Identifiers. Ids are UUIDv7 so that they sort by creation time, which keyset pagination uses.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

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
