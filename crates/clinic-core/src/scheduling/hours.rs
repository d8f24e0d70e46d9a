//! Time arithmetic for schedules: weekly hours (local) to UTC intervals, whether a
//! booking fits the hours, and free slots. Pure functions over loaded rows.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use specta::Type;

use super::doctors::WorkingBlock;

pub type Interval = (DateTime<Utc>, DateTime<Utc>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Slot {
    pub doctor_id: String,
    /// UTC, RFC 3339.
    pub starts_at: String,
    pub ends_at: String,
}

/// The UTC instant of `minute` minutes after local midnight of `date`. In a DST gap the
/// first valid instant after it; in an overlap the earlier one.
pub fn local_instant(tz: Tz, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(minute as i64);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The working blocks of `date` as UTC intervals, with their slot length.
pub fn day_blocks(blocks: &[WorkingBlock], date: NaiveDate, tz: Tz) -> Vec<(Interval, u16)> {
    let weekday = date.weekday().number_from_monday() as u8;
    blocks
        .iter()
        .filter(|b| b.weekday == weekday)
        .filter_map(|b| {
            let s = local_instant(tz, date, b.start_minute)?;
            let e = local_instant(tz, date, b.end_minute)?;
            (e > s).then_some(((s, e), b.slot_minutes))
        })
        .collect()
}

fn overlaps(a: &Interval, b: &Interval) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Whether [start, end) lies inside one working block of its local day and clear of
/// every exception.
pub fn within_hours(
    blocks: &[WorkingBlock],
    exceptions: &[Interval],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: Tz,
) -> bool {
    let date = local_date(tz, start);
    let inside = day_blocks(blocks, date, tz)
        .iter()
        .any(|((s, e), _)| *s <= start && end <= *e);
    inside && !exceptions.iter().any(|x| overlaps(x, &(start, end)))
}

/// Free slots of one doctor from `from` for `days` local days, skipping slots that have
/// started before `now`, overlap an exception, or overlap a `busy` interval.
/// `busy` and `exceptions` need not be sorted.
#[allow(clippy::too_many_arguments)]
pub fn free_slots(
    doctor_id: &str,
    blocks: &[WorkingBlock],
    exceptions: &[Interval],
    busy: &[Interval],
    from: DateTime<Utc>,
    days: u32,
    now: DateTime<Utc>,
    tz: Tz,
) -> Vec<Slot> {
    let mut busy: Vec<Interval> = busy.iter().chain(exceptions).copied().collect();
    busy.sort();
    let first = local_date(tz, from);
    let mut out = vec![];
    let mut cursor = 0usize;
    for d in 0..days {
        let date = first + Duration::days(d as i64);
        let mut blocks = day_blocks(blocks, date, tz);
        blocks.sort_by_key(|b| b.0 .0);
        for ((bs, be), slot) in blocks {
            let step = Duration::minutes(slot as i64);
            let mut s = bs;
            while s + step <= be {
                let e = s + step;
                if s >= from && s >= now {
                    // Busy intervals ending before this slot can be skipped for good.
                    while cursor < busy.len() && busy[cursor].1 <= s {
                        cursor += 1;
                    }
                    let clash = busy[cursor..]
                        .iter()
                        .take_while(|b| b.0 < e)
                        .any(|b| overlaps(b, &(s, e)));
                    if !clash {
                        out.push(Slot {
                            doctor_id: doctor_id.to_string(),
                            starts_at: crate::ids::ts(s),
                            ends_at: crate::ids::ts(e),
                        });
                    }
                }
                s = e;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(weekday: u8, start_h: u16, end_h: u16, slot: u16) -> WorkingBlock {
        WorkingBlock {
            weekday,
            start_minute: start_h * 60,
            end_minute: end_h * 60,
            slot_minutes: slot,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        crate::ids::parse_ts(s).unwrap()
    }

    #[test]
    fn local_hours_become_utc() {
        let bkk: Tz = "Asia/Bangkok".parse().unwrap();
        // 2026-03-02 is a Monday; 09:00 in Bangkok is 02:00 UTC.
        let b = day_blocks(
            &[block(1, 9, 12, 30)],
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            bkk,
        );
        assert_eq!(
            b,
            vec![((t("2026-03-02T02:00:00Z"), t("2026-03-02T05:00:00Z")), 30)]
        );
        assert!(day_blocks(
            &[block(1, 9, 12, 30)],
            NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
            bkk
        )
        .is_empty());
    }

    #[test]
    fn dst_days_keep_local_hours() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 (Sunday) Berlin springs forward: 09:00 local is 07:00 UTC.
        let b = day_blocks(
            &[block(7, 9, 10, 30)],
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            berlin,
        );
        assert_eq!(b[0].0 .0, t("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn slots_skip_busy_exceptions_and_the_past() {
        let utc: Tz = "UTC".parse().unwrap();
        let hours = [block(1, 9, 11, 30)];
        let busy = [(t("2026-03-02T09:30:00Z"), t("2026-03-02T10:00:00Z"))];
        let exc = [(t("2026-03-02T10:30:00Z"), t("2026-03-02T12:00:00Z"))];
        let slots = free_slots(
            "d",
            &hours,
            &exc,
            &busy,
            t("2026-03-02T00:00:00Z"),
            1,
            t("2026-03-02T09:10:00Z"),
            utc,
        );
        let starts: Vec<&str> = slots.iter().map(|s| s.starts_at.as_str()).collect();
        assert_eq!(
            starts,
            vec!["2026-03-02T10:00:00.000000Z"],
            "09:00 has started, 09:30 busy, 10:30 blocked"
        );
        assert!(within_hours(
            &hours,
            &exc,
            t("2026-03-02T09:00:00Z"),
            t("2026-03-02T09:45:00Z"),
            utc
        ));
        assert!(
            !within_hours(
                &hours,
                &exc,
                t("2026-03-02T08:45:00Z"),
                t("2026-03-02T09:15:00Z"),
                utc
            ),
            "starts before hours"
        );
        assert!(
            !within_hours(
                &hours,
                &exc,
                t("2026-03-02T10:15:00Z"),
                t("2026-03-02T10:45:00Z"),
                utc
            ),
            "runs into an exception"
        );
    }
}
