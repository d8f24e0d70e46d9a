//! Password rules, TOTP and one-time recovery codes.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

use super::Field;
use crate::error::{Error, Reason, Result};
use crate::ids::{group, normalize_code, random_bytes, random_code};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const RECOVERY_CODES: usize = 10;

const COMMON_PASSWORDS: &str = include_str!("../../../../assets/common-passwords.txt");

fn is_common(password: &str) -> bool {
    let p = password.to_lowercase();
    COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .any(|l| l.to_lowercase() == p)
}

/// Refuses short, common and username-derived passwords. Length counts characters,
/// not bytes, so Thai and Cyrillic passwords are measured fairly.
pub fn check_password_policy(password: &str, username: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Error::invalid_limit(
            Field::Password,
            Reason::TooShort,
            MIN_PASSWORD_CHARS as i64,
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Error::invalid_limit(
            Field::Password,
            Reason::TooLong,
            MAX_PASSWORD_CHARS as i64,
        ));
    }
    let distinct = {
        let mut c: Vec<char> = password.chars().collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    let lower = password.to_lowercase();
    let user = username.trim().to_lowercase();
    if is_common(password)
        || distinct < 4
        || (!user.is_empty() && lower.contains(&user) && user.len() * 2 >= n)
    {
        return Err(Error::invalid(Field::Password, Reason::TooCommon));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// TOTP (RFC 6238): SHA-1, 6 digits, 30 s steps, one step of clock skew either way.
// These are what every authenticator app understands.

const TOTP_DIGITS: usize = 6;
const TOTP_STEP: u64 = 30;
const TOTP_SKEW: u64 = 1;

fn totp(
    secret: &[u8],
    algorithm: Algorithm,
    digits: usize,
    issuer: &str,
    account: &str,
) -> Result<TOTP> {
    // totp-rs refuses ':' in issuer and label (it separates them in the otpauth URL).
    let clean = |s: &str| s.replace(':', " ");
    TOTP::new(
        algorithm,
        digits,
        0,
        TOTP_STEP,
        secret.to_vec(),
        Some(clean(issuer)),
        clean(account),
    )
    .map_err(|e| Error::Internal(format!("TOTP setup: {e}")))
}

/// A fresh 160-bit secret, base32 as authenticator apps show it.
pub fn new_totp_secret() -> String {
    base32_encode(&random_bytes::<20>())
}

pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

/// What an authenticator app lists an account as: the issuer is always "ClinicDesk", and
/// the label is the username with the start of the clinic's name, so a person working at two
/// clinics tells them apart. Both stay short whatever the clinic is called: the otpauth URL
/// carries the issuer twice, URL-encoded (a Thai letter is 9 bytes there), and a QR code
/// holds at most about 2,300 bytes.
pub const TOTP_ISSUER: &str = "ClinicDesk";
const LABEL_CLINIC_CHARS: usize = 24;

pub fn enrolment_label(username: &str, clinic_name: &str) -> String {
    let clinic: String = clinic_name.chars().take(LABEL_CLINIC_CHARS).collect();
    format!("{username} ({})", clinic.trim())
}

pub fn enrolment(secret_base32: &str, username: &str, clinic_name: &str) -> Result<Enrolment> {
    let label = enrolment_label(username, clinic_name);
    let t = totp(
        &base32_decode(secret_base32)?,
        Algorithm::SHA1,
        TOTP_DIGITS,
        TOTP_ISSUER,
        &label,
    )?;
    Ok(Enrolment {
        secret_base32: secret_base32.to_string(),
        otpauth_url: t.get_url(),
        qr_png_base64: t.get_qr_base64().map_err(Error::Internal)?,
    })
}

/// The code for the step containing `unix_time`.
pub fn totp_code(secret_base32: &str, unix_time: u64) -> Result<String> {
    Ok(totp(
        &base32_decode(secret_base32)?,
        Algorithm::SHA1,
        TOTP_DIGITS,
        "x",
        "x",
    )?
    .generate(unix_time))
}

/// Which time step `code` belongs to, within one step of `unix_time`. Callers refuse
/// a step at or before the last one accepted, so a code works only once.
pub fn totp_matching_step(secret_base32: &str, code: &str, unix_time: u64) -> Result<Option<u64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(
        &base32_decode(secret_base32)?,
        Algorithm::SHA1,
        TOTP_DIGITS,
        "x",
        "x",
    )?;
    let now_step = unix_time / TOTP_STEP;
    for step in now_step.saturating_sub(TOTP_SKEW)..=now_step + TOTP_SKEW {
        if constant_eq(t.generate(step * TOTP_STEP).as_bytes(), code.as_bytes()) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(B32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(B32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = B32
            .iter()
            .position(|x| *x == c.to_ascii_uppercase())
            .ok_or_else(|| Error::Internal("bad base32 secret".into()))? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Recovery codes: 10 one-time codes of 10 Crockford characters (50 bits) each, shown
// once; only their SHA-256 is stored.

pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| group(&random_code(10), 5))
        .collect()
}

pub fn hash_recovery_code(code: &str) -> String {
    hex::encode(Sha256::digest(normalize_code(code).as_bytes()))
}

/// Whether `input` looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(input: &str) -> bool {
    normalize_code(input).len() == 10
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the same secret and times must give the published codes.
    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in vectors {
            assert_eq!(
                totp(&sha1, Algorithm::SHA1, 8, "i", "a")
                    .unwrap()
                    .generate(t),
                c1,
                "SHA1 at {t}"
            );
            assert_eq!(
                totp(&sha256, Algorithm::SHA256, 8, "i", "a")
                    .unwrap()
                    .generate(t),
                c256,
                "SHA256 at {t}"
            );
            assert_eq!(
                totp(&sha512, Algorithm::SHA512, 8, "i", "a")
                    .unwrap()
                    .generate(t),
                c512,
                "SHA512 at {t}"
            );
        }
        // And our 6-digit configuration is the last six digits of the same HOTP value.
        let secret = base32_encode(&sha1);
        assert_eq!(totp_code(&secret, 59).unwrap(), "287082");
        assert_eq!(totp_code(&secret, 1111111109).unwrap(), "081804");
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let s = new_totp_secret();
        let t = 1_800_000_000;
        let code = totp_code(&s, t).unwrap();
        assert_eq!(totp_matching_step(&s, &code, t).unwrap(), Some(t / 30));
        assert_eq!(
            totp_matching_step(&s, &code, t + 30).unwrap(),
            Some(t / 30),
            "one step late is fine"
        );
        assert_eq!(
            totp_matching_step(&s, &code, t + 90).unwrap(),
            None,
            "three steps late is not"
        );
        assert_eq!(totp_matching_step(&s, "12345", t).unwrap(), None);
    }

    #[test]
    fn enrolment_fits_a_qr_code_for_the_longest_clinic_names() {
        let s = new_totp_secret();
        for letter in ["ก", "Ж", "W", "ที่"] {
            let name = letter.repeat(200 / letter.chars().count());
            let username = "a".repeat(32);
            let e = enrolment(&s, &username, &name).unwrap_or_else(|e| panic!("{letter}: {e}"));
            assert!(e.qr_png_base64.len() > 100, "a QR image for {letter}");
            assert!(
                e.otpauth_url.contains("issuer=ClinicDesk"),
                "{}",
                e.otpauth_url
            );
        }
    }

    #[test]
    fn base32_roundtrip() {
        for n in 0..40 {
            let b: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&b)).unwrap(), b);
        }
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn password_policy() {
        let code = |p: &str| {
            check_password_policy(p, "ann.lee")
                .err()
                .map(|e| e.params()["reason"].clone())
        };
        assert_eq!(code("short1"), Some("too_short".into()));
        assert_eq!(code("Password123"), Some("too_common".into()));
        assert_eq!(code("aaaaaaaaaaaa"), Some("too_common".into()));
        assert_eq!(
            code("ann.lee2024!"),
            Some("too_common".into()),
            "username plus a little"
        );
        assert_eq!(code("пароль12345"), Some("too_common".into()));
        assert_eq!(
            code("ห้องตรวจสามชั้นบน"),
            None,
            "Thai passphrase counts characters"
        );
        assert_eq!(code("violet-tram-Kettle"), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut d = codes.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 10);
        assert_eq!(
            hash_recovery_code(&codes[0].to_lowercase().replace('-', " ")),
            hash_recovery_code(&codes[0])
        );
        assert!(looks_like_recovery_code(&codes[0]));
        assert!(!looks_like_recovery_code("123456"));
    }
}
