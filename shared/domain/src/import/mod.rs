//! Import jobs: a file of contacts (CSV or NDJSON) uploaded whole or in parts, read into rows, and
//! applied a bounded step at a time as creates and upserts through the contacts' batch, each row
//! audited and evented as if written alone. A job's options say how its columns map to fields and
//! what a row whose contact exists already does.

pub mod mapping;
pub mod reader;

use crate::custom_field::CustomField;
use crate::error::{FieldError, ValidationErrors};
use crate::event::Action;
use crate::ids::ListId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most parts one upload may have.
pub const MAX_PARTS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// What a row whose contact exists already does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    /// Every row creates a contact; one whose email a live contact has fails (`duplicate`).
    CreateOnly,
    /// A row whose primary email a live contact has updates it (an upsert); others create.
    UpdateByEmail,
    /// A row whose external id (a unique custom field) a live contact has updates it.
    UpdateByExternalId,
    /// A row whose email any live contact has is skipped; others create.
    SkipDuplicates,
}

/// The body of `POST /api/v1/imports`, as raw values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDraft {
    pub format: String,
    /// One character (a CSV's); found from the first line when absent.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// Column name → target field name (`first_name`, `emails`, `custom.plan`, `tags`, ...), or
    /// null to ignore the column; columns not named map by their own name.
    #[serde(default)]
    pub mapping: Option<Map<String, Value>>,
    #[serde(default)]
    pub dedupe: Option<String>,
    /// The unique custom field whose value identifies a contact (`update_by_external_id`).
    #[serde(default)]
    pub external_id: Option<String>,
    /// Reports what the import would do and changes nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// A static list every imported contact joins.
    #[serde(default)]
    pub list_id: Option<String>,
}

/// A job's options, valid; stored with the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub mapping: Map<String, Value>,
    pub dedupe: Dedupe,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<ListId>,
}

impl ImportOptions {
    /// Checks `draft` against the tenant's custom `fields`; every error names its JSON pointer.
    pub fn parse(draft: ImportDraft, fields: &[CustomField]) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let format = match draft.format.as_str() {
            "csv" => Some(Format::Csv),
            "ndjson" => Some(Format::Ndjson),
            _ => {
                errors.push(FieldError::new(
                    "/format",
                    "invalid_value",
                    "format is csv or ndjson",
                ));
                None
            }
        };
        if let Some(delimiter) = &draft.delimiter {
            let mut chars = delimiter.chars();
            let one_byte = matches!((chars.next(), chars.next()), (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\r' | '\n'));
            if !one_byte {
                errors.push(FieldError::new(
                    "/delimiter",
                    "invalid_value",
                    "a delimiter is one ASCII character other than a quote or a line break",
                ));
            }
        }
        let dedupe = match draft.dedupe.as_deref().unwrap_or("update_by_email") {
            "create_only" => Some(Dedupe::CreateOnly),
            "update_by_email" => Some(Dedupe::UpdateByEmail),
            "update_by_external_id" => Some(Dedupe::UpdateByExternalId),
            "skip_duplicates" => Some(Dedupe::SkipDuplicates),
            _ => {
                errors.push(FieldError::new(
                    "/dedupe",
                    "invalid_value",
                    "dedupe is create_only, update_by_email, update_by_external_id or skip_duplicates",
                ));
                None
            }
        };
        match (&draft.external_id, dedupe) {
            (None, Some(Dedupe::UpdateByExternalId)) => errors.push(FieldError::new(
                "/external_id",
                "required",
                "update_by_external_id names the custom field that identifies a contact",
            )),
            (Some(_), Some(dedupe)) if dedupe != Dedupe::UpdateByExternalId => {
                errors.push(FieldError::new(
                    "/external_id",
                    "not_allowed",
                    "an external id is used by update_by_external_id only",
                ))
            }
            (Some(key), _) => {
                let unique = fields
                    .iter()
                    .any(|field| &field.key == key && field.unique && !field.archived);
                if !unique {
                    errors.push(FieldError::new(
                        "/external_id",
                        "unknown_field",
                        "the external id is a unique custom field of the tenant",
                    ));
                }
            }
            _ => {}
        }
        let list_id = draft.list_id.as_deref().and_then(|raw| {
            errors.take(
                raw.parse::<uuid::Uuid>()
                    .map(ListId::from_uuid)
                    .map_err(|_| FieldError::new("/list_id", "invalid_id", "not a list id")),
            )
        });
        errors.into_result(|| ImportOptions {
            format: format.unwrap_or(Format::Csv),
            delimiter: draft.delimiter,
            mapping: draft.mapping.unwrap_or_default(),
            dedupe: dedupe.unwrap_or(Dedupe::UpdateByEmail),
            external_id: draft.external_id,
            dry_run: draft.dry_run,
            list_id,
        })
    }

    /// The CSV delimiter, once the first part's first line is known.
    pub fn delimiter_for(&self, first_part: &[u8]) -> u8 {
        match &self.delimiter {
            Some(delimiter) => delimiter.as_bytes().first().copied().unwrap_or(b','),
            None => reader::detect_delimiter(first_part),
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    AwaitingUpload,
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::AwaitingUpload => "awaiting_upload",
            ImportStatus::Queued => "queued",
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::Failed => "failed",
            ImportStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            ImportStatus::AwaitingUpload,
            ImportStatus::Queued,
            ImportStatus::Running,
            ImportStatus::Completed,
            ImportStatus::Failed,
            ImportStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
    }

    /// Whether the job has ended (nothing changes it any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ImportStatus::Completed | ImportStatus::Failed | ImportStatus::Cancelled
        )
    }
}

/// A job's upload: how many parts and bytes have arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upload {
    pub parts: i64,
    pub bytes: i64,
}

/// A job's rows: read from the upload, processed, and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RowCounts {
    pub read: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
}

/// An import job as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Import {
    pub id: crate::ids::ImportId,
    pub status: ImportStatus,
    pub options: ImportOptions,
    pub upload: Upload,
    /// The CSV header as read (absent before the first part, and for NDJSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    pub rows: RowCounts,
    /// Processed rows out of those read, 0 to 1 (1 once completed).
    pub progress: f64,
    /// Why the job failed as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub errors_url: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub version: i64,
}

/// What can happen to an import job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportAction {
    Created,
    Started,
    Completed,
    Failed,
    Cancelled,
}

impl Action for ImportAction {
    const ENTITY: &'static str = "import";

    fn audit_action(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Started => "start",
            Self::Completed => "complete",
            Self::Failed => "fail",
            Self::Cancelled => "cancel",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Created => "import.created",
            Self::Started => "import.started",
            Self::Completed => "import.completed",
            Self::Failed => "import.failed",
            Self::Cancelled => "import.cancelled",
        }
    }
}
