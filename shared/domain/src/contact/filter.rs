//! What a contact list request asks for: filters, a sort, and the keyset cursor of its next page;
//! and the same filters saved, as a smart list keeps them (one reading of both, so a saved filter
//! means what the query string means).

use crate::contact::search::{
    Bound, Condition, Node, Search, SearchCursor, SearchSort, SortBy, Target, Test,
};
use crate::contact::{EmailAddress, LifecycleStage, PhoneNumber};
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, TagId};
use crate::region::Region;
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A query parameter the contacts list cannot read: what the client is told (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(message.into()))
}

/// The query parameters of `GET /api/v1/contacts` that are not filters a list can save: paging,
/// sorting, and `include_deleted`.
pub const LISTING_PARAMETERS: &[&str] = &["limit", "cursor", "sort", "include_deleted"];

/// The query parameters `GET /api/v1/contacts` accepts: [`LISTING_PARAMETERS`] and
/// [`SAVED_FILTERS`].
pub fn parameters() -> Vec<&'static str> {
    [LISTING_PARAMETERS, SAVED_FILTERS].concat()
}

/// The filters a smart list can save: those of `GET /api/v1/contacts` but paging, sorting and
/// `include_deleted` (a list's members are live contacts). The tag filters are arrays of tag ids,
/// the others strings, as the query string writes them.
pub const SAVED_FILTERS: &[&str] = &[
    "lifecycle_stage",
    "owner_id",
    "company",
    "email",
    "phone",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "updated_since",
    "tags_any",
    "tags_all",
    "tags_none",
    "preferred_channel",
    "language",
    "do_not_contact",
    "contactable_via",
    "consent_granted",
    "consent_not_granted",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    LastName,
}

/// `sort=created_at` (the default), `-created_at`, `updated_at`, `-updated_at`, `last_name`, `-last_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    fn parse(raw: Option<&str>) -> Result<Self, FilterError> {
        let raw = raw.unwrap_or("created_at");
        let (descending, name) = raw
            .strip_prefix('-')
            .map_or((false, raw), |name| (true, name));
        let key = match name {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "last_name" => SortKey::LastName,
            _ => return refuse(
                "sort must be created_at, updated_at or last_name, with a leading - for descending",
            ),
        };
        Ok(Self { key, descending })
    }
}

/// Where the previous page ended: its last row's sort key and id, under the sort it was made for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListCursor {
    pub sort: Sort,
    pub key: String,
    pub id: ContactId,
}

#[derive(Debug, Default)]
pub struct ContactFilter {
    pub sort: Sort,
    pub include_deleted: bool,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: Option<String>,
    pub company: Option<String>,
    /// The duplicate key of the email asked for.
    pub email_key: Option<String>,
    /// The phone asked for, in E.164.
    pub phone_e164: Option<String>,
    /// Contacts carrying at least one of these tags (`tags_any`), all of them (`tags_all`), none
    /// of them (`tags_none`): tag ids.
    pub tags_any: Vec<TagId>,
    pub tags_all: Vec<TagId>,
    pub tags_none: Vec<TagId>,
    /// Contacts whose preferred channel is this one.
    pub preferred_channel: Option<&'static str>,
    /// Contacts whose language is this tag or a more specific one (`pt` finds `pt-BR`).
    pub language: Option<String>,
    /// Contacts who asked not to be contacted on this channel (`do_not_contact`), or who did not
    /// (`contactable_via`).
    pub do_not_contact: Option<&'static str>,
    pub contactable_via: Option<&'static str>,
    /// Contacts whose latest consent record for this purpose grants it (`consent_granted`), or
    /// who have none that does (`consent_not_granted`: never asked, or withdrawn).
    pub consent_granted: Option<String>,
    pub consent_not_granted: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    updated_after: Option<String>,
    updated_before: Option<String>,
    updated_since: Option<String>,
}

/// A saved filter's value as the query string would carry it: tag ids comma-separated.
fn saved_text(name: &str, value: &Value) -> Option<String> {
    match value {
        Value::Array(ids) if name.starts_with("tags_") && !ids.is_empty() => ids
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|ids| ids.join(",")),
        Value::String(text) if !name.starts_with("tags_") && !text.trim().is_empty() => {
            Some(text.clone())
        }
        _ => None,
    }
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::CreatedAt,
            descending: false,
        }
    }
}

impl ContactFilter {
    /// Reads the filters of the query parameters `get` answers; phone numbers are read with
    /// `region` unless they carry their own country code, so `?phone=` finds a number however it
    /// is written.
    pub fn from_params<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        region: Region,
    ) -> Result<Self, FilterError> {
        let text = |name: &str| {
            get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let time = |name: &str| {
            get(name)
                .map(|raw| {
                    crate::time::parse(raw, name)
                        .map(rfc3339)
                        .map_err(|e| FilterError(format!("{name} {}", e.message)))
                })
                .transpose()
        };
        let include_deleted = match get("include_deleted") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return refuse("include_deleted must be true or false"),
        };
        // An enumeration: an empty value is not one of its members.
        let lifecycle_stage = get("lifecycle_stage")
            .map(|raw| {
                LifecycleStage::parse(raw, "lifecycle_stage")
                    .map_err(|e| FilterError(format!("lifecycle_stage {}", e.message)))
            })
            .transpose()?;
        let email_key = text("email")
            .map(|raw| {
                EmailAddress::parse(&raw, "email")
                    .map(|email| email.key())
                    .map_err(|e| FilterError(format!("email {}", e.message)))
            })
            .transpose()?;
        let phone_e164 = text("phone")
            .map(|raw| {
                PhoneNumber::parse(&raw, region, "phone")
                    .map(|phone| phone.e164().to_owned())
                    .map_err(|e| FilterError(format!("phone {}", e.message)))
            })
            .transpose()?;
        let tags = |name: &str| -> Result<Vec<TagId>, FilterError> {
            let Some(raw) = get(name) else {
                return Ok(Vec::new());
            };
            let raw: Vec<String> = raw.split(',').map(str::to_owned).collect();
            crate::tag::parse_tag_ids(&raw, name).map_err(|errors| {
                FilterError(format!(
                    "{name} must be comma-separated tag ids, at most {}: {}",
                    crate::tag::MAX_TAGS_PER_CONTACT,
                    errors.0[0].message
                ))
            })
        };
        let channel = |name: &str| {
            get(name)
                .map(|raw| {
                    crate::preferences::parse_channel(raw, name)
                        .map_err(|e| FilterError(format!("{name} {}", e.message)))
                })
                .transpose()
        };
        let purpose = |name: &str| {
            get(name)
                .map(|raw| {
                    crate::consent::parse_purpose(raw, name)
                        .map_err(|e| FilterError(format!("{name} {}", e.message)))
                })
                .transpose()
        };
        let language = get("language")
            .map(|raw| {
                crate::preferences::parse_language(raw, "language")
                    .map_err(|e| FilterError(format!("language {}", e.message)))
            })
            .transpose()?;
        Ok(Self {
            preferred_channel: channel("preferred_channel")?,
            language,
            do_not_contact: channel("do_not_contact")?,
            contactable_via: channel("contactable_via")?,
            consent_granted: purpose("consent_granted")?,
            consent_not_granted: purpose("consent_not_granted")?,
            tags_any: tags("tags_any")?,
            tags_all: tags("tags_all")?,
            tags_none: tags("tags_none")?,
            sort: Sort::parse(get("sort"))?,
            include_deleted,
            lifecycle_stage,
            owner_id: text("owner_id"),
            company: text("company"),
            email_key,
            phone_e164,
            created_after: time("created_after")?,
            created_before: time("created_before")?,
            updated_after: time("updated_after")?,
            updated_before: time("updated_before")?,
            updated_since: time("updated_since")?,
        })
    }

    /// Reads a saved filter (a JSON object of [`SAVED_FILTERS`]) the way the query string's
    /// parameters are read; each error names its member under `at` (`/filter/phone`).
    pub fn from_saved(
        saved: &Map<String, Value>,
        region: Region,
        at: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut pairs = HashMap::with_capacity(saved.len());
        for (name, value) in saved {
            let field = format!("{at}/{name}");
            if !SAVED_FILTERS.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    field,
                    "unknown_filter",
                    format!(
                        "not a filter a list can save; allowed: {}",
                        SAVED_FILTERS.join(", ")
                    ),
                ));
                continue;
            }
            let Some(text) = saved_text(name, value) else {
                let expected = if name.starts_with("tags_") {
                    "must be a non-empty array of tag ids"
                } else {
                    "must be a non-empty string"
                };
                errors.push(FieldError::new(field, "invalid_type", expected));
                continue;
            };
            // Each filter alone first, so that an error names its member.
            let alone = |n: &str| (n == name).then_some(text.as_str());
            if let Err(error) = Self::from_params(alone, region) {
                errors.push(FieldError::new(field, "invalid_filter", error.0));
                continue;
            }
            pairs.insert(name.as_str(), text);
        }
        errors.into_result(|| ())?;
        Self::from_params(|n| pairs.get(n).map(String::as_str), region)
            .map_err(|error| ValidationErrors(vec![FieldError::new(at, "invalid_filter", error.0)]))
    }

    /// The search that answers a page of the contacts list with this filter: its conditions and
    /// `within` (conditions on list membership, say), its sort, `limit` rows after `after`.
    pub fn search(&self, within: Vec<Node>, after: Option<&ListCursor>, limit: usize) -> Search {
        let by = |key: SortKey| match key {
            SortKey::CreatedAt => SortBy::Time("created_at".into()),
            SortKey::UpdatedAt => SortBy::Time("updated_at".into()),
            SortKey::LastName => SortBy::Text("last_name".into()),
        };
        let sort = SearchSort {
            by: by(self.sort.key),
            descending: self.sort.descending,
        };
        Search {
            filter: Some(Node::All([within, self.conditions()].concat())),
            q: None,
            after: after.map(|cursor| SearchCursor {
                sort: sort.clone(),
                key: cursor.key.clone(),
                id: cursor.id,
            }),
            sort,
            limit,
            count: false,
            include_deleted: self.include_deleted,
        }
    }

    /// The filter as conditions of the search engine ([`crate::contact::search`]), all of which a
    /// contact must meet: one engine answers the list, smart lists and the search.
    pub fn conditions(&self) -> Vec<Node> {
        let when = |target: Target, test: Test| Node::Condition(Condition { target, test });
        let one = |value: &str| Test::OneOf(vec![Value::String(value.to_owned())]);
        let ids = |ids: &[TagId]| {
            Test::OneOf(ids.iter().map(|id| Value::String(id.to_string())).collect())
        };
        let text = |column: &'static str, fold: bool| Target::Text { column, fold };
        let mut all = Vec::new();
        if let Some(stage) = self.lifecycle_stage {
            all.push(when(text("lifecycle_stage", false), one(stage.as_str())));
        }
        if let Some(owner) = &self.owner_id {
            all.push(when(text("owner_id", false), one(owner)));
        }
        if let Some(company) = &self.company {
            all.push(when(text("company", true), one(&company.to_lowercase())));
        }
        if let Some(key) = &self.email_key {
            all.push(when(Target::Email, one(key)));
        }
        if let Some(e164) = &self.phone_e164 {
            all.push(when(Target::Phone, one(e164)));
        }
        if !self.tags_any.is_empty() {
            all.push(when(Target::Tags, ids(&self.tags_any)));
        }
        for tag in &self.tags_all {
            all.push(when(Target::Tags, ids(std::slice::from_ref(tag))));
        }
        if !self.tags_none.is_empty() {
            all.push(Node::Not(Box::new(when(
                Target::Tags,
                ids(&self.tags_none),
            ))));
        }
        if let Some(channel) = self.preferred_channel {
            all.push(when(Target::PreferredChannel, one(channel)));
        }
        if let Some(language) = &self.language {
            all.push(when(Target::Language, one(language)));
        }
        if let Some(channel) = self.do_not_contact {
            all.push(when(Target::DoNotContact, one(channel)));
        }
        if let Some(channel) = self.contactable_via {
            all.push(Node::Not(Box::new(when(
                Target::DoNotContact,
                one(channel),
            ))));
        }
        if let Some(purpose) = &self.consent_granted {
            all.push(when(Target::Consent(purpose.clone()), one("granted")));
        }
        if let Some(purpose) = &self.consent_not_granted {
            all.push(Node::Not(Box::new(when(
                Target::Consent(purpose.clone()),
                one("granted"),
            ))));
        }
        // `updated_since` is the one inclusive bound.
        for (column, time, upper, inclusive) in [
            ("created_at", &self.created_after, false, false),
            ("created_at", &self.created_before, true, false),
            ("updated_at", &self.updated_after, false, false),
            ("updated_at", &self.updated_before, true, false),
            ("updated_at", &self.updated_since, false, true),
        ] {
            let Some(time) = time else { continue };
            let bound = Some(Bound {
                value: Value::String(time.clone()),
                inclusive,
            });
            let test = if upper {
                Test::Range {
                    lower: None,
                    upper: bound,
                }
            } else {
                Test::Range {
                    lower: bound,
                    upper: None,
                }
            };
            all.push(when(Target::Time(column), test));
        }
        all
    }

    /// Checks that a cursor was issued for this sort (a cursor is only meaningful under its own),
    /// and that its key is one the sort's column can hold: a time PostgreSQL can store for the time
    /// sorts. A tampered cursor is a 400, never a failed query.
    pub fn check_cursor(&self, cursor: &ListCursor) -> Result<(), FilterError> {
        if cursor.sort != self.sort {
            return refuse("this cursor belongs to another sort; start again without it");
        }
        let holds = match self.sort.key {
            SortKey::CreatedAt | SortKey::UpdatedAt => {
                crate::time::parse(&cursor.key, "cursor").is_ok()
            }
            SortKey::LastName => !cursor.key.contains('\0'),
        };
        if !holds {
            return refuse("cursor is not one this API issued");
        }
        Ok(())
    }

    /// The cursor that resumes after `id` with sort key `key`.
    pub fn cursor_after(&self, id: ContactId, key: String) -> ListCursor {
        ListCursor {
            sort: self.sort,
            key,
            id,
        }
    }
}
