//! Postal addresses and ISO 3166-1 countries.

use crate::error::{FieldError, ValidationErrors};
use serde::{Deserialize, Serialize};

/// ISO 3166-1 alpha-2, officially assigned codes.
const COUNTRIES: &str =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK \
DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU \
GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY \
MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU \
RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

const MAX_LINE_CHARS: usize = 200;
const MAX_POSTAL_CODE_CHARS: usize = 20;

/// An address as sent; every part optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressDraft {
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// A postal address: trimmed, bounded parts; `country` an ISO 3166-1 alpha-2 code, upper case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl PostalAddress {
    /// `Ok(None)` when every part is blank.
    pub fn parse(draft: AddressDraft, errors: &mut ValidationErrors) -> Option<Self> {
        let mut part = |raw: Option<String>, name: &str, max: usize| {
            raw.and_then(|raw| {
                errors
                    .take(super::name::bounded_text(
                        &raw,
                        &format!("/address/{name}"),
                        max,
                    ))
                    .flatten()
            })
        };
        let street = part(draft.street, "street", MAX_LINE_CHARS);
        let city = part(draft.city, "city", MAX_LINE_CHARS);
        let region = part(draft.region, "region", MAX_LINE_CHARS);
        let postal_code = part(draft.postal_code, "postal_code", MAX_POSTAL_CODE_CHARS);
        let country = draft
            .country
            .map(|raw| raw.trim().to_ascii_uppercase())
            .filter(|code| !code.is_empty());
        let country = match country {
            Some(code) if code.len() == 2 && COUNTRIES.split_whitespace().any(|c| c == code) => {
                Some(code)
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "/address/country",
                    "invalid_country",
                    "must be an ISO 3166-1 alpha-2 code such as GB or US",
                ));
                None
            }
            None => None,
        };
        let address = Self {
            street,
            city,
            region,
            postal_code,
            country,
        };
        (address != Self::empty()).then_some(address)
    }

    fn empty() -> Self {
        Self {
            street: None,
            city: None,
            region: None,
            postal_code: None,
            country: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_country_and_trims_parts() {
        let mut errors = ValidationErrors::default();
        let address = PostalAddress::parse(
            AddressDraft {
                city: Some(" London ".into()),
                country: Some("gb".into()),
                ..Default::default()
            },
            &mut errors,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(address.city.as_deref(), Some("London"));
        assert_eq!(address.country.as_deref(), Some("GB"));
    }

    #[test]
    fn rejects_unknown_countries() {
        let mut errors = ValidationErrors::default();
        PostalAddress::parse(
            AddressDraft {
                country: Some("UK".into()),
                ..Default::default()
            },
            &mut errors,
        );
        assert_eq!(errors.0[0].field, "/address/country");
    }

    #[test]
    fn a_blank_address_is_none() {
        let mut errors = ValidationErrors::default();
        let draft = AddressDraft {
            street: Some("  ".into()),
            ..Default::default()
        };
        assert!(PostalAddress::parse(draft, &mut errors).is_none());
    }
}
