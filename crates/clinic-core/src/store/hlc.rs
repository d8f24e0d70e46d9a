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
/// The last millisecond the text form holds (13 digits: year 2286).
pub const MAX_MS: i64 = 9_999_999_999_999;

/// The clock has no stamp left after the greatest it has made or seen. No stamp a PC takes
/// is more than `clinic_sync_proto::MAX_STAMP_AHEAD_MS` ahead of its clock, so only a wall
/// clock set near the year 2286 gets here: the write fails rather than repeat a stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockExhausted;

impl Hlc {
    pub fn parse(s: &str) -> Option<Hlc> {
        let (ms, counter) = s.split_once('-')?;
        if ms.len() != 13
            || counter.len() != 5
            || !s.bytes().all(|b| b == b'-' || b.is_ascii_digit())
        {
            return None;
        }
        Some(Hlc {
            ms: ms.parse().ok()?,
            counter: counter.parse().ok()?,
        })
    }

    /// The stamp for a change made now, after `self` (the greatest stamp made or seen):
    /// always greater than `self`, never clamped. A wall clock before 1970 counts as 1970.
    pub fn tick(self, now_ms: i64) -> Result<Hlc, ClockExhausted> {
        let next = if now_ms > self.ms {
            Hlc {
                ms: now_ms,
                counter: 0,
            }
        } else if self.counter < MAX_COUNTER {
            Hlc {
                ms: self.ms.max(0),
                counter: self.counter + 1,
            }
        } else {
            Hlc {
                ms: self.ms + 1,
                counter: 0,
            }
        };
        if next.ms > MAX_MS || next <= self {
            return Err(ClockExhausted);
        }
        Ok(next)
    }
}

impl fmt::Display for Hlc {
    /// Fixed width while `ms` is within 0..=MAX_MS, which `tick` and `parse` keep it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}-{:05}", self.ms, self.counter)
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
        let a = Hlc::default().tick(1_000).unwrap();
        let b = a.tick(900).unwrap(); // the clock stepped back
        let c = b.tick(1_000).unwrap();
        let d = c.tick(5_000).unwrap();
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
        assert_eq!(full.tick(7), Ok(Hlc { ms: 8, counter: 0 }));
        assert_eq!(Hlc::parse("12-3"), None);
        assert_eq!(Hlc::parse("+000000000012-00003"), None);
    }

    /// At the top of the clock a tick fails: it never repeats the last stamp (the fault the
    /// review found: every later change got the same text, and PCs took edits as already held).
    #[test]
    fn the_clock_fails_at_its_last_stamp_instead_of_repeating_it() {
        let top = Hlc {
            ms: MAX_MS,
            counter: MAX_COUNTER - 1,
        };
        let last = top.tick(0).unwrap();
        assert!(last > top);
        assert_eq!(last.to_string(), "9999999999999-99999");
        assert_eq!(last.tick(0), Err(ClockExhausted));
        assert_eq!(last.tick(MAX_MS + 5), Err(ClockExhausted));
        assert_eq!(Hlc::default().tick(MAX_MS + 1), Err(ClockExhausted));
        // A wall clock before 1970 still gives stamps of fixed width that sort.
        let early = Hlc::default().tick(-5).unwrap();
        assert_eq!(early.to_string(), "0000000000000-00001");
    }
}
