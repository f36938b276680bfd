//! The read APIs' `from`/`to` parameters on arbitrary query strings
//! (`from=2026-01-31&to=2026-02-01&tz=Asia/Seoul&now=1764000000000`):
//! `eventflow::http::query::parse_bound` and `parse_range` (webinar
//! statistics) and `eventflow::http::campaigns::date_range` (campaigns).
//! `tz` picks the service's time zone from a few with odd offsets and DST,
//! `now` the clock (within 1970..=9999, as the clock is).
//!
//! Properties, beyond never panicking:
//! - an accepted bound lies within 1970..=9999 (0..=MAX_TS);
//! - a date as `from` starts its day, as `to` ends it: the day is 22 to 26
//!   hours long (St. John's had double summer time), and `to` of a date is
//!   `from` of the next;
//! - an accepted range has from < to, both bounds within 1970..=9999, and
//!   spans at most 400 days;
//! - an accepted range of dates has from <= to, both the dates of instants
//!   within 1970..=9999 (from 1969-12-31 west of UTC), and agrees with
//!   `parse_bound` on the date of an instant.
#![no_main]

use eventflow::event::MAX_TS;
use eventflow::http::campaigns::date_range;
use eventflow::http::query::{parse_bound, parse_range};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const NOW: i64 = 1_764_000_000_000;
const ZONES: [&str; 6] = [
    "UTC",
    "Asia/Seoul",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
];

fuzz_target!(|data: &[u8]| {
    let (mut from, mut to, mut zone, mut now) = (None, None, "UTC", NOW);
    for (key, value) in form_urlencoded::parse(data) {
        match &*key {
            "from" if from.is_none() => from = Some(value.into_owned()),
            "to" if to.is_none() => to = Some(value.into_owned()),
            "tz" => {
                if let Some(z) = ZONES.iter().find(|z| **z == value) {
                    zone = z;
                }
            }
            "now" => {
                if let Ok(n) = value.parse::<i64>() {
                    now = n.clamp(0, MAX_TS);
                }
            }
            _ => {}
        }
    }
    let tz = TimeZone::get(zone).expect("a zone of the bundled database");
    let (from, to) = (from.as_deref(), to.as_deref());

    for s in [from, to].into_iter().flatten() {
        let start = parse_bound("from", s, &tz, false);
        let end = parse_bound("to", s, &tz, true);
        for ms in [&start, &end].into_iter().flatten() {
            assert!((0..=MAX_TS).contains(ms), "{s:?}: {ms}");
        }
        if let (Ok(start), Ok(end), Some(date)) = (&start, &end, as_date(s)) {
            let len = end - start;
            assert!(
                (22 * HOUR_MS..=26 * HOUR_MS).contains(&len),
                "{s:?} in {zone}: {len} ms"
            );
            if let Ok(next) = date.tomorrow()
                && let Ok(next_start) = parse_bound("from", &next.to_string(), &tz, false)
            {
                assert_eq!(*end, next_start, "{s:?} in {zone}");
            }
        }
    }

    if let Ok((f, t)) = parse_range(from, to, &tz, now) {
        assert!(0 <= f && f < t && t <= MAX_TS, "{from:?}..{to:?}: {f}..{t}");
        assert!(t - f <= 400 * DAY_MS, "{from:?}..{to:?}: {f}..{t}");
    }

    if let Ok(range) = date_range(from, to, &tz, now) {
        // The first instant of 1970 is still 1969-12-31 west of UTC.
        let epoch = jiff::Timestamp::UNIX_EPOCH.to_zoned(tz.clone()).date();
        let first = epoch.min(Date::constant(1970, 1, 1));
        let last = Date::constant(9999, 12, 31);
        assert!(range.from <= range.to, "{from:?}..{to:?}: {range:?}");
        assert!(
            first <= range.from && range.to <= last,
            "{from:?}..{to:?}: {range:?}"
        );
        // An instant's date is its date in the zone.
        for (given, date) in [(from, range.from), (to, range.to)] {
            if let Some(s) = given
                && let Ok(ms) = parse_bound("from", s, &tz, false)
                && as_date(s).is_none()
            {
                // Bounds late in year 9999 lie past jiff's last instant; the
                // service gives them the last date (checked above).
                let Ok(t) = jiff::Timestamp::from_millisecond(ms) else {
                    assert_eq!(date, last, "{s:?} in {zone}");
                    continue;
                };
                let local = t.to_zoned(tz.clone()).date();
                assert_eq!(date, local, "{s:?} in {zone}");
            }
        }
    }
});

/// A bound written as a date (`2026-01-31`), as both parsers read it.
fn as_date(s: &str) -> Option<Date> {
    let s = s.trim();
    (s.len() == 10).then(|| s.parse().ok()).flatten()
}
