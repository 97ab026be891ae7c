//! Query-string parameters, decoded once, with unknown parameters refused.

use super::problem::ApiError;
use std::collections::HashMap;

/// The decoded query string of one request.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Decodes `raw` and refuses parameters outside `allowed` or given twice, so a typo such as
    /// `?limt=5` is an error rather than silently ignored.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
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
}
