//! Folding text for matching: lower case, compatibility-decomposed, with every combining
//! mark removed. "Ánh" → "anh", "Ёлкин" → "елкин", "Йогурт" → "иогурт", "สมศักดิ์" → "สมศกด".
//! Stored keys and typed queries are folded the same way, so accents, tone marks and
//! case never decide whether a patient is found.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        match STROKED.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

/// Letters whose mark is part of the letter, so decomposing doesn't remove it: "Đặng" is
/// found as "dang", "Łukasz" as "lukasz". Migration V4 applies the same map to stored keys.
const STROKED: &[(char, &str)] = &[
    ('đ', "d"),
    ('ø', "o"),
    ('ł', "l"),
    ('ß', "ss"),
    ('æ', "ae"),
    ('œ', "oe"),
    ('þ', "th"),
    ('ı', "i"),
    ('ħ', "h"),
    ('ŧ', "t"),
];

/// Folded words: runs of letters and digits.
pub fn words(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

pub fn digits(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_digit()).collect()
}

/// Search tokens for one phone number: all its digits, and its last nine digits (the
/// national number without country code or trunk zero), so "+66 81 234 5678",
/// "081-234-5678" and "812345678" find each other.
pub fn phone_tokens(phone: &str) -> Vec<String> {
    let d = digits(phone);
    if d.is_empty() {
        return vec![];
    }
    let mut out = vec![d.clone()];
    if d.len() > 9 {
        out.push(d[d.len() - 9..].to_string());
    }
    out
}

/// Identifier documents compare without separators or case: "1-1037-00123-45-6" → "1103700123456".
pub fn id_token(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_latin_cyrillic_and_thai() {
        assert_eq!(fold("Ánh NGUYỄN"), "anh nguyen");
        assert_eq!(fold("Ёлкин Йосиф"), "елкин иосиф");
        assert_eq!(fold("สมศักดิ์"), "สมศกด");
        assert_eq!(fold("Müller-Lüdenscheidt"), "muller-ludenscheidt");
        assert_eq!(
            fold("ĐẶNG Łukasz Søren Straße Æsir"),
            "dang lukasz soren strasse aesir"
        );
    }

    #[test]
    fn words_and_phones() {
        assert_eq!(
            words("  O'Brien, Anne-Marie "),
            vec!["o", "brien", "anne", "marie"]
        );
        assert_eq!(
            phone_tokens("+66 81 234 5678"),
            vec!["66812345678", "812345678"]
        );
        assert_eq!(
            phone_tokens("081-234-5678"),
            vec!["0812345678", "812345678"]
        );
        assert_eq!(id_token("1-1037-00123-45-6"), "1103700123456");
    }
}
