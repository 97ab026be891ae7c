//! ISO 3166-1 alpha-2 regions, as libphonenumber knows them.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A region libphonenumber has metadata for (`GB`, `US`, `DE`, ...). Always upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// Parses a region code in any case; `None` when libphonenumber does not know it.
    pub fn parse(raw: &str) -> Option<Self> {
        phonenumber::country::Id::from_str(&raw.trim().to_ascii_uppercase())
            .ok()
            .map(Self)
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    pub(crate) fn id(&self) -> phonenumber::country::Id {
        self.0
    }

    pub(crate) fn from_id(id: phonenumber::country::Id) -> Self {
        Self(id)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_regions_in_any_case() {
        assert_eq!(
            Region::parse("gb").map(|r| r.to_string()).as_deref(),
            Some("GB")
        );
        assert_eq!(
            Region::parse(" US ").map(|r| r.to_string()).as_deref(),
            Some("US")
        );
    }

    #[test]
    fn rejects_unknown_regions() {
        assert!(Region::parse("XX").is_none());
        assert!(Region::parse("").is_none());
        assert!(Region::parse("GBR").is_none());
    }
}
