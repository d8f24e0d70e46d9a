//! Identifiers, timestamps and randomness.
//!
//! Row ids are UUIDv7: unique across devices without coordination and roughly time
//! ordered, so indexes stay append-friendly. Human-readable numbers are
//! `{device code}-{counter}`, where the counter is per device (see `Write::next_number`).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, FieldName, Reason, Result};

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The one text form for stored instants: UTC, RFC 3339, microseconds, `Z`. Sorts as text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An instant from outside (a query bound from the UI, in any RFC 3339 form) in the stored
/// form, so comparing it as text with stored instants is comparing instants.
pub fn stored_ts(s: &str, field: impl Into<FieldName>) -> Result<String> {
    parse_ts(s)
        .map(ts)
        .ok_or(Error::invalid(field, Reason::InvalidFormat))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

/// Crockford base32: no I, L, O, U, so codes read aloud and typed by hand survive.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `n` random Crockford base32 characters (5 bits of entropy each).
pub fn random_code(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<16>() {
            if out.len() == n {
                break;
            }
            out.push(CROCKFORD[(b & 31) as usize] as char);
        }
    }
    out
}

/// A device code: three Crockford characters, the first a letter, so record numbers
/// ("K3F-000123") never read as phone numbers.
pub fn device_code() -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ";
    let first = LETTERS[random_bytes::<1>()[0] as usize % LETTERS.len()] as char;
    format!("{first}{}", random_code(2))
}

/// Groups a code for reading: `ABCD-EFGH-...`.
pub fn group(code: &str, size: usize) -> String {
    code.as_bytes()
        .chunks(size)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalises typed input of a Crockford code: drops separators and spaces,
/// upper-cases, and maps the look-alikes O→0, I/L→1.
pub fn normalize_code(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// A clock the services read. Tests swap it to step over lockout delays and idle time.
pub type Clock = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    std::sync::Arc::new(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_as_text() {
        let a = ts(DateTime::from_timestamp(1_700_000_000, 5_000).unwrap());
        let b = ts(DateTime::from_timestamp(1_700_000_000, 50_000).unwrap());
        assert!(a < b, "{a} < {b}");
        assert!(a.ends_with('Z'));
        assert_eq!(parse_ts(&a).map(ts), Some(a));
    }

    #[test]
    fn codes_use_crockford_and_survive_typing() {
        let c = random_code(32);
        assert_eq!(c.len(), 32);
        assert!(c.bytes().all(|b| CROCKFORD.contains(&b)));
        assert_eq!(normalize_code(&group(&c, 4).to_lowercase()), c);
        assert_eq!(normalize_code("o1-il"), "0111");
    }

    #[test]
    fn device_codes_start_with_a_letter() {
        for _ in 0..200 {
            let c = device_code();
            assert_eq!(c.len(), 3);
            assert!(c.as_bytes()[0].is_ascii_alphabetic(), "{c}");
        }
    }

    #[test]
    fn ids_are_uuid_v7_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
        assert!(a < b);
    }
}
