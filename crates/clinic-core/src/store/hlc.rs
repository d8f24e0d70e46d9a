//! Hybrid logical clock stamps: the order of versions of one record across PCs.
//!
//! A stamp is the wall clock in milliseconds plus a counter, never smaller than any stamp
//! this PC has made or seen. A change made after seeing another PC's change therefore sorts
//! after it even if this PC's clock is minutes behind, and two stamps are equal only by
//! coincidence, which the device id breaks. Wall clocks that drift only make the order less
//! like real time; it stays the same order on every PC.
//!
//! Text form: `{ms:013}-{counter:05}`, fixed width, so text order is stamp order (the server
//! compares them as text).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Hlc {
    pub ms: i64,
    pub counter: u32,
}

const MAX_COUNTER: u32 = 99_999;

impl Hlc {
    pub fn parse(s: &str) -> Option<Hlc> {
        let (ms, counter) = s.split_once('-')?;
        if ms.len() != 13 || counter.len() != 5 {
            return None;
        }
        Some(Hlc {
            ms: ms.parse().ok()?,
            counter: counter.parse().ok()?,
        })
    }

    /// The stamp for a change made now, after `self` (the greatest stamp made or seen).
    pub fn tick(self, now_ms: i64) -> Hlc {
        if now_ms > self.ms {
            Hlc {
                ms: now_ms,
                counter: 0,
            }
        } else if self.counter < MAX_COUNTER {
            Hlc {
                ms: self.ms,
                counter: self.counter + 1,
            }
        } else {
            Hlc {
                ms: self.ms + 1,
                counter: 0,
            }
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:013}-{:05}",
            self.ms.clamp(0, 9_999_999_999_999),
            self.counter
        )
    }
}

/// A version of a record: its stamp and the device (server id) that made it. Versions are
/// ordered by stamp, then device (`key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub hlc: String,
    pub device: String,
    /// The version this one was made on top of (`text()` form), none for a first version.
    pub base: Option<String>,
}

impl Version {
    /// `hlc@device`, as `change_log.base` stores it.
    pub fn text(&self) -> String {
        format!("{}@{}", self.hlc, self.device)
    }

    /// What versions are ordered by.
    pub fn key(&self) -> (&str, &str) {
        (&self.hlc, &self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_never_go_back_and_sort_as_text() {
        let a = Hlc::default().tick(1_000);
        let b = a.tick(900); // the clock stepped back
        let c = b.tick(1_000);
        let d = c.tick(5_000);
        assert!(a < b && b < c && c < d);
        let texts: Vec<String> = [a, b, c, d].iter().map(|h| h.to_string()).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert_eq!(Hlc::parse(&texts[1]), Some(b));
        assert_eq!(texts[0], "0000000001000-00000");
        let full = Hlc {
            ms: 7,
            counter: MAX_COUNTER,
        };
        assert_eq!(full.tick(7), Hlc { ms: 8, counter: 0 });
        assert_eq!(Hlc::parse("12-3"), None);
    }
}
