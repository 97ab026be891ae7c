//! Duplicate candidates: two live contacts of a tenant that look like one person, with the reasons
//! and a score.

use crate::ids::ContactId;
use serde::{Deserialize, Serialize};

/// Why two contacts look alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Both have an address of this mailbox (`ada+news@example.com` and `ada@example.com`; Gmail
    /// ignores dots in the local part).
    Email { mailbox: String },
    /// Both have this number (E.164).
    Phone { e164: String },
    /// Their names are this similar (trigram similarity, 0 to 1) and they work for this company.
    NameAndCompany { similarity: f64, company: String },
}

impl Reason {
    /// How sure this reason alone makes us that the two are one person, 0 to 1.
    fn weight(&self) -> f64 {
        match self {
            Reason::Email { .. } => 0.9,
            Reason::Phone { .. } => 0.8,
            Reason::NameAndCompany { similarity, .. } => 0.75 * similarity.clamp(0.0, 1.0),
        }
    }
}

/// The score of a pair with `reasons`: the chance that at least one reason is right, taking each
/// as independent evidence (`1 - Π(1 - weight)`), rounded to two decimals.
pub fn score(reasons: &[Reason]) -> f64 {
    let doubt: f64 = reasons.iter().map(|r| 1.0 - r.weight()).product();
    ((1.0 - doubt) * 100.0).round() / 100.0
}

/// One side of a pair, enough to tell who it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateContact {
    pub id: ContactId,
    pub display_name: String,
    pub company: Option<String>,
    pub email: Option<String>,
}

/// Two contacts that may be one person, the lower id first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicatePair {
    pub contact_ids: [ContactId; 2],
    pub score: f64,
    pub reasons: Vec<Reason>,
    pub contacts: Vec<CandidateContact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_reasons_make_a_higher_score() {
        let email = Reason::Email {
            mailbox: "ada@example.com".into(),
        };
        let phone = Reason::Phone {
            e164: "+14155550101".into(),
        };
        let name = Reason::NameAndCompany {
            similarity: 0.8,
            company: "acme".into(),
        };
        assert_eq!(score(std::slice::from_ref(&email)), 0.9);
        assert_eq!(score(std::slice::from_ref(&name)), 0.6);
        assert_eq!(score(&[email.clone(), phone.clone()]), 0.98);
        assert!(score(&[email, phone, name]) <= 1.0);
    }
}
