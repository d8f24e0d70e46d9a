//! Field checks shared by every form. Each returns the cleaned value or an
//! `Error::Invalid` naming the field, so the UI can mark it and translate the reason.

use crate::error::{Error, FieldName, Reason, Result};

/// Trims; refuses empty and over-long (counted in characters).
pub fn required(field: impl Into<FieldName>, v: &str, max_chars: usize) -> Result<String> {
    let field = field.into();
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::invalid(field, Reason::Required));
    }
    if t.chars().count() > max_chars {
        return Err(Error::invalid_limit(
            field,
            Reason::TooLong,
            max_chars as i64,
        ));
    }
    Ok(t.to_string())
}

/// Trims; empty becomes `None`.
pub fn optional(field: impl Into<FieldName>, v: &str, max_chars: usize) -> Result<Option<String>> {
    let field = field.into();
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > max_chars {
        return Err(Error::invalid_limit(
            field,
            Reason::TooLong,
            max_chars as i64,
        ));
    }
    Ok(Some(t.to_string()))
}

/// A phone number as people write it: digits with spaces, dashes, dots, brackets and
/// one leading '+'. Stored as typed (trimmed); 6 to 15 digits (E.164's maximum).
pub fn phone(field: impl Into<FieldName>, v: &str) -> Result<Option<String>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let ok_chars = t.char_indices().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
    });
    let digits = t.chars().filter(|c| c.is_ascii_digit()).count();
    if !ok_chars || !(6..=15).contains(&digits) {
        return Err(Error::invalid(field, Reason::InvalidFormat));
    }
    Ok(Some(t.to_string()))
}

/// A plausible address: one '@', a dot in the domain, no spaces. Deliverability is
/// not our business; typos like "ann@gmail" are.
pub fn email(field: impl Into<FieldName>, v: &str) -> Result<Option<String>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let valid = t.len() <= 254
        && !t.contains(char::is_whitespace)
        && match t.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !valid {
        return Err(Error::invalid(field, Reason::InvalidFormat));
    }
    Ok(Some(t.to_string()))
}

/// Sign-in names: 3 to 32 of a-z, 0-9, '.', '_', '-'; stored lower-case.
pub fn username(v: &str, field: impl Into<FieldName>) -> Result<String> {
    let field = field.into();
    let t = v.trim().to_lowercase();
    if t.is_empty() {
        return Err(Error::invalid(field, Reason::Required));
    }
    if t.len() < 3 {
        return Err(Error::invalid_limit(field, Reason::TooShort, 3));
    }
    if t.len() > 32 {
        return Err(Error::invalid_limit(field, Reason::TooLong, 32));
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::invalid(field, Reason::InvalidFormat));
    }
    Ok(t)
}

/// The largest amount of money one price, cost or payment may be, in minor units
/// (100,000,000.00 in a two-digit currency). With quantities capped at 1,000,000 per line and
/// 500 lines an invoice, sums stay far inside `i64`.
pub const MAX_AMOUNT: i64 = 10_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Field {
        Phone,
        Email,
        FullName,
        Username,
    }
    impl crate::error::FieldEnum for Field {}

    #[test]
    fn phones() {
        assert_eq!(
            phone(Field::Phone, " +66 81-234-5678 ").unwrap().as_deref(),
            Some("+66 81-234-5678")
        );
        assert_eq!(phone(Field::Phone, "").unwrap(), None);
        assert!(phone(Field::Phone, "12345").is_err(), "too few digits");
        assert!(
            phone(Field::Phone, "+7 (912) 555 12 34 5678 9").is_err(),
            "too many digits"
        );
        assert!(phone(Field::Phone, "8 800 CALL").is_err());
        assert!(
            phone(Field::Phone, "66+812345678").is_err(),
            "plus only at the start"
        );
    }

    #[test]
    fn emails() {
        assert!(email(Field::Email, "ann@clinic.co.th").unwrap().is_some());
        for bad in [
            "ann",
            "ann@clinic",
            "ann@@clinic.com",
            "a n@clinic.com",
            "ann@.com",
            "ann@clinic..com",
        ] {
            assert!(email(Field::Email, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(username(" Ann.Lee ", Field::Username).unwrap(), "ann.lee");
        assert!(username("an", Field::Username).is_err());
        assert!(username("анна", Field::Username).is_err());
    }

    #[test]
    fn required_counts_characters() {
        assert!(required(Field::FullName, "สมชาย", 5).is_ok());
        assert!(required(Field::FullName, "สมชายใจ", 5).is_err());
        assert!(required(Field::FullName, "   ", 5).is_err());
    }
}
