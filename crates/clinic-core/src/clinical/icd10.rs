//! The ICD-10-CM code list (`assets/icd10cm/`, embedded) and its search: by code ("e11",
//! "E11.9") or by words in any order, each typed word matching the start of a word of the
//! description or of an inclusion term ("diab typ 2", "high blood"). Words are folded as
//! patient search folds them (`text::words`). A clinic's own names for codes (Russian, Thai)
//! are searched beside it: see `local_names`.
//!
//! The list is read once, on first use (`Index::get`): 98,147 codes. Each code keeps the ids
//! of its folded words; the vocabulary is sorted, so the words a typed prefix matches are one
//! range of ids. The rarest typed word picks the candidates (from its postings), the others
//! filter them by range.

use std::io::Read;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use specta::Type;

use crate::text;

const LIST_GZ: &[u8] = include_bytes!("../../../../assets/icd10cm/icd10cm-2026.tsv.gz");

/// The edition shipped, as papers and the about box name it.
pub const EDITION: &str = "ICD-10-CM FY2026 (April 1, 2026)";

/// A code of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct IcdCode {
    /// With its dot: "E11.9".
    pub code: String,
    /// A leaf of the classification, the detail a diagnosis is recorded at. Categories
    /// ("E11") are found too, to narrow the search.
    pub billable: bool,
    pub description: String,
    /// The clinic's own name for it in the language searched, if it has one.
    pub local_name: Option<String>,
}

struct Entry {
    code: Box<str>,
    billable: bool,
    description: Box<str>,
    /// Folded code without its dot ("e119"), for code search.
    key: Box<str>,
    /// Ids of its folded words (description first, then inclusion terms), sorted, unique.
    words: Box<[u32]>,
    /// How many words the description has: shorter descriptions rank first.
    description_words: u16,
    /// Ids of the description's own words, sorted (a match there ranks before a match only
    /// in an inclusion term).
    own_words: Box<[u32]>,
}

pub struct Index {
    entries: Vec<Entry>,
    /// Sorted folded words; a word's id is its place here.
    vocab: Vec<Box<str>>,
    /// For each word id, the entries that have it, ascending.
    postings: Vec<Vec<u32>>,
}

static INDEX: OnceLock<Index> = OnceLock::new();

impl Index {
    /// The list, read and indexed on first use (a few hundred milliseconds).
    pub fn get() -> &'static Index {
        INDEX.get_or_init(Index::load)
    }

    fn load() -> Index {
        let mut tsv = String::new();
        flate2::read::GzDecoder::new(LIST_GZ)
            .read_to_string(&mut tsv)
            .expect("the embedded ICD-10-CM list is gzip'd UTF-8");
        // (code, billable, description, folded words, how many of them the description's)
        type Raw = (Box<str>, bool, Box<str>, Vec<String>, usize);
        let mut raw: Vec<Raw> = vec![];
        for line in tsv.lines() {
            let mut f = line.split('\t');
            let (Some(code), Some(leaf), Some(desc)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let terms = f.next().unwrap_or("");
            let own = text::words(desc);
            let n = own.len();
            let mut words = own;
            words.extend(text::words(terms));
            raw.push((code.into(), leaf == "1", desc.into(), words, n));
        }
        let mut vocab: Vec<Box<str>> = raw
            .iter()
            .flat_map(|r| r.3.iter().map(|w| Box::<str>::from(w.as_str())))
            .collect();
        vocab.sort_unstable();
        vocab.dedup();
        let id = |w: &str| vocab.binary_search_by(|v| (**v).cmp(w)).expect("in vocab") as u32;
        let mut postings = vec![vec![]; vocab.len()];
        let mut entries = Vec::with_capacity(raw.len());
        for (i, (code, billable, description, words, n)) in raw.into_iter().enumerate() {
            let mut own: Vec<u32> = words[..n].iter().map(|w| id(w)).collect();
            own.sort_unstable();
            own.dedup();
            let mut all: Vec<u32> = words.iter().map(|w| id(w)).collect();
            all.sort_unstable();
            all.dedup();
            for &w in &all {
                postings[w as usize].push(i as u32);
            }
            entries.push(Entry {
                key: code_key(&code).into(),
                code,
                billable,
                description,
                words: all.into(),
                description_words: n.min(u16::MAX as usize) as u16,
                own_words: own.into(),
            });
        }
        Index {
            entries,
            vocab,
            postings,
        }
    }

    /// Reads the list on another thread if nobody has yet, so the first search is quick.
    pub fn warm() {
        if INDEX.get().is_none() {
            std::thread::spawn(|| {
                Index::get();
            });
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The code, if the list has it ("e11.9", "E119" and "E11.9" are the same).
    pub fn lookup(&self, code: &str) -> Option<IcdCode> {
        let key = code_key(code);
        self.entries
            .binary_search_by(|e| e.key.as_ref().cmp(key.as_str()))
            .ok()
            .map(|i| self.code_of(i))
    }

    fn code_of(&self, i: usize) -> IcdCode {
        let e = &self.entries[i];
        IcdCode {
            code: e.code.to_string(),
            billable: e.billable,
            description: e.description.to_string(),
            local_name: None,
        }
    }

    /// The ids of the vocabulary words starting with `prefix`.
    fn range(&self, prefix: &str) -> std::ops::Range<u32> {
        let lo = self.vocab.partition_point(|v| v.as_ref() < prefix);
        let hi = lo + self.vocab[lo..].partition_point(|v| v.starts_with(prefix));
        lo as u32..hi as u32
    }

    /// At most `limit` codes for `query`: codes starting with it first (when it looks like a
    /// code), then codes whose words all match, best first.
    pub fn search(&self, query: &str, limit: usize) -> Vec<IcdCode> {
        let mut out: Vec<usize> = vec![];
        let words = text::words(query);
        if words.is_empty() || limit == 0 {
            return vec![];
        }
        // A code, or the start of one: a letter then a digit ("e1", "E11.9", "s72001a").
        let key = code_key(query);
        if looks_like_code(&key) {
            let lo = self
                .entries
                .partition_point(|e| e.key.as_ref() < key.as_str());
            out.extend(
                self.entries[lo..]
                    .iter()
                    .take_while(|e| e.key.starts_with(key.as_str()))
                    .take(limit)
                    .enumerate()
                    .map(|(k, _)| lo + k),
            );
        }
        if out.len() < limit {
            for i in self.by_words(&words, limit) {
                if out.len() == limit {
                    break;
                }
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out.into_iter().map(|i| self.code_of(i)).collect()
    }

    fn by_words(&self, words: &[String], limit: usize) -> Vec<usize> {
        let mut ranges: Vec<(std::ops::Range<u32>, usize)> = words
            .iter()
            .map(|w| {
                let r = self.range(w);
                let n = r.clone().map(|id| self.postings[id as usize].len()).sum();
                (r, n)
            })
            .collect();
        if ranges.iter().any(|(r, _)| r.is_empty()) {
            return vec![];
        }
        ranges.sort_by_key(|(_, n)| *n);
        let (first, rest) = ranges.split_first().expect("a word");
        let mut candidates: Vec<u32> = first
            .0
            .clone()
            .flat_map(|id| self.postings[id as usize].iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let has = |ids: &[u32], r: &std::ops::Range<u32>| {
            // `ids` is sorted: the first id not below the range's start decides.
            let at = ids.partition_point(|&w| w < r.start);
            ids.get(at).is_some_and(|&w| w < r.end)
        };
        let mut hits: Vec<(bool, u16, bool, u32)> = candidates
            .into_iter()
            .filter(|&i| {
                let e = &self.entries[i as usize];
                rest.iter().all(|(r, _)| has(&e.words, r))
            })
            .map(|i| {
                let e = &self.entries[i as usize];
                let in_description = ranges.iter().all(|(r, _)| has(&e.own_words, r));
                // Best first: every word in the description itself, fewer words in it
                // (the more general, closer match), billable codes, then code order.
                (!in_description, e.description_words, !e.billable, i)
            })
            .collect();
        let keep = limit.min(hits.len());
        if keep < hits.len() {
            hits.select_nth_unstable(keep);
            hits.truncate(keep);
        }
        hits.sort_unstable();
        hits.into_iter().map(|h| h.3 as usize).collect()
    }
}

/// "E11.9" → "e119": folded, without dots or spaces.
pub fn code_key(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn looks_like_code(key: &str) -> bool {
    let mut c = key.chars();
    matches!((c.next(), c.next()), (Some(a), Some(b)) if a.is_ascii_alphabetic() && b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_list_is_there_and_codes_are_found_however_typed() {
        let ix = Index::get();
        assert_eq!(ix.len(), 98_147);
        let e119 = ix.lookup("e119").unwrap();
        assert_eq!(e119.code, "E11.9");
        assert!(e119.billable);
        assert_eq!(
            e119.description,
            "Type 2 diabetes mellitus without complications"
        );
        assert!(!ix.lookup("E11").unwrap().billable);
        assert!(ix.lookup("Z99.999").is_none());
        let found = ix.search("e11.6", 5);
        assert_eq!(found[0].code, "E11.6");
        assert!(found.iter().all(|c| c.code.starts_with("E11.6")));
    }

    #[test]
    fn words_in_any_order_match_descriptions_and_inclusion_terms() {
        let ix = Index::get();
        let codes =
            |q: &str| -> Vec<String> { ix.search(q, 20).into_iter().map(|c| c.code).collect() };
        assert!(codes("diab typ 2 without compl").contains(&"E11.9".to_string()));
        assert!(codes("mellitus TYPE 2 diabetes").contains(&"E11.9".to_string()));
        // "High blood pressure" is an inclusion term of I10.
        assert_eq!(codes("high blood pressure")[0], "I10");
        assert_eq!(codes("essential hypertension")[0], "I10");
        // Accents and case are folded as in patient search.
        assert!(codes("ASTHMA").iter().any(|c| c.starts_with("J45")));
        assert!(codes("asthmä").iter().any(|c| c.starts_with("J45")));
        assert!(codes("zzqx nothing").is_empty());
        assert!(ix.search("", 20).is_empty());
        assert_eq!(ix.search("fracture", 7).len(), 7);
    }
}
