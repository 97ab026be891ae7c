//! The operations of a batch of contact changes: creates, upserts, updates and deletes.

use crate::ids::ContactId;
use serde::Deserialize;
use serde_json::Value;

/// One operation as its client wrote it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperationDraft {
    Create {
        contact: Value,
    },
    /// Creates the contact, or merges it into the live contact with its primary email.
    Upsert {
        contact: Value,
    },
    /// A JSON Merge Patch of the contact `id`, at `version` when given.
    Update {
        id: String,
        #[serde(default)]
        version: Option<i64>,
        patch: Value,
    },
    /// A soft delete of the contact `id`, at `version` when given.
    Delete {
        id: String,
        #[serde(default)]
        version: Option<i64>,
    },
}

/// One operation, read.
#[derive(Debug, Clone)]
pub enum Operation {
    Create {
        contact: Value,
    },
    Upsert {
        contact: Value,
    },
    Update {
        id: ContactId,
        version: Option<i64>,
        patch: Value,
    },
    Delete {
        id: ContactId,
        version: Option<i64>,
    },
}

impl OperationDraft {
    /// Reads the operation's id: one that is not a UUID names no contact (a 404, as in a path),
    /// and comes back as the error.
    pub fn read(self) -> Result<Operation, String> {
        let id = |raw: String| ContactId::parse(raw.trim()).ok_or(raw);
        Ok(match self {
            OperationDraft::Create { contact } => Operation::Create { contact },
            OperationDraft::Upsert { contact } => Operation::Upsert { contact },
            OperationDraft::Update {
                id: raw,
                version,
                patch,
            } => Operation::Update {
                id: id(raw)?,
                version,
                patch,
            },
            OperationDraft::Delete { id: raw, version } => Operation::Delete {
                id: id(raw)?,
                version,
            },
        })
    }
}

impl Operation {
    /// The contact body or patch the operation carries (none for a delete).
    pub fn body(&self) -> Option<&Value> {
        match self {
            Operation::Create { contact } | Operation::Upsert { contact } => Some(contact),
            Operation::Update { patch, .. } => Some(patch),
            Operation::Delete { .. } => None,
        }
    }

    /// Where this operation's body sits in the operation: its field errors are pointed from there.
    pub fn body_member(&self) -> &'static str {
        match self {
            Operation::Create { .. } | Operation::Upsert { .. } => "/contact",
            Operation::Update { .. } => "/patch",
            Operation::Delete { .. } => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<Operation, String> {
        serde_json::from_value::<OperationDraft>(value)
            .map_err(|e| e.to_string())?
            .read()
    }

    #[test]
    fn operations_read_by_their_op() {
        let id = ContactId::generate();
        assert!(matches!(
            read(json!({"op": "update", "id": id.to_string(), "version": 2, "patch": {}})),
            Ok(Operation::Update {
                version: Some(2),
                ..
            })
        ));
        assert!(matches!(
            read(json!({"op": "delete", "id": id.to_string()})),
            Ok(Operation::Delete { version: None, .. })
        ));
        assert_eq!(
            read(json!({"op": "delete", "id": "nope"})).unwrap_err(),
            "nope"
        );
        assert!(read(json!({"op": "merge", "id": id.to_string()})).is_err());
        assert!(read(json!({"op": "create", "contact": {}, "extra": 1})).is_err());
    }
}
