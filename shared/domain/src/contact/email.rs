//! Email addresses: trimmed, domain lower-cased, checked for a plausible shape.

use crate::error::FieldError;
use unicode_normalization::UnicodeNormalization;

/// A syntactically valid email address in Unicode NFC, with its domain lower-cased.
///
/// Uniqueness within a tenant compares [`EmailAddress::key`], the whole address lower-cased:
/// mailbox providers treat local parts case-insensitively, and so do our users. Both are NFC, so
/// that `josé@` typed with a combining accent and with a precomposed `é` are one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// RFC 5321 limits a forward path to 254 octets.
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let invalid = |message: &str| FieldError::new(field, "invalid_email", message);
        // ASCII is its own NFC: most addresses skip the normalisation.
        let raw = raw.trim();
        let normalised: String = if raw.is_ascii() {
            raw.to_owned()
        } else {
            raw.nfc().collect()
        };
        let trimmed = normalised.as_str();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "required", "must not be empty"));
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} bytes", Self::MAX_LEN),
            ));
        }
        let (local, domain) = trimmed
            .rsplit_once('@')
            .ok_or_else(|| invalid("must contain an @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the part before @ must be 1 to 64 characters"));
        }
        if local.contains('@') || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "must not contain spaces, control characters or a second @",
            ));
        }
        let domain = domain.to_lowercase();
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("the domain must look like example.com"));
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form duplicates are detected on.
    pub fn key(&self) -> String {
        if self.0.is_ascii() {
            return self.0.to_ascii_lowercase();
        }
        self.0.to_lowercase().nfc().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases_the_domain_only() {
        let email = EmailAddress::parse("  Ada.Lovelace@Example.COM ", "/e").unwrap();
        assert_eq!(email.as_str(), "Ada.Lovelace@example.com");
        assert_eq!(email.key(), "ada.lovelace@example.com");
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_address() {
        let composed = EmailAddress::parse("jos\u{e9}@example.com", "/e").unwrap();
        let decomposed = EmailAddress::parse("jose\u{301}@example.com", "/e").unwrap();
        assert_eq!(decomposed.as_str(), composed.as_str());
        assert_eq!(decomposed.key(), composed.key());
    }

    #[test]
    fn accepts_international_domains() {
        assert!(EmailAddress::parse("jose@correo.españa.es", "/e").is_ok());
    }

    #[test]
    fn rejects_malformed_addresses() {
        for raw in [
            "plainaddress",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
            "a@b@example.com",
        ] {
            let error = EmailAddress::parse(raw, "/emails/0/address").unwrap_err();
            assert_eq!(error.field, "/emails/0/address", "{raw}");
            assert_eq!(error.code, "invalid_email", "{raw}");
        }
    }

    #[test]
    fn rejects_empty_and_overlong() {
        assert_eq!(
            EmailAddress::parse("  ", "/e").unwrap_err().code,
            "required"
        );
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            EmailAddress::parse(&long, "/e").unwrap_err().code,
            "too_long"
        );
    }
}
