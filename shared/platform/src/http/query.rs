//! Query-string parameters, decoded once, with unknown parameters refused.

use crate::ApiError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The decoded query string of one request.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Decodes `raw` and refuses parameters outside `allowed` or given twice, so a typo such as
    /// `?limt=5` is an error rather than silently ignored, and values no column can hold (U+0000).
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            // PostgreSQL text cannot hold U+0000: refuse it here rather than fail in SQL.
            if value.contains('\0') {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{name}` contains U+0000"
                )));
            }
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{name}`; allowed: {}",
                    allowed.join(", ")
                )));
            }
            if params
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{name}` is repeated"
                )));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A boolean parameter: `true` or `false`, absent meaning false; anything else is a 400.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::bad_request(format!(
                "{name} must be true or false"
            ))),
        }
    }

    /// The RFC 3339 time in `name`, if given.
    ///
    /// # Errors
    /// 400 naming the parameter when it is not an RFC 3339 time from year 1 to 9999.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)
            .map(|raw| {
                crm_domain::time::parse(raw, name)
                    .map_err(|e| ApiError::bad_request(format!("{name} {}", e.message)))
            })
            .transpose()
    }

    /// `from` and `to` of a report: `to` defaults to now and `from` to `default_days` before it.
    ///
    /// # Errors
    /// 400 when either is malformed or `from` is not before `to`.
    pub fn time_range(
        &self,
        default_days: i64,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let to = self.time("to")?.unwrap_or_else(Utc::now);
        let from = self
            .time("from")?
            .unwrap_or(to - chrono::Duration::days(default_days));
        if from >= to {
            return Err(ApiError::bad_request("from must be before to"));
        }
        Ok((from, to))
    }
}

pub use crm_domain::time::rfc3339;
