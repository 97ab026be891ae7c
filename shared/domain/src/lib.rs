//! The pure CRM domain: value objects, entities, rules and events. No I/O, no async, no Spin.
//!
//! Raw input becomes domain types here, once; everything past this crate holds only valid values.

pub mod actor;
pub mod audit;
pub mod call;
pub mod consent;
pub mod contact;
pub mod csv;
pub mod custom_field;
pub mod error;
pub mod event;
pub mod ids;
pub mod import;
pub mod list;
pub mod note;
pub mod preferences;
pub mod region;
pub mod relationship;
pub mod tag;
pub mod time;
pub mod timeline;
pub mod webhook;

pub use actor::Actor;
pub use error::{FieldError, ValidationErrors};
pub use ids::{
    AuditRecordId, CallId, ConsentId, ContactId, CustomFieldId, DeliveryId, EntityId, EventId,
    ExportId, ImportId, ListId, MergeId, NoteId, RelationshipId, TagId, TenantId, WebhookId,
};
pub use region::Region;
