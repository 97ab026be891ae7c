//! The contact aggregate: its value objects, the rules for a new contact, and its representation.

mod draft;
mod email;
mod name;
mod phone;

pub use draft::{ContactDraft, EmailDraft, NewContact, PhoneDraft, MAX_EMAILS, MAX_PHONES};
pub use email::EmailAddress;
pub use name::{Label, PersonName};
pub use phone::PhoneNumber;

use crate::ids::ContactId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A contact as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: String,
    pub emails: Vec<ContactEmail>,
    pub phones: Vec<ContactPhone>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
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
