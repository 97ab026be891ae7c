//! The contact aggregate: its value objects, the rules for a new contact, and its representation.

mod address;
pub mod batch;
mod draft;
pub mod duplicates;
mod email;
pub mod export;
pub mod filter;
mod lifecycle;
pub mod merge;
mod name;
mod phone;
pub mod search;

pub use address::{AddressDraft, PostalAddress};
pub use draft::{
    ContactDraft, EmailDraft, NewContact, NewEmail, NewPhone, PhoneDraft, MAX_EMAILS, MAX_PHONES,
};
pub use email::EmailAddress;
pub use lifecycle::LifecycleStage;
pub use name::{Label, PersonName};
pub use phone::PhoneNumber;

use crate::ids::ContactId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A contact as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: String,
    pub emails: Vec<ContactEmail>,
    pub phones: Vec<ContactPhone>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub address: Option<PostalAddress>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: Option<String>,
    pub source: Option<String>,
    /// Values of the tenant's custom fields, by key (each checked against its field).
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// False while `display_name` is derived, so that it follows the names on an update.
    #[serde(skip)]
    pub display_name_explicit: bool,
    /// When the latest call with the contact started (server-owned, advanced by logging calls).
    pub last_contacted_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The contact this one was merged into (it is deleted then); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<ContactId>,
}

impl Contact {
    /// The client-writable fields as a create body would carry them: what a JSON Merge Patch
    /// (RFC 7396) is applied to. Absent means null, so nulls are left out; a derived display name is
    /// left out too, so it is derived again from the patched fields.
    pub fn writable_view(&self) -> serde_json::Value {
        let mut view = serde_json::json!({
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": self.display_name_explicit.then_some(&self.display_name),
            "emails": self.emails.iter().map(|e| serde_json::json!({
                "address": e.address, "label": e.label, "primary": e.primary,
            })).collect::<Vec<_>>(),
            "phones": self.phones.iter().map(|p| serde_json::json!({
                "number": p.number, "label": p.label, "primary": p.primary,
            })).collect::<Vec<_>>(),
            "company": self.company,
            "job_title": self.job_title,
            "address": self.address,
            "lifecycle_stage": self.lifecycle_stage,
            "owner_id": self.owner_id,
            "source": self.source,
            "custom": self.custom,
        });
        if let Some(fields) = view.as_object_mut() {
            fields.retain(|_, value| !value.is_null());
        }
        view
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEmail {
    pub address: String,
    pub label: Option<String>,
    pub primary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    /// The number as the client typed it.
    pub number: String,
    pub e164: String,
    pub region: String,
    pub national: String,
    pub label: Option<String>,
    pub primary: bool,
}
