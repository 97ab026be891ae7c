//! A batch of contact changes: up to [`MAX_OPERATIONS`] creates, upserts, updates and deletes in
//! one call, answered with one result per operation in order.

use super::Contact;
use crate::ids::ContactId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most operations one batch may hold.
pub const MAX_OPERATIONS: usize = 1_000;

/// The body of `POST /api/v1/contacts/batch`, each operation still raw: one operation that does
/// not read is that operation's failure, not the batch's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDraft {
    /// All or nothing, in one transaction; otherwise each operation stands alone.
    #[serde(default)]
    pub atomic: bool,
    pub operations: Vec<Value>,
}

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

/// What an operation did (or, in an atomic batch that failed, would have done).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Deleted,
    Failed,
    /// An atomic batch failed elsewhere: this operation would have succeeded, and was undone.
    NotApplied,
}

/// One operation's answer: its status as the single-contact route would have answered, and the
/// contact, or the problem (RFC 9457) with field pointers from the batch's root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationResult {
    pub op: String,
    pub status: u16,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Value>,
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResults {
    pub atomic: bool,
    pub succeeded: usize,
    pub failed: usize,
    pub results: Vec<OperationResult>,
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
    /// The `op` name of an operation (`create`, `upsert`, `update`, `delete`) as a client wrote
    /// it, for a result whose operation did not read.
    pub fn name_in(raw: &Value) -> String {
        raw.get("op")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
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
