//! Phone numbers, parsed with libphonenumber's metadata and stored as E.164 with their region.

use crate::contact::ContactPhone;
use crate::error::FieldError;
use crate::region::Region;
use phonenumber::Mode;

/// A valid phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    raw: String,
    e164: String,
    national: String,
    region: Region,
}

impl PhoneNumber {
    pub const MAX_RAW_CHARS: usize = 40;

    /// Parses `raw` as dialled from `default_region`; a number written with its own country code
    /// (`+49 ...`, `00 49 ...`) keeps that country whatever the default.
    pub fn parse(raw: &str, default_region: Region, field: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "required", "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_RAW_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_RAW_CHARS),
            ));
        }
        let invalid = || {
            FieldError::new(
                field,
                "invalid_phone",
                format!(
                    "is not a valid phone number (read with default region {})",
                    default_region
                ),
            )
        };
        let parsed =
            phonenumber::parse(Some(default_region.id()), trimmed).map_err(|_| invalid())?;
        let parsed = if phonenumber::is_valid(&parsed) {
            parsed
        } else {
            without_trunk_prefix(&parsed).ok_or_else(invalid)?
        };
        let region = parsed
            .country()
            .id()
            .map(Region::from_id)
            .ok_or_else(invalid)?;
        Ok(Self {
            raw: trimmed.to_owned(),
            e164: parsed.format().mode(Mode::E164).to_string(),
            national: parsed.format().mode(Mode::National).to_string(),
            region,
        })
    }

    /// The number as a stored contact holds it (read when it was stored); `None` when the stored
    /// region is not one this build knows.
    pub fn as_stored(stored: &ContactPhone) -> Option<Self> {
        Some(Self {
            raw: stored.number.clone(),
            e164: stored.e164.clone(),
            national: stored.national.clone(),
            region: Region::parse(&stored.region)?,
        })
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    pub fn national(&self) -> &str {
        &self.national
    }

    pub fn region(&self) -> Region {
        self.region
    }
}

/// An international number written with its national trunk prefix after the country code
/// (`+44 (0)20 7946 0958`, `+49 (0)30 1234567`): libphonenumber drops the prefix when what is
/// left is a valid number, and so do we. Only a number that is not valid as written is retried.
fn without_trunk_prefix(parsed: &phonenumber::PhoneNumber) -> Option<phonenumber::PhoneNumber> {
    if parsed.national().zeros() == 0 {
        return None;
    }
    let retry = phonenumber::parse(
        None,
        format!("+{}{}", parsed.code().value(), parsed.national().value()),
    )
    .ok()?;
    phonenumber::is_valid(&retry).then_some(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> Region {
        Region::parse(code).unwrap()
    }

    #[test]
    fn reads_national_numbers_with_the_default_region() {
        let phone = PhoneNumber::parse("020 7946 0018", region("GB"), "/p").unwrap();
        assert_eq!(phone.e164(), "+442079460018");
        assert_eq!(phone.region().code(), "GB");
        assert_eq!(phone.raw(), "020 7946 0018");
    }

    #[test]
    fn a_country_code_overrides_the_default_region() {
        let phone = PhoneNumber::parse("+49 30 901820", region("US"), "/p").unwrap();
        assert_eq!(phone.e164(), "+4930901820");
        assert_eq!(phone.region().code(), "DE");
    }

    #[test]
    fn distinguishes_regions_that_share_a_country_code() {
        let toronto = PhoneNumber::parse("+1 416 979 2000", region("US"), "/p").unwrap();
        assert_eq!(toronto.region().code(), "CA");
        let new_york = PhoneNumber::parse("(212) 736-5000", region("US"), "/p").unwrap();
        assert_eq!(new_york.region().code(), "US");
    }

    #[test]
    fn reads_a_trunk_prefix_after_the_country_code_as_libphonenumber_does() {
        for (raw, e164) in [
            ("+44 (0)20 7946 0958", "+442079460958"),
            ("+44 020 7946 0958", "+442079460958"),
            ("+49 (0)30 1234567", "+49301234567"),
        ] {
            let phone = PhoneNumber::parse(raw, region("US"), "/phones/0/number").unwrap();
            assert_eq!(phone.e164(), e164, "{raw}");
            assert_eq!(phone.raw(), raw, "kept as given");
        }
        // A number valid as written is not retried.
        let london = PhoneNumber::parse("+44 20 7946 0958", region("US"), "/p").unwrap();
        assert_eq!(london.e164(), "+442079460958");
    }

    #[test]
    fn rejects_impossible_numbers_with_the_field() {
        for raw in ["12", "not a phone", "+44 20 7946 00189999"] {
            let error = PhoneNumber::parse(raw, region("GB"), "/phones/2/number").unwrap_err();
            assert_eq!(error.field, "/phones/2/number", "{raw}");
            assert_eq!(error.code, "invalid_phone", "{raw}");
        }
    }
}
