//! The version a change expects its entity to be at (optimistic concurrency): over HTTP it is the
//! `If-Match` header ([`crate::http::etag`]); a job or a test gives it directly.

use crate::ApiError;

/// Checks a change against the entity's current `version`: `PreconditionRequired` when the tenant
/// `required` an expected version and none came, `PreconditionFailed` when the one that came is
/// stale.
pub fn check(
    expected: Option<&ExpectedVersion>,
    required: bool,
    version: i64,
) -> Result<(), ApiError> {
    match expected {
        None if required => Err(ApiError::PreconditionRequired),
        Some(wanted) if !wanted.admits(version) => Err(ApiError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// The version a change expects its entity to have: any existing one, or one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedVersion {
    Any,
    Versions(Vec<i64>),
}

impl ExpectedVersion {
    pub fn admits(&self, version: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::Versions(versions) => versions.contains(&version),
        }
    }
}
