//! Client-supplied times: RFC 3339, within what PostgreSQL stores and RFC 3339 writes (years 1 to
//! 9999). A time outside that range is the client's mistake, refused with its field, never a
//! database error.

use crate::error::FieldError;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// Parses the RFC 3339 time `raw` of `field`.
///
/// # Errors
/// `invalid_time` naming `field` when `raw` is not RFC 3339 or its year is not 1 to 9999.
pub fn parse(raw: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.to_utc())
        .ok()
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid_time",
                "must be an RFC 3339 time from year 1 to 9999, e.g. 2026-01-31T09:00:00Z",
            )
        })
}

/// A time as the API writes it and SQL reads it back exactly: RFC 3339, UTC, microseconds.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_outside_1_to_9999_are_refused() {
        assert!(parse("2026-01-31T09:00:00Z", "/t").is_ok());
        assert!(parse("0001-01-01T00:00:00Z", "/t").is_ok());
        for raw in [
            "0000-06-01T10:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "yesterday",
        ] {
            assert_eq!(parse(raw, "/t").unwrap_err().field, "/t", "{raw}");
        }
    }
}
