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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use eventflow::engine::{Engine, EngineConfig, Output, PresenceStats};
use eventflow::event::{Event, Presence, PresenceAction, Tick};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const WEBINARS: [&str; 3] = ["w0", "w1", "w2"];
const VIEWERS: [&str; 5] = ["v0", "v1", "v2", "v3", "v4"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cfg {
    bucket_ms: i64,
    ttl_ms: i64,
    late_ms: i64,
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
    /// Largest tick ts so far.
    tick_clock: Option<i64>,
    webinars: [WebinarModel; 3],
    late: u64,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        Model {
            cfg,
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
        let mut rows = Vec::new();
        for w in 0..WEBINARS.len() {
            let wm = &self.webinars[w];
            let intervals = self.intervals(w);
            let last = intervals
                .iter()
                .map(|i| i.end)
                .chain(wm.pings.iter().copied())
                .chain(wm.leaves.iter().copied())
                .max();
            let Some(last) = last else { continue };
            let mut b = 0;
            while b <= last {
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
                b += width;
            }
        }
        rows
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

/// Moves the engine's new presence buckets into `emitted`, checking that each
/// webinar's come out in increasing `bucket_start` order.
fn collect(
    engine: &mut Engine,
    emitted: &mut Vec<(usize, PresenceStats)>,
) -> Result<(), TestCaseError> {
    for out in engine.drain() {
        if let Output::Presence(bucket) = out {
            let w = webinar_index(&bucket.webinar_id);
            if let Some((_, prev)) = emitted.iter().rev().find(|(x, _)| *x == w) {
                prop_assert!(
                    prev.bucket_start < bucket.stats.bucket_start,
                    "{}: bucket {} emitted after {}",
                    WEBINARS[w],
                    bucket.stats.bucket_start,
                    prev.bucket_start
                );
            }
            emitted.push((w, bucket.stats));
        }
    }
    Ok(())
}

/// Replays `recs` through the engine and the model and checks everything
/// listed in the module docs. Returns the (agreed) final rows.
fn check(cfg: Cfg, recs: &[Rec]) -> Result<Vec<(usize, PresenceStats)>, TestCaseError> {
    let mut model = Model::new(cfg);
    for &r in recs {
        model.apply(r);
    }
    let expected = model.final_rows();

    let mut engine = Engine::new(EngineConfig {
        bucket_ms: cfg.bucket_ms,
        ttl_ms: cfg.ttl_ms,
        late_ms: cfg.late_ms,
        ..EngineConfig::default()
    })
    .expect("valid config");
    let mut model = Model::new(cfg);
    let mut emitted = Vec::new();
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
            let got: Vec<_> = emitted.iter().filter(|(x, _)| *x == w).collect();
            let due: Vec<_> = expected
                .iter()
                .filter(|(x, s)| *x == w && clock.is_some_and(|c| s.bucket_end <= c))
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
            if let Some(s) = snapshot {
                prop_assert_eq!(Some(s.ts), clock, "{}: clock after record {}", id, n);
                prop_assert_eq!(
                    s.open_bucket,
                    model.open_bucket(w),
                    "{}: open bucket after record {} {:?}",
                    id,
                    n,
                    rec
                );
            }
        }
    }
    engine.finish();
    collect(&mut engine, &mut emitted)?;
    // Stable: each webinar's buckets keep their (checked) emission order.
    emitted.sort_by_key(|(w, _)| *w);
    prop_assert_eq!(&emitted, &expected, "final buckets");
    prop_assert_eq!(engine.counters().late, model.late, "late count");
    Ok(expected)
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
}

fn arb_case() -> impl Strategy<Value = (Cfg, Vec<Rec>)> {
    let cfg = (
        prop_oneof![1i64..=50, Just(1i64), Just(7), Just(10)],
        1i64..=60,
        0i64..=20,
        1usize..=WEBINARS.len(),
        1usize..=VIEWERS.len(),
    );
    cfg.prop_flat_map(|(bucket_ms, ttl_ms, late_ms, webinars, viewers)| {
        let step = prop_oneof![
            4 => (0i64..=3).prop_map(Step::By),
            4 => (0i64..=ttl_ms + 2).prop_map(Step::By),
            1 => Just(Step::By(ttl_ms)),
            1 => Just(Step::By(bucket_ms)),
            1 => Just(Step::NextTtlMultiple),
            1 => Just(Step::NextBucket),
            2 => (-(ttl_ms + late_ms + 5)..0).prop_map(Step::By),
            1 => (0i64..=3 * bucket_ms + 2 * ttl_ms).prop_map(Step::By),
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
        };
        (
            Just(cfg),
            prop::collection::vec((kind, 0..webinars, 0..viewers, step), 0..40),
        )
    })
    .prop_map(|(cfg, raw)| {
        let mut cursor = 0i64;
        let recs = raw
            .into_iter()
            .map(|(kind, w, v, step)| {
                let ts = match step {
                    Step::By(d) => cursor + d,
                    Step::NextTtlMultiple => (cursor / cfg.ttl_ms + 1) * cfg.ttl_ms,
                    Step::NextBucket => (cursor / cfg.bucket_ms + 1) * cfg.bucket_ms,
                };
                let ts = ts.max(0);
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
