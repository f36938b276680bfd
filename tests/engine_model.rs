//! The presence engine against an independent, per-millisecond model of
//! DESIGN §2 (clocks, late events, ticks) and §3 (intervals and buckets).
//!
//! The model does no incremental bookkeeping: it records every viewer's
//! intervals `[start, end)` by the §3 rules, then computes each bucket
//! literally, millisecond by millisecond. Random small logs (few webinars and
//! viewers, short buckets and ttl, out-of-order stamps, ticks) are replayed
//! through both, and everything observable must agree:
//!
//! - every `Applied` (effective ts, late flag) and the late counter;
//! - after each record, the buckets each webinar has emitted so far are
//!   exactly the model's buckets that are final at its clock (`bucket_end <=
//!   clock`), in increasing `bucket_start` order;
//! - after each record, `Engine::live`: live(clock), the clock, and the open
//!   bucket so far;
//! - after `finish`, all emitted buckets equal the model's.
//!
//! The same goes for the distinct-viewer rollups per UTC hour and per
//! calendar day of `EngineConfig::timezone` (UTC, Asia/Kolkata whose days
//! turn at :30 UTC, America/New_York with a 25-hour day): a viewer counts in
//! a period if one of their intervals contains some millisecond of it, and a
//! period is emitted if someone was live in it or a ping, a leave that ended
//! a live interval or an expiry happened in it. The model marks every live
//! millisecond of every interval (and every event) in the hour and day
//! holding it. Checked: after each record, the rollups emitted so far are
//! exactly the model's with `end <= clock`; the snapshot's open hour and day
//! (distinct viewers with an interval containing some `k` in `[start, clock]`,
//! the open bucket's convention); after `finish`, all rollups.
//!
//! Logs start at 0 or just before a UTC midnight, a UTC hour that is not a
//! midnight, or a local midnight, and may jump to around the next hour or day
//! boundary, so they cross periods (and skip empty ones).

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use eventflow::engine::campaign::DateRange;
use eventflow::engine::{Engine, EngineConfig, OpenPeriod, Output, Period, PresenceStats};
use eventflow::event::{Event, Presence, PresenceAction, Tick};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const WEBINARS: [&str; 3] = ["w0", "w1", "w2"];
const VIEWERS: [&str; 5] = ["v0", "v1", "v2", "v3", "v4"];

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// A UTC midnight: 2024-10-04T00:00Z.
const MIDNIGHT: i64 = DAY_MS * 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cfg {
    bucket_ms: i64,
    ttl_ms: i64,
    late_ms: i64,
    tz: Tz,
}

/// The calendar of the daily rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tz {
    Utc,
    /// +05:30: days turn at :30 UTC, never on an hour boundary.
    Kolkata,
    /// With DST: 2024-11-03 lasts 25 hours.
    NewYork,
}

impl Tz {
    fn zone(self) -> TimeZone {
        match self {
            Tz::Utc => TimeZone::UTC,
            Tz::Kolkata => TimeZone::get("Asia/Kolkata").expect("bundled tzdb"),
            Tz::NewYork => TimeZone::get("America/New_York").expect("bundled tzdb"),
        }
    }

    /// Local midnight starting 2024-11-03 (the 25-hour day in New York).
    fn midnight(self) -> i64 {
        jiff::civil::date(2024, 11, 3)
            .to_zoned(self.zone())
            .expect("midnight exists")
            .timestamp()
            .as_millisecond()
    }
}

/// The calendar day of `tz` holding millisecond `k`, as `[start, end)`.
fn day_bounds(tz: &TimeZone, k: i64) -> (i64, i64) {
    let at = Timestamp::from_millisecond(k)
        .expect("in range")
        .to_zoned(tz.clone());
    let start = at.start_of_day().expect("the day starts");
    let end = start
        .tomorrow()
        .and_then(|z| z.start_of_day())
        .expect("the next day starts");
    (
        start.timestamp().as_millisecond(),
        end.timestamp().as_millisecond(),
    )
}

/// Hours and days of the model (the last day looked up is cached: jiff is
/// slow in debug builds).
struct Calendar {
    tz: TimeZone,
    day: Cell<(i64, i64)>,
}

impl Calendar {
    fn new(tz: Tz) -> Self {
        Calendar {
            tz: tz.zone(),
            day: Cell::new((0, 0)),
        }
    }

    /// The period holding millisecond `k`, as `[start, end)`.
    fn period(&self, period: Period, k: i64) -> (i64, i64) {
        match period {
            Period::Hour => {
                let h = k.div_euclid(HOUR_MS) * HOUR_MS;
                (h, h + HOUR_MS)
            }
            Period::Day => {
                let (s, e) = self.day.get();
                if s <= k && k < e {
                    return (s, e);
                }
                let day = day_bounds(&self.tz, k);
                self.day.set(day);
                day
            }
        }
    }
}

const PERIODS: [Period; 2] = [Period::Hour, Period::Day];

/// A rollup row: distinct viewers of webinar `w` over an hour or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rollup {
    w: usize,
    period: Period,
    start: i64,
    end: i64,
    unique: u32,
}

impl Rollup {
    /// Rows are compared sorted by this.
    fn key(&self) -> (usize, bool, i64) {
        (self.w, self.period == Period::Day, self.start)
    }
}

/// One log record; `w` and `v` index [`WEBINARS`] and [`VIEWERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    Ping { w: usize, v: usize, ts: i64 },
    Leave { w: usize, v: usize, ts: i64 },
    Tick { ts: i64 },
}

impl Rec {
    fn event(self) -> Event<'static> {
        let presence = |w: usize, v: usize, action, ts| {
            Event::Presence(Presence {
                id: None,
                webinar_id: Cow::Borrowed(WEBINARS[w]),
                viewer_id: Cow::Borrowed(VIEWERS[v]),
                action,
                ts: Some(ts),
            })
        };
        match self {
            Rec::Ping { w, v, ts } => presence(w, v, PresenceAction::Ping, ts),
            Rec::Leave { w, v, ts } => presence(w, v, PresenceAction::Leave, ts),
            Rec::Tick { ts } => Event::Tick(Tick { ts }),
        }
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// A viewer's interval `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Interval {
    viewer: usize,
    start: i64,
    end: i64,
    /// Ended by a leave at `end`; otherwise it ran out (an expiry at `end`),
    /// or it is still running.
    ended_by_leave: bool,
}

#[derive(Debug, Default)]
struct WebinarModel {
    /// Largest effective ts of this webinar's own events.
    own_clock: Option<i64>,
    /// Each viewer's latest interval not ended by a leave, as (start, end).
    /// It may have run out already (`end <= clock`).
    current: BTreeMap<usize, (i64, i64)>,
    /// Intervals that are over and no longer current.
    done: Vec<Interval>,
    /// Effective ts of every ping.
    pings: Vec<i64>,
    /// Effective ts of every leave that ended a live interval.
    leaves: Vec<i64>,
}

struct Model {
    cfg: Cfg,
    calendar: Calendar,
    /// Largest tick ts so far.
    tick_clock: Option<i64>,
    webinars: [WebinarModel; 3],
    late: u64,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        Model {
            cfg,
            calendar: Calendar::new(cfg.tz),
            tick_clock: None,
            webinars: Default::default(),
            late: 0,
        }
    }

    /// The webinar's clock: the largest effective ts among its events and
    /// all ticks (`None` < `Some`).
    fn clock(&self, w: usize) -> Option<i64> {
        self.webinars[w].own_clock.max(self.tick_clock)
    }

    /// Applies one record; returns its effective ts and whether it is late.
    fn apply(&mut self, rec: Rec) -> (i64, bool) {
        let (w, v, ts, is_ping) = match rec {
            Rec::Tick { ts } => {
                self.tick_clock = self.tick_clock.max(Some(ts));
                return (self.tick_clock.unwrap(), false);
            }
            Rec::Ping { w, v, ts } => (w, v, ts, true),
            Rec::Leave { w, v, ts } => (w, v, ts, false),
        };
        let clock = self.clock(w);
        let late = match clock {
            Some(c) => ts < c - self.cfg.late_ms,
            None => false,
        };
        let t = match clock {
            Some(c) => ts.max(c),
            None => ts,
        };
        self.late += u64::from(late);
        let ttl = self.cfg.ttl_ms;
        let wm = &mut self.webinars[w];
        wm.own_clock = Some(t);
        if is_ping {
            wm.pings.push(t);
            match wm.current.get(&v).copied() {
                // Live: extend.
                Some((start, end)) if t < end => {
                    wm.current.insert(v, (start, t + ttl));
                }
                // Ran out at `end`: that was an expiry; this is a join.
                Some((start, end)) => {
                    wm.done.push(Interval {
                        viewer: v,
                        start,
                        end,
                        ended_by_leave: false,
                    });
                    wm.current.insert(v, (t, t + ttl));
                }
                // Never live, or left: a join.
                None => {
                    wm.current.insert(v, (t, t + ttl));
                }
            }
        } else {
            match wm.current.get(&v).copied() {
                // Live: the interval ends at t.
                Some((start, end)) if t < end => {
                    wm.done.push(Interval {
                        viewer: v,
                        start,
                        end: t,
                        ended_by_leave: true,
                    });
                    wm.leaves.push(t);
                    wm.current.remove(&v);
                }
                // Not live: nothing changes.
                _ => {}
            }
        }
        (t, late)
    }

    /// Every interval of the webinar so far; current ones with their present
    /// end (i.e. as if they run to their end).
    fn intervals(&self, w: usize) -> Vec<Interval> {
        let wm = &self.webinars[w];
        let mut all = wm.done.clone();
        for (&viewer, &(start, end)) in &wm.current {
            all.push(Interval {
                viewer,
                start,
                end,
                ended_by_leave: false,
            });
        }
        all
    }

    /// live(clock): viewers whose interval contains the clock.
    fn live_now(&self, w: usize) -> u32 {
        let Some(c) = self.clock(w) else { return 0 };
        live_viewers(&self.intervals(w), c).count_ones()
    }

    /// The open bucket so far: the bucket holding the clock `c`, with
    /// min/max/unique over `k` in `[b, c]` (live(c) is the count now),
    /// Σ live(k) over `[b, c)`, and the events at effective ts in `[b, c]`.
    fn open_bucket(&self, w: usize) -> PresenceStats {
        let c = self.clock(w).expect("a webinar with state has a clock");
        let width = self.cfg.bucket_ms;
        let b = c.div_euclid(width) * width;
        let wm = &self.webinars[w];
        measure(
            &self.intervals(w),
            &wm.pings,
            &wm.leaves,
            b,
            width,
            Buckets {
                ks: b..c + 1,
                sum_ks: b..c,
                events: b..c + 1,
            },
        )
    }

    /// End of input: every interval runs to its end; each bucket that
    /// qualifies under the §3 emission rule, sorted by (webinar, bucket).
    fn final_rows(&self) -> Vec<(usize, PresenceStats)> {
        let width = self.cfg.bucket_ms;
        let bucket_of = |t: i64| t.div_euclid(width) * width;
        let mut rows = Vec::new();
        for w in 0..WEBINARS.len() {
            let wm = &self.webinars[w];
            let intervals = self.intervals(w);
            // Every bucket an interval overlaps or ends in, or an event falls
            // in (logs span days: the empty stretches between are skipped;
            // they would not qualify anyway).
            let mut starts = BTreeSet::new();
            for i in &intervals {
                starts.extend((bucket_of(i.start)..=bucket_of(i.end)).step_by(width as usize));
            }
            starts.extend(wm.pings.iter().chain(&wm.leaves).map(|&t| bucket_of(t)));
            for b in starts {
                let s = measure(
                    &intervals,
                    &wm.pings,
                    &wm.leaves,
                    b,
                    width,
                    Buckets {
                        ks: b..b + width,
                        sum_ks: b..b + width,
                        events: b..b + width,
                    },
                );
                let emitted = s.max_concurrent > 0 || s.pings > 0 || s.leaves > 0 || s.expiries > 0;
                if emitted {
                    rows.push((w, s));
                }
            }
        }
        rows
    }

    /// End of input: every hour and day (in the configured time zone) in
    /// which someone was live, or a ping, a leave (that ended a live
    /// interval) or an expiry happened, with its distinct viewers: those
    /// with an interval containing some millisecond of it. Sorted by
    /// [`Rollup::key`].
    fn final_rollups(&self) -> Vec<Rollup> {
        let mut rows = Vec::new();
        for w in 0..WEBINARS.len() {
            let wm = &self.webinars[w];
            // (period, start) -> (end, viewers seen in it); present = active.
            let mut periods: BTreeMap<(bool, i64), (i64, u32)> = BTreeMap::new();
            let mut mark = |k: i64, viewers: u32| {
                for period in PERIODS {
                    let (start, end) = self.calendar.period(period, k);
                    let seen = periods
                        .entry((period == Period::Day, start))
                        .or_insert((end, 0));
                    assert_eq!(seen.0, end, "one end per period");
                    seen.1 |= viewers;
                }
            };
            for i in self.intervals(w) {
                // Live at every k of the interval (none if it is empty).
                for k in i.start..i.end {
                    mark(k, 1 << i.viewer);
                }
                if !i.ended_by_leave {
                    // It runs out at its end: an expiry.
                    mark(i.end, 0);
                }
            }
            for &t in wm.pings.iter().chain(&wm.leaves) {
                mark(t, 0);
            }
            rows.extend(
                periods
                    .into_iter()
                    .map(|((is_day, start), (end, seen))| Rollup {
                        w,
                        period: if is_day { Period::Day } else { Period::Hour },
                        start,
                        end,
                        unique: seen.count_ones(),
                    }),
            );
        }
        rows
    }

    /// Per webinar, the viewers (bits) with a live millisecond on each local
    /// day (keyed by the day's start).
    fn viewer_days(&self) -> Vec<BTreeMap<i64, u32>> {
        (0..WEBINARS.len())
            .map(|w| {
                let mut days: BTreeMap<i64, u32> = BTreeMap::new();
                for i in self.intervals(w) {
                    let mut k = i.start;
                    while k < i.end {
                        let (start, end) = self.calendar.period(Period::Day, k);
                        *days.entry(start).or_default() |= 1 << i.viewer;
                        k = end;
                    }
                }
                days
            })
            .collect()
    }

    /// The open hour and day so far: the periods holding the clock `c`, with
    /// the distinct viewers that have an interval containing some `k` in
    /// `[start, c]` (as for the open bucket: whoever is live at `c` counts).
    fn open_periods(&self, w: usize) -> [OpenPeriod; 2] {
        let c = self.clock(w).expect("a webinar with a clock");
        let intervals = self.intervals(w);
        PERIODS.map(|period| {
            let (start, end) = self.calendar.period(period, c);
            let seen = intervals
                .iter()
                // Some k in [start, c] with i.start <= k < i.end.
                .filter(|i| i.start.max(start) < i.end.min(c + 1))
                .fold(0u32, |seen, i| seen | 1 << i.viewer);
            OpenPeriod {
                period,
                start,
                end,
                unique_viewers: seen.count_ones(),
            }
        })
    }
}

/// The viewers live at millisecond `k`, as a bit set.
fn live_viewers(intervals: &[Interval], k: i64) -> u32 {
    let mut set = 0u32;
    for i in intervals {
        if i.start <= k && k < i.end {
            assert_eq!(
                set & (1 << i.viewer),
                0,
                "a viewer has one interval at a time"
            );
            set |= 1 << i.viewer;
        }
    }
    set
}

/// The millisecond ranges a bucket's numbers are taken over.
struct Buckets {
    /// For min, max and unique viewers.
    ks: Range<i64>,
    /// For Σ live(k).
    sum_ks: Range<i64>,
    /// For pings, joins, leaves and expiries (by effective ts).
    events: Range<i64>,
}

fn measure(
    intervals: &[Interval],
    pings: &[i64],
    leaves: &[i64],
    b: i64,
    width: i64,
    r: Buckets,
) -> PresenceStats {
    let mut min = u32::MAX;
    let mut max = 0;
    let mut seen = 0u32;
    for k in r.ks.clone() {
        let set = live_viewers(intervals, k);
        min = min.min(set.count_ones());
        max = max.max(set.count_ones());
        seen |= set;
    }
    let mut live_ms = 0u64;
    for k in r.sum_ks.clone() {
        live_ms += u64::from(live_viewers(intervals, k).count_ones());
    }
    let count = |n: usize| n as u32;
    PresenceStats {
        bucket_start: b,
        bucket_end: b + width,
        min_concurrent: min,
        max_concurrent: max,
        live_ms,
        unique_viewers: seen.count_ones(),
        pings: count(pings.iter().filter(|t| r.events.contains(t)).count()),
        joins: count(
            intervals
                .iter()
                .filter(|i| r.events.contains(&i.start))
                .count(),
        ),
        leaves: count(leaves.iter().filter(|t| r.events.contains(t)).count()),
        expiries: count(
            intervals
                .iter()
                .filter(|i| !i.ended_by_leave && r.events.contains(&i.end))
                .count(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Engine against model
// ---------------------------------------------------------------------------

fn webinar_index(id: &str) -> usize {
    WEBINARS
        .iter()
        .position(|w| *w == id)
        .expect("only known webinars")
}

/// What the engine emitted so far.
#[derive(Default)]
struct Emitted {
    buckets: Vec<(usize, PresenceStats)>,
    rollups: Vec<Rollup>,
}

/// Moves the engine's new presence buckets and rollups into `emitted`,
/// checking that each webinar's buckets, and its rows of each period, come
/// out in increasing start order.
fn collect(engine: &mut Engine, emitted: &mut Emitted) -> Result<(), TestCaseError> {
    for out in engine.drain() {
        match out {
            Output::Presence(bucket) => {
                let w = webinar_index(&bucket.webinar_id);
                let buckets = &mut emitted.buckets;
                if let Some((_, prev)) = buckets.iter().rev().find(|(x, _)| *x == w) {
                    prop_assert!(
                        prev.bucket_start < bucket.stats.bucket_start,
                        "{}: bucket {} emitted after {}",
                        WEBINARS[w],
                        bucket.stats.bucket_start,
                        prev.bucket_start
                    );
                }
                buckets.push((w, bucket.stats));
            }
            Output::Rollup(r) => {
                let row = Rollup {
                    w: webinar_index(&r.webinar_id),
                    period: r.period,
                    start: r.start,
                    end: r.end,
                    unique: r.unique_viewers,
                };
                let rollups = &mut emitted.rollups;
                let same = |x: &&Rollup| x.w == row.w && x.period == row.period;
                if let Some(prev) = rollups.iter().rev().find(same) {
                    prop_assert!(
                        prev.end <= row.start,
                        "{}: {:?} emitted after {:?}",
                        WEBINARS[row.w],
                        row,
                        prev
                    );
                }
                rollups.push(row);
            }
            Output::Activity(_) => {}
        }
    }
    Ok(())
}

/// `rows` sorted by [`Rollup::key`].
fn sorted(rows: impl IntoIterator<Item = Rollup>) -> Vec<Rollup> {
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by_key(Rollup::key);
    rows
}

/// The (agreed) final presence buckets and rollups of a log.
type Rows = (Vec<(usize, PresenceStats)>, Vec<Rollup>);

/// Replays `recs` through the engine and the model and checks everything
/// listed in the module docs. Returns the (agreed) final buckets.
fn check(cfg: Cfg, recs: &[Rec]) -> Result<Vec<(usize, PresenceStats)>, TestCaseError> {
    Ok(check_all(cfg, recs)?.0)
}

/// An engine with the case's settings.
fn engine_for(cfg: Cfg) -> Engine {
    Engine::new(EngineConfig {
        bucket_ms: cfg.bucket_ms,
        ttl_ms: cfg.ttl_ms,
        late_ms: cfg.late_ms,
        timezone: cfg.tz.zone(),
        ..EngineConfig::default()
    })
    .expect("valid config")
}

/// [`check`], returning the rollups as well.
fn check_all(cfg: Cfg, recs: &[Rec]) -> Result<Rows, TestCaseError> {
    let mut model = Model::new(cfg);
    for &r in recs {
        model.apply(r);
    }
    let expected = model.final_rows();
    let expected_rollups = model.final_rollups();

    let mut engine = engine_for(cfg);
    let mut model = Model::new(cfg);
    let mut emitted = Emitted::default();
    for (n, &rec) in recs.iter().enumerate() {
        let applied = engine.apply(&rec.event(), None).expect("ts is set");
        let (ts, late) = model.apply(rec);
        prop_assert_eq!(
            (applied.ts, applied.late),
            (ts, late),
            "(effective ts, late) of record {} {:?}",
            n,
            rec
        );
        collect(&mut engine, &mut emitted)?;
        for (w, id) in WEBINARS.iter().enumerate() {
            let clock = model.clock(w);
            let final_at = |end: i64| clock.is_some_and(|c| end <= c);
            let got: Vec<_> = emitted.buckets.iter().filter(|(x, _)| *x == w).collect();
            let due: Vec<_> = expected
                .iter()
                .filter(|(x, s)| *x == w && final_at(s.bucket_end))
                .collect();
            prop_assert_eq!(
                got,
                due,
                "{}: buckets emitted after record {} {:?} (clock {:?})",
                id,
                n,
                rec,
                clock
            );
            let got = sorted(emitted.rollups.iter().copied().filter(|r| r.w == w));
            let due: Vec<_> = expected_rollups
                .iter()
                .copied()
                .filter(|r| r.w == w && final_at(r.end))
                .collect();
            prop_assert_eq!(
                got,
                due,
                "{}: rollups emitted after record {} {:?} (clock {:?})",
                id,
                n,
                rec,
                clock
            );
            let snapshot = engine.live(id);
            let live = snapshot.as_ref().map_or(0, |s| s.live);
            prop_assert_eq!(
                live,
                model.live_now(w),
                "{}: live after record {} {:?}",
                id,
                n,
                rec
            );
            match snapshot {
                Some(s) => {
                    prop_assert_eq!(Some(s.ts), clock, "{}: clock after record {}", id, n);
                    prop_assert_eq!(
                        s.open_bucket,
                        model.open_bucket(w),
                        "{}: open bucket after record {} {:?}",
                        id,
                        n,
                        rec
                    );
                    prop_assert_eq!(
                        s.open_periods,
                        model.open_periods(w),
                        "{}: open hour and day after record {} {:?}",
                        id,
                        n,
                        rec
                    );
                }
                // No state: the open hour and day have counted nobody.
                None if clock.is_some() => {
                    let unique = model.open_periods(w).map(|p| p.unique_viewers);
                    prop_assert_eq!(
                        unique,
                        [0, 0],
                        "{}: no state, but distinct viewers in the open hour and day after record {} {:?}",
                        id,
                        n,
                        rec
                    );
                }
                None => {}
            }
        }
    }
    engine.finish();
    collect(&mut engine, &mut emitted)?;
    // Stable: each webinar's buckets keep their (checked) emission order.
    emitted.buckets.sort_by_key(|(w, _)| *w);
    prop_assert_eq!(&emitted.buckets, &expected, "final buckets");
    prop_assert_eq!(&sorted(emitted.rollups), &expected_rollups, "final rollups");
    prop_assert_eq!(engine.counters().late, model.late, "late count");
    // Distinct viewers over any days and webinars together (the campaign
    // overview's live_viewers): those with a live millisecond in the range.
    let days = model.viewer_days();
    let tz = cfg.tz.zone();
    let date = |k: i64| {
        Timestamp::from_millisecond(k)
            .unwrap()
            .to_zoned(tz.clone())
            .date()
    };
    let all: BTreeSet<i64> = days.iter().flat_map(|d| d.keys().copied()).collect();
    let mut ranges: Vec<(i64, i64)> = all.iter().map(|&d| (d, d)).collect();
    if let (Some(&first), Some(&last)) = (all.first(), all.last()) {
        ranges.push((first, last));
    }
    let view = engine.campaigns();
    for subset in 1..(1u32 << WEBINARS.len()) {
        let names: Vec<&str> = (0..WEBINARS.len())
            .filter(|w| subset & (1 << w) != 0)
            .map(|w| WEBINARS[w])
            .collect();
        for &(from, to) in &ranges {
            let mut seen = 0u32;
            for (w, d) in days.iter().enumerate() {
                if subset & (1 << w) != 0 {
                    seen |= d.range(from..=to).fold(0, |acc, (_, v)| acc | v);
                }
            }
            let range = DateRange {
                from: date(from),
                to: date(to),
            };
            prop_assert_eq!(
                view.live_viewers(&names, range),
                u64::from(seen.count_ones()),
                "distinct viewers of {:?} over {:?}",
                names,
                range
            );
        }
    }
    check_batched(cfg, recs, &model, &expected, &expected_rollups)?;
    Ok((expected, expected_rollups))
}

/// The same records through [`Engine::apply_all`] in uneven batches (1, 4,
/// 13, 40, … records): its look-ahead changes nothing applied, emitted or
/// live.
fn check_batched(
    cfg: Cfg,
    recs: &[Rec],
    model: &Model,
    expected: &[(usize, PresenceStats)],
    expected_rollups: &[Rollup],
) -> Result<(), TestCaseError> {
    let mut engine = engine_for(cfg);
    let events: Vec<Event<'static>> = recs.iter().map(|r| r.event()).collect();
    let mut replayed = Model::new(cfg);
    let mut emitted = Emitted::default();
    let (mut start, mut size) = (0, 1);
    while start < events.len() {
        let end = (start + size).min(events.len());
        let mut applied = Vec::new();
        engine.apply_all(
            &events[start..end],
            |_| None,
            |i, a| {
                applied.push((start + i, a.expect("ts is set")));
            },
        );
        prop_assert_eq!(applied.len(), end - start, "one result per event");
        for (n, a) in applied {
            let (ts, late) = replayed.apply(recs[n]);
            prop_assert_eq!((a.ts, a.late), (ts, late), "batched: record {}", n);
        }
        collect(&mut engine, &mut emitted)?;
        (start, size) = (end, size * 3 + 1);
    }
    for (w, id) in WEBINARS.iter().enumerate() {
        let snapshot = engine.live(id);
        prop_assert_eq!(
            snapshot.as_ref().map_or(0, |s| s.live),
            model.live_now(w),
            "batched: {} live at the end",
            id
        );
        if let Some(s) = snapshot {
            prop_assert_eq!(
                s.open_bucket,
                model.open_bucket(w),
                "batched: {} open bucket",
                id
            );
        }
    }
    engine.finish();
    collect(&mut engine, &mut emitted)?;
    emitted.buckets.sort_by_key(|(w, _)| *w);
    prop_assert_eq!(&emitted.buckets[..], expected, "batched: final buckets");
    prop_assert_eq!(
        &sorted(emitted.rollups)[..],
        expected_rollups,
        "batched: final rollups"
    );
    prop_assert_eq!(engine.counters().late, model.late, "batched: late count");
    Ok(())
}

// ---------------------------------------------------------------------------
// Random logs
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Kind {
    Ping,
    Leave,
    Tick,
}

/// How a record's ts follows the previous record's.
#[derive(Debug, Clone, Copy)]
enum Step {
    By(i64),
    /// To the next multiple of ttl: pings there land exactly on `end`.
    NextTtlMultiple,
    /// To the next bucket boundary.
    NextBucket,
    /// To the next UTC hour boundary, plus this (may be negative).
    NextHour(i64),
    /// To the next day boundary of the configured time zone, plus this.
    NextDay(i64),
}

/// Where a log starts: `Zero`, or this many ms before a period boundary.
#[derive(Debug, Clone, Copy)]
enum Base {
    Zero,
    BeforeUtcMidnight(i64),
    /// 05:00Z: an hour boundary that is no midnight (10:30 in Kolkata).
    BeforeHour(i64),
    /// A midnight of the configured time zone.
    BeforeLocalMidnight(i64),
}

impl Base {
    fn at(self, tz: Tz) -> i64 {
        match self {
            Base::Zero => 0,
            Base::BeforeUtcMidnight(d) => MIDNIGHT - d,
            Base::BeforeHour(d) => MIDNIGHT + 5 * HOUR_MS - d,
            Base::BeforeLocalMidnight(d) => tz.midnight() - d,
        }
    }
}

fn arb_case() -> impl Strategy<Value = (Cfg, Vec<Rec>)> {
    let cfg = (
        prop_oneof![1i64..=50, Just(1i64), Just(7), Just(10)],
        1i64..=60,
        0i64..=20,
        1usize..=WEBINARS.len(),
        1usize..=VIEWERS.len(),
        prop_oneof![2 => Just(Tz::Utc), 1 => Just(Tz::Kolkata), 1 => Just(Tz::NewYork)],
    );
    let before = prop_oneof![Just(0i64), 1i64..=300, 1i64..=3_000];
    let base = prop_oneof![
        1 => Just(Base::Zero),
        2 => before.clone().prop_map(Base::BeforeUtcMidnight),
        1 => before.clone().prop_map(Base::BeforeHour),
        2 => before.prop_map(Base::BeforeLocalMidnight),
    ];
    (cfg, base)
        .prop_flat_map(
            |((bucket_ms, ttl_ms, late_ms, webinars, viewers, tz), base)| {
                // Around a boundary, often exactly on it.
                let near = prop_oneof![Just(0i64), -(ttl_ms + 2)..=ttl_ms + 2];
                let step = prop_oneof![
                    4 => (0i64..=3).prop_map(Step::By),
                    4 => (0i64..=ttl_ms + 2).prop_map(Step::By),
                    1 => Just(Step::By(ttl_ms)),
                    1 => Just(Step::By(bucket_ms)),
                    1 => Just(Step::NextTtlMultiple),
                    1 => Just(Step::NextBucket),
                    2 => (-(ttl_ms + late_ms + 5)..0).prop_map(Step::By),
                    1 => (0i64..=3 * bucket_ms + 2 * ttl_ms).prop_map(Step::By),
                    1 => near.clone().prop_map(Step::NextHour),
                    1 => near.prop_map(Step::NextDay),
                ];
                let kind = prop_oneof![
                    5 => Just(Kind::Ping),
                    2 => Just(Kind::Leave),
                    1 => Just(Kind::Tick),
                ];
                let cfg = Cfg {
                    bucket_ms,
                    ttl_ms,
                    late_ms,
                    tz,
                };
                (
                    Just(cfg),
                    Just(base.at(tz)),
                    prop::collection::vec((kind, 0..webinars, 0..viewers, step), 0..40),
                )
            },
        )
        .prop_map(|(cfg, base, raw)| {
            let calendar = Calendar::new(cfg.tz);
            let mut cursor = base;
            let recs = raw
                .into_iter()
                .map(|(kind, w, v, step)| {
                    let next = |t: i64, m: i64| (t.div_euclid(m) + 1) * m;
                    let ts = match step {
                        Step::By(d) => cursor + d,
                        Step::NextTtlMultiple => next(cursor, cfg.ttl_ms),
                        Step::NextBucket => next(cursor, cfg.bucket_ms),
                        Step::NextHour(d) => next(cursor, HOUR_MS) + d,
                        Step::NextDay(d) => calendar.period(Period::Day, cursor).1 + d,
                    };
                    let ts = ts.max(base);
                    cursor = ts;
                    match kind {
                        Kind::Ping => Rec::Ping { w, v, ts },
                        Kind::Leave => Rec::Leave { w, v, ts },
                        Kind::Tick => Rec::Tick { ts },
                    }
                })
                .collect();
            (cfg, recs)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn engine_matches_per_millisecond_model((cfg, recs) in arb_case()) {
        check(cfg, &recs)?;
    }
}

// ---------------------------------------------------------------------------
// Hand-computed edges (they check the model as well as the engine)
// ---------------------------------------------------------------------------

fn ping(w: usize, v: usize, ts: i64) -> Rec {
    Rec::Ping { w, v, ts }
}

fn leave(w: usize, v: usize, ts: i64) -> Rec {
    Rec::Leave { w, v, ts }
}

fn tick(ts: i64) -> Rec {
    Rec::Tick { ts }
}

/// A row: webinar, bucket_start, then [min, max, live_ms, unique, pings,
/// joins, leaves, expiries].
fn row(w: usize, b: i64, width: i64, n: [u64; 8]) -> (usize, PresenceStats) {
    let [min, max, live_ms, unique, pings, joins, leaves, expiries] = n;
    (
        w,
        PresenceStats {
            bucket_start: b,
            bucket_end: b + width,
            min_concurrent: min as u32,
            max_concurrent: max as u32,
            live_ms,
            unique_viewers: unique as u32,
            pings: pings as u32,
            joins: joins as u32,
            leaves: leaves as u32,
            expiries: expiries as u32,
        },
    )
}

fn cfg(bucket_ms: i64, ttl_ms: i64, late_ms: i64) -> Cfg {
    Cfg {
        bucket_ms,
        ttl_ms,
        late_ms,
        tz: Tz::Utc,
    }
}

fn late_count(c: Cfg, recs: &[Rec]) -> u64 {
    let mut model = Model::new(c);
    for &r in recs {
        model.apply(r);
    }
    model.late
}

#[test]
fn ping_exactly_at_end_is_an_expiry_and_a_join() {
    let c = cfg(10, 5, 0);
    let rows = check(c, &[ping(0, 0, 0), ping(0, 0, 5)]).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 0, 10, [1, 1, 10, 1, 2, 2, 0, 1]),
            row(0, 10, 10, [0, 0, 0, 0, 0, 0, 0, 1]),
        ]
    );
}

#[test]
fn leave_in_the_same_ms_as_its_ping() {
    // The interval [3, 3) is empty: a join and a leave, nobody live.
    let c = cfg(10, 5, 0);
    let rows = check(c, &[ping(0, 0, 3), leave(0, 0, 3)]).unwrap();
    assert_eq!(rows, vec![row(0, 0, 10, [0, 0, 0, 0, 1, 1, 1, 0])]);
}

#[test]
fn leave_when_not_live_changes_nothing() {
    let c = cfg(10, 5, 0);
    let recs = [leave(0, 0, 2), ping(0, 0, 12), leave(0, 0, 30)];
    let rows = check(c, &recs).unwrap();
    assert_eq!(rows, vec![row(0, 10, 10, [0, 1, 5, 1, 1, 1, 0, 1])]);
}

#[test]
fn leave_exactly_at_end_is_not_a_leave() {
    // [0, 5) ran out at 5: the leave at 5 finds nobody live.
    let c = cfg(10, 5, 0);
    let rows = check(c, &[ping(0, 0, 0), leave(0, 0, 5)]).unwrap();
    assert_eq!(rows, vec![row(0, 0, 10, [0, 1, 5, 1, 1, 1, 0, 1])]);
}

#[test]
fn several_tabs_are_one_viewer() {
    let c = cfg(10, 10, 0);
    let recs = [ping(0, 0, 0), ping(0, 0, 1), ping(0, 1, 2), ping(0, 0, 8)];
    let rows = check(c, &recs).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 0, 10, [1, 2, 18, 2, 4, 2, 0, 0]),
            row(0, 10, 10, [0, 2, 10, 2, 0, 0, 0, 2]),
        ]
    );
}

#[test]
fn out_of_order_ts_is_applied_at_the_clock_per_webinar() {
    let c = cfg(10, 10, 3);
    let recs = [
        ping(0, 0, 20),
        ping(0, 1, 15), // 5 behind: late, applied at 20
        ping(0, 2, 18), // 2 behind: not late, applied at 20
        ping(1, 0, 5),  // another webinar's clock: on time
    ];
    let rows = check(c, &recs).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 20, 10, [3, 3, 30, 3, 3, 3, 0, 0]),
            row(0, 30, 10, [0, 0, 0, 0, 0, 0, 0, 3]),
            row(1, 0, 10, [0, 1, 5, 1, 1, 1, 0, 0]),
            row(1, 10, 10, [0, 1, 5, 1, 0, 0, 0, 1]),
        ]
    );
    assert_eq!(late_count(c, &recs), 1);
}

#[test]
fn tick_crossing_several_buckets() {
    let c = cfg(10, 25, 5);
    let recs = [
        ping(0, 0, 3),
        tick(47),       // w0 expires at 28; buckets 0..30 final, 30 and 40 empty
        ping(0, 0, 40), // late, at 47
        ping(1, 0, 10), // first event of w1: late against the tick, at 47
    ];
    let rows = check(c, &recs).unwrap();
    let from_47 = |w| {
        vec![
            row(w, 40, 10, [0, 1, 3, 1, 1, 1, 0, 0]),
            row(w, 50, 10, [1, 1, 10, 1, 0, 0, 0, 0]),
            row(w, 60, 10, [1, 1, 10, 1, 0, 0, 0, 0]),
            row(w, 70, 10, [0, 1, 2, 1, 0, 0, 0, 1]),
        ]
    };
    let mut expected = vec![
        row(0, 0, 10, [0, 1, 7, 1, 1, 1, 0, 0]),
        row(0, 10, 10, [1, 1, 10, 1, 0, 0, 0, 0]),
        row(0, 20, 10, [0, 1, 8, 1, 0, 0, 0, 1]),
    ];
    expected.extend(from_47(0));
    expected.extend(from_47(1));
    assert_eq!(rows, expected);
    assert_eq!(late_count(c, &recs), 2);
}

#[test]
fn bucket_with_only_a_leave_at_its_start() {
    let c = cfg(10, 15, 0);
    let rows = check(c, &[ping(0, 0, 5), leave(0, 0, 10)]).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 0, 10, [0, 1, 5, 1, 1, 1, 0, 0]),
            row(0, 10, 10, [0, 0, 0, 0, 0, 0, 1, 0]),
        ]
    );
}

#[test]
fn expiry_exactly_on_a_bucket_boundary() {
    let c = cfg(10, 10, 0);
    // w0 runs out at 20 through a tick; w1 re-pings exactly at 20.
    let recs = [ping(0, 0, 10), ping(1, 0, 10), tick(20), ping(1, 0, 20)];
    let rows = check(c, &recs).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 10, 10, [1, 1, 10, 1, 1, 1, 0, 0]),
            row(0, 20, 10, [0, 0, 0, 0, 0, 0, 0, 1]),
            row(1, 10, 10, [1, 1, 10, 1, 1, 1, 0, 0]),
            row(1, 20, 10, [1, 1, 10, 1, 1, 1, 0, 1]),
            row(1, 30, 10, [0, 0, 0, 0, 0, 0, 0, 1]),
        ]
    );
}

#[test]
fn one_ms_buckets_and_ttl() {
    let c = cfg(1, 1, 0);
    let recs = [ping(0, 0, 0), ping(0, 0, 1), leave(0, 0, 1), ping(0, 1, 1)];
    let rows = check(c, &recs).unwrap();
    assert_eq!(
        rows,
        vec![
            row(0, 0, 1, [1, 1, 1, 1, 1, 1, 0, 0]),
            // v0: expiry of [0,1) and join at 1, then leave at 1; v1 joins.
            row(0, 1, 1, [1, 1, 1, 1, 2, 2, 1, 1]),
            row(0, 2, 1, [0, 0, 0, 0, 0, 0, 0, 1]),
        ]
    );
}

#[test]
fn leave_then_ping_again_in_the_same_ms() {
    let c = cfg(10, 10, 0);
    let recs = [ping(0, 0, 2), leave(0, 0, 5), ping(0, 0, 5), leave(0, 0, 5)];
    let rows = check(c, &recs).unwrap();
    assert_eq!(rows, vec![row(0, 0, 10, [0, 1, 3, 1, 2, 2, 2, 0])]);
}

// Rollups: hand-computed hours and days.

fn roll(w: usize, period: Period, start: i64, end: i64, unique: u32) -> Rollup {
    Rollup {
        w,
        period,
        start,
        end,
        unique,
    }
}

fn rollups(c: Cfg, recs: &[Rec]) -> Vec<Rollup> {
    check_all(c, recs).unwrap().1
}

#[test]
fn a_viewer_across_a_utc_midnight_counts_in_both_hours_and_days() {
    let (m, h, d) = (MIDNIGHT, HOUR_MS, DAY_MS);
    // v0: [m - 20, m + 30); v1: [m + 5, m + 55).
    let recs = [ping(0, 0, m - 20), tick(m), ping(0, 1, m + 5)];
    assert_eq!(
        rollups(cfg(10, 50, 0), &recs),
        vec![
            roll(0, Period::Hour, m - h, m, 1),
            roll(0, Period::Hour, m, m + h, 2),
            roll(0, Period::Day, m - d, m, 1),
            roll(0, Period::Day, m, m + d, 2),
        ]
    );
}

#[test]
fn an_expiry_or_an_empty_interval_emits_a_period_with_nobody() {
    let (m, h, d) = (MIDNIGHT, HOUR_MS, DAY_MS);
    // w0: [m - 10, m) runs out at m; w1: [m + 3, m + 3) is empty.
    let recs = [ping(0, 0, m - 10), ping(1, 0, m + 3), leave(1, 0, m + 3)];
    assert_eq!(
        rollups(cfg(10, 10, 0), &recs),
        vec![
            roll(0, Period::Hour, m - h, m, 1),
            roll(0, Period::Hour, m, m + h, 0),
            roll(0, Period::Day, m - d, m, 1),
            roll(0, Period::Day, m, m + d, 0),
            roll(1, Period::Hour, m, m + h, 0),
            roll(1, Period::Day, m, m + d, 0),
        ]
    );
}

#[test]
fn a_viewer_back_hours_later_counts_once_in_the_day() {
    let (m, h, d) = (MIDNIGHT, HOUR_MS, DAY_MS);
    // v0: [m + 5, m + 8), [m + 3h + 1, ...); v1: [m + 1h, ...). Hour 2 is empty.
    let recs = [
        ping(0, 0, m + 5),
        leave(0, 0, m + 8),
        ping(0, 1, m + h),
        ping(0, 0, m + 3 * h + 1),
    ];
    assert_eq!(
        rollups(cfg(10, 10, 0), &recs),
        vec![
            roll(0, Period::Hour, m, m + h, 1),
            roll(0, Period::Hour, m + h, m + 2 * h, 1),
            roll(0, Period::Hour, m + 3 * h, m + 4 * h, 1),
            roll(0, Period::Day, m, m + d, 2),
        ]
    );
}

#[test]
fn kolkata_days_turn_at_half_past_a_utc_hour() {
    let c = Cfg {
        tz: Tz::Kolkata,
        ..cfg(10, 10, 0)
    };
    // 2024-10-04T00:00+05:30 = 2024-10-03T18:30Z.
    let k = MIDNIGHT - 5 * HOUR_MS - HOUR_MS / 2;
    let h = k - HOUR_MS / 2;
    // [k - 5, k + 5): one UTC hour, two local days.
    assert_eq!(
        rollups(c, &[ping(0, 0, k - 5)]),
        vec![
            roll(0, Period::Hour, h, h + HOUR_MS, 1),
            roll(0, Period::Day, k - DAY_MS, k, 1),
            roll(0, Period::Day, k, k + DAY_MS, 1),
        ]
    );
}

#[test]
fn the_new_york_day_of_the_dst_change_lasts_25_hours() {
    let c = Cfg {
        tz: Tz::NewYork,
        ..cfg(10, 10, 0)
    };
    // 2024-11-03T00:00-04:00; clocks go back at 02:00.
    let s = Tz::NewYork.midnight();
    assert_eq!(s, 1_730_606_400_000);
    assert_eq!(
        rollups(c, &[ping(0, 0, s)]),
        vec![
            roll(0, Period::Hour, s, s + HOUR_MS, 1),
            roll(0, Period::Day, s, s + 25 * HOUR_MS, 1),
        ]
    );
}

#[test]
fn the_open_hour_and_day_count_whoever_was_live_in_them_so_far() {
    let (m, h, d) = (MIDNIGHT, HOUR_MS, DAY_MS);
    let c = cfg(10, 50, 0);
    // v0: [m - 20, m + 30); v1: [m + 200, m + 200) is empty; v2 live at m + 300.
    let recs = [
        ping(0, 0, m - 20),
        tick(m + 100),
        ping(0, 1, m + 200),
        leave(0, 1, m + 200),
        ping(0, 2, m + 300),
    ];
    check(c, &recs).unwrap();
    let mut model = Model::new(c);
    let open = |model: &Model| {
        model
            .open_periods(0)
            .map(|p| (p.period, p.start, p.end, p.unique_viewers))
    };
    for &r in &recs[..4] {
        model.apply(r);
    }
    assert_eq!(
        open(&model),
        [(Period::Hour, m, m + h, 1), (Period::Day, m, m + d, 1)]
    );
    model.apply(recs[4]);
    assert_eq!(
        open(&model),
        [(Period::Hour, m, m + h, 2), (Period::Day, m, m + d, 2)]
    );
}

#[test]
fn model_days_agree_with_fixed_offsets() {
    // Kolkata is +05:30 all year; UTC days are epoch-aligned.
    let kolkata = Tz::Kolkata.zone();
    let ist = 19_800_000;
    for k in [
        0,
        MIDNIGHT - ist - 1,
        MIDNIGHT - ist,
        MIDNIGHT,
        MIDNIGHT + 12 * HOUR_MS,
    ] {
        let s = (k + ist).div_euclid(DAY_MS) * DAY_MS - ist;
        assert_eq!(day_bounds(&kolkata, k), (s, s + DAY_MS), "Kolkata at {k}");
        let s = k.div_euclid(DAY_MS) * DAY_MS;
        assert_eq!(day_bounds(&TimeZone::UTC, k), (s, s + DAY_MS), "UTC at {k}");
    }
}
