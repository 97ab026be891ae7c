//! What a contact list request asks for: filters, a sort, and the keyset cursor of its next page.

use crm_domain::contact::{EmailAddress, LifecycleStage, PhoneNumber};
use crm_domain::{ContactId, Region, TagId};
use crm_platform::http::query::{rfc3339, Query};
use crm_platform::ApiError;
use serde::{Deserialize, Serialize};

/// The query parameters `GET /api/v1/contacts` accepts.
pub const PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "sort",
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
    "include_deleted",
    "tags_any",
    "tags_all",
    "tags_none",
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
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or("created_at");
        let (descending, name) = raw
            .strip_prefix('-')
            .map_or((false, raw), |name| (true, name));
        let key = match name {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "last_name" => SortKey::LastName,
            _ => return Err(ApiError::bad_request(
                "sort must be created_at, updated_at or last_name, with a leading - for descending",
            )),
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
    created_after: Option<String>,
    created_before: Option<String>,
    updated_after: Option<String>,
    updated_before: Option<String>,
    updated_since: Option<String>,
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
    /// Reads the filters of `query`; phone numbers are read with `region` unless they carry their
    /// own country code, so `?phone=` finds a number however it is written.
    pub fn from_query(query: &Query, region: Region) -> Result<Self, ApiError> {
        let text = |name: &str| {
            query
                .get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let time = |name: &str| Ok::<_, ApiError>(query.time(name)?.map(rfc3339));
        let include_deleted = query.flag("include_deleted")?;
        // An enumeration: an empty value is not one of its members.
        let lifecycle_stage = query
            .get("lifecycle_stage")
            .map(|raw| {
                LifecycleStage::parse(raw, "lifecycle_stage")
                    .map_err(|e| ApiError::bad_request(format!("lifecycle_stage {}", e.message)))
            })
            .transpose()?;
        let email_key = text("email")
            .map(|raw| {
                EmailAddress::parse(&raw, "email")
                    .map(|email| email.key())
                    .map_err(|e| ApiError::bad_request(format!("email {}", e.message)))
            })
            .transpose()?;
        let phone_e164 = text("phone")
            .map(|raw| {
                PhoneNumber::parse(&raw, region, "phone")
                    .map(|phone| phone.e164().to_owned())
                    .map_err(|e| ApiError::bad_request(format!("phone {}", e.message)))
            })
            .transpose()?;
        let tags = |name: &str| -> Result<Vec<TagId>, ApiError> {
            let Some(raw) = query.get(name) else {
                return Ok(Vec::new());
            };
            let raw: Vec<String> = raw.split(',').map(str::to_owned).collect();
            crm_domain::tag::parse_tag_ids(&raw, name).map_err(|errors| {
                ApiError::bad_request(format!(
                    "{name} must be comma-separated tag ids, at most {}: {}",
                    crm_domain::tag::MAX_TAGS_PER_CONTACT,
                    errors.0[0].message
                ))
            })
        };
        Ok(Self {
            tags_any: tags("tags_any")?,
            tags_all: tags("tags_all")?,
            tags_none: tags("tags_none")?,
            sort: Sort::parse(query.get("sort"))?,
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

    /// `(column, operator, RFC 3339 time)` for every time bound asked for.
    pub fn time_bounds(&self) -> impl Iterator<Item = (&'static str, &'static str, String)> + '_ {
        [
            ("created_at", ">", &self.created_after),
            ("created_at", "<", &self.created_before),
            ("updated_at", ">", &self.updated_after),
            ("updated_at", "<", &self.updated_before),
            ("updated_at", ">=", &self.updated_since),
        ]
        .into_iter()
        .filter_map(|(column, operator, time)| time.clone().map(|t| (column, operator, t)))
    }

    /// Checks that a cursor was issued for this sort (a cursor is only meaningful under its own),
    /// and that its key is one the sort's column can hold: a time PostgreSQL can store for the time
    /// sorts. A tampered cursor is a 400, never a failed query.
    pub fn check_cursor(&self, cursor: &ListCursor) -> Result<(), ApiError> {
        if cursor.sort != self.sort {
            return Err(ApiError::bad_request(
                "this cursor belongs to another sort; start again without it",
            ));
        }
        let holds = match self.sort.key {
            SortKey::CreatedAt | SortKey::UpdatedAt => {
                crm_domain::time::parse(&cursor.key, "cursor").is_ok()
            }
            SortKey::LastName => !cursor.key.contains('\0'),
        };
        if !holds {
            return Err(ApiError::bad_request("cursor is not one this API issued"));
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
