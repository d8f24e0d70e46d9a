//! Search: an FTS5 index over folded names and identifier tokens (record number, phone
//! digits and their last nine, national ID), kept by triggers. Every typed word must match
//! as a prefix, in any order. A page is at most 50 rows; nothing loads all patients.

use rusqlite::Connection;

use super::{summary, SearchPage, SUMMARY};
use crate::error::Result;
use crate::text::{id_token, phone_tokens, words};

/// The identifier tokens the search index holds for a patient.
pub(super) fn search_keys(mrn: &str, phones: &[String], national_id: Option<&str>) -> String {
    let mut keys = words(mrn);
    // "K3F-000123" is also found as "123".
    if let Some(n) = keys.last().map(|n| n.trim_start_matches('0').to_string()) {
        if !n.is_empty() {
            keys.push(n);
        }
    }
    for p in phones {
        keys.extend(phone_tokens(p));
    }
    if let Some(n) = national_id {
        keys.push(id_token(n));
    }
    keys.join(" ")
}

/// The FTS5 query for what someone typed: every word must match as a prefix, in any
/// order, against names or identifiers. `None` when nothing searchable was typed.
pub fn fts_query(text: &str) -> Option<String> {
    let word_query = |words: Vec<String>| -> Option<String> {
        let mut parts = vec![];
        for w in words {
            // Tokens are letters and digits only, so quoting needs no escaping.
            let mut alts = vec![format!("\"{w}\"*")];
            if w.bytes().all(|b| b.is_ascii_digit()) {
                // A phone typed with its trunk zero ("0812…") also matches the national number.
                let bare = w.trim_start_matches('0');
                if bare.len() >= 3 && bare != w {
                    alts.push(format!("\"{bare}\"*"));
                }
                // A whole number typed another way than it was stored ("07700 900123" for
                // "+44 7700 900123", "8 916 …" for "+7 916 …", "+66 …" for "81…") shares its
                // last nine digits, which every stored phone has as a token of its own.
                if w.len() > 9 {
                    alts.push(format!("\"{}\"*", &w[w.len() - 9..]));
                }
            }
            parts.push(if alts.len() == 1 {
                alts.remove(0)
            } else {
                format!("({})", alts.join(" OR "))
            });
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    };
    let separate = word_query(words(text));
    // Digits with separators may be one identifier (a phone "081-234 56", a passport
    // "AB 123456") or several words ("123-000045", a record number of a device whose code
    // is digits; "Anna 1985"): match either.
    let joined = id_token(text);
    if words(text).len() > 1 && text.chars().any(|c| c.is_ascii_digit()) {
        let whole = word_query(vec![joined])?;
        return Some(match separate {
            Some(sep) => format!("({whole}) OR ({sep})"),
            None => whole,
        });
    }
    separate
}

pub const PAGE_MAX: u32 = 50;

/// One page of patients matching `text`. Empty text lists the most recently changed.
/// Never loads more than a page.
pub fn search(conn: &Connection, text: &str, offset: u32, limit: u32) -> Result<SearchPage> {
    let limit = limit.clamp(1, PAGE_MAX);
    let fetch = (limit + 1) as i64;
    let mut items = match fts_query(text) {
        Some(q) => conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY} FROM (SELECT rowid FROM patients_fts WHERE patients_fts MATCH ?1 LIMIT ?2 OFFSET ?3) m
                 JOIN patients p ON p.pk = m.rowid"
            ))?
            .query_map(rusqlite::params![q, fetch, offset], summary)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => conn
            .prepare_cached(&format!("SELECT {SUMMARY} FROM patients p ORDER BY p.updated_at DESC, p.pk DESC LIMIT ?1 OFFSET ?2"))?
            .query_map(rusqlite::params![fetch, offset], summary)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    let next_offset = (items.len() as i64 == fetch).then(|| {
        items.pop();
        offset + limit
    });
    Ok(SearchPage { items, next_offset })
}

/// The same query against the index alone, without fetching rows: the benchmark's
/// baseline for `search`.
pub fn search_raw_ids(conn: &Connection, text: &str, offset: u32, limit: u32) -> Result<Vec<i64>> {
    let Some(q) = fts_query(text) else {
        return Ok(vec![]);
    };
    Ok(conn
        .prepare_cached(
            "SELECT rowid FROM patients_fts WHERE patients_fts MATCH ?1 LIMIT ?2 OFFSET ?3",
        )?
        .query_map(rusqlite::params![q, (limit + 1) as i64, offset], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_words_and_widen_phones() {
        assert_eq!(fts_query("  "), None);
        assert_eq!(fts_query("Ann SMI"), Some("\"ann\"* AND \"smi\"*".into()));
        assert_eq!(
            fts_query("081-234 56"),
            Some("((\"08123456\"* OR \"8123456\"*)) OR (\"081\"* AND \"234\"* AND \"56\"*)".into()),
            "a phone typed with separators, or separate numbers"
        );
        assert_eq!(
            fts_query("0812345"),
            Some("(\"0812345\"* OR \"812345\"*)".into())
        );
        assert_eq!(fts_query("\"; DROP"), Some("\"drop\"*".into()));
    }

    #[test]
    fn record_numbers_are_found_without_zeros() {
        assert_eq!(search_keys("K3F-000123", &[], None), "k3f 000123 123");
        assert_eq!(
            search_keys("K3F-000123", &["+66 81 234 5678".into()], Some("AB 12-34")),
            "k3f 000123 123 66812345678 812345678 ab1234"
        );
    }
}
