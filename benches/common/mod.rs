//! A deterministic presence workload shared by the benchmarks.
//!
//! 10 000 webinars and 1 000 000 viewers (100 per webinar on average, skewed:
//! webinar of rank `r` gets a share proportional to `1 / (r + 10)`, so the
//! largest few hold 10–13 k viewers and the median one about 30). Each viewer
//! joins at a staggered time, pings every 60 s ± 2 s while present (3 % keep a
//! second tab open that pings too), leaves with a beacon (≈ 10 % per hour) or
//! silently drops out (≈ 5 % per hour, so the engine expires them after the
//! ttl), and half of those come back after 20 s – 5 min.
//!
//! Records are ordered by arrival, which is the event time plus a delay of
//! 0–299 ms: overall order is by time with a little realistic jitter, and
//! each viewer's own records stay in order. With ticks enabled, the service's
//! `{"type":"tick"}` records are interleaved as they would be in the log: one
//! per second, stamped `arrival - 2000` (DESIGN §2 idle lag).
//!
//! Everything comes from a fixed-seed splitmix64, so every run sees the same
//! records.

#![allow(dead_code)]

pub mod http;

use std::borrow::Cow;
use std::io::Write as _;

use eventflow::event::{Event, Presence, PresenceAction, Tick};

/// Event times are milliseconds since this instant (a bucket boundary).
pub const T0: i64 = 1_764_000_000_000;

/// splitmix64: tiny, fast, and good enough for workload generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        debug_assert!(lo < hi);
        lo + (((self.next_u64() >> 32) * u64::from(hi - lo)) >> 32) as u32
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }
}

/// What one record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ping,
    Leave,
    Tick,
}

/// One record, compactly: time in ms after [`T0`] and the viewer (unused
/// for ticks). The webinar is the viewer's (`Workload::webinar_of`).
#[derive(Debug, Clone, Copy)]
pub struct Rec {
    pub t: u32,
    pub viewer: u32,
    pub kind: Kind,
}

/// The workload's parameters.
#[derive(Debug, Clone)]
pub struct Spec {
    pub webinars: u32,
    pub viewers: u32,
    /// Viewers first join uniformly over `[0, join_spread_ms)`.
    pub join_spread_ms: u32,
    /// Records arriving before this are the warm-up, the rest are measured.
    pub warm_ms: u32,
    /// Simulated time: no record is generated at or after this.
    pub duration_ms: u32,
    pub leave_per_hour: f64,
    pub drop_per_hour: f64,
    pub rejoin: f64,
    pub second_tab: f64,
    /// Interleave one tick record per simulated second.
    pub ticks: bool,
    pub seed: u64,
}

impl Spec {
    /// The benchmark's workload: 10 000 webinars, 1 000 000 viewers, 4 min
    /// of warm-up (everyone joined within the first 3) then 5 min measured.
    ///
    /// `EVENTFLOW_BENCH_SCALE` (e.g. `0.1`) scales viewers and webinars down
    /// for quick runs and profiling under valgrind.
    pub fn standard() -> Self {
        let scale = scale();
        Spec {
            webinars: ((10_000.0 * scale) as u32).max(1),
            viewers: ((1_000_000.0 * scale) as u32).max(1),
            join_spread_ms: 180_000,
            warm_ms: 240_000,
            duration_ms: 540_000,
            leave_per_hour: 0.10,
            drop_per_hour: 0.05,
            rejoin: 0.5,
            second_tab: 0.03,
            ticks: false,
            seed: 0x5EED_E7E7_F10A_2025,
        }
    }
}

/// `EVENTFLOW_BENCH_SCALE`, default 1.
pub fn scale() -> f64 {
    std::env::var("EVENTFLOW_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0)
}

/// Audience sizes: webinar of rank `r` gets a share ∝ `1 / (r + 10)` of
/// `viewers`, at least one each, summing exactly to `viewers`.
pub fn webinar_sizes(webinars: u32, viewers: u32) -> Vec<u32> {
    assert!(viewers >= webinars, "at least one viewer per webinar");
    let weights: Vec<f64> = (0..webinars).map(|r| 1.0 / f64::from(r + 10)).collect();
    let total: f64 = weights.iter().sum();
    let spare = f64::from(viewers - webinars);
    let mut sizes: Vec<u32> = weights
        .iter()
        .map(|w| 1 + (spare * w / total) as u32)
        .collect();
    let mut short = viewers - sizes.iter().sum::<u32>();
    // The rounding remainder goes to the largest webinars, one each.
    let count = sizes.len();
    let mut r = 0;
    while short > 0 {
        sizes[r % count] += 1;
        short -= 1;
        r += 1;
    }
    sizes
}

/// Interned identifiers, leaked so events can borrow them for `'static`.
pub struct Ids {
    pub webinar: Vec<&'static str>,
    pub viewer: Vec<&'static str>,
}

impl Ids {
    fn new(webinars: u32, viewers: u32) -> Self {
        let leak = |prefix: &str, n: u32| -> Vec<&'static str> {
            let mut all = String::new();
            let mut ends = Vec::with_capacity(n as usize);
            for i in 0..n {
                all.push_str(prefix);
                all.push_str(&(i + 1).to_string());
                ends.push(all.len());
            }
            let all: &'static str = Box::leak(all.into_boxed_str());
            let mut start = 0;
            ends.into_iter()
                .map(|end| {
                    let s = &all[start..end];
                    start = end;
                    s
                })
                .collect()
        };
        Ids {
            webinar: leak("w-", webinars),
            viewer: leak("u-", viewers),
        }
    }
}

/// JSON Lines bytes and where each line is (without its newline).
pub struct JsonLines {
    pub bytes: Vec<u8>,
    pub lines: Vec<(usize, usize)>,
}

impl JsonLines {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lines.iter().map(|&(s, e)| &self.bytes[s..e])
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }
}

/// A generated workload.
pub struct Workload {
    pub spec: Spec,
    pub ids: Ids,
    pub webinar_of: Vec<u32>,
    /// Records arriving before `spec.warm_ms`, in arrival order.
    pub warm: Vec<Rec>,
    /// The rest, in arrival order.
    pub measured: Vec<Rec>,
}

impl Workload {
    pub fn generate(spec: Spec) -> Self {
        let sizes = webinar_sizes(spec.webinars, spec.viewers);
        let mut webinar_of = Vec::with_capacity(spec.viewers as usize);
        for (w, &n) in sizes.iter().enumerate() {
            webinar_of.extend(std::iter::repeat_n(w as u32, n as usize));
        }
        let ids = Ids::new(spec.webinars, spec.viewers);

        // Per-minute probabilities from hourly rates.
        let per_min = |per_hour: f64| 1.0 - (1.0 - per_hour).powf(1.0 / 60.0);
        let p_leave = per_min(spec.leave_per_hour);
        let p_drop = per_min(spec.drop_per_hour);
        let end = spec.duration_ms;

        let mut rng = Rng::new(spec.seed);
        // (arrival, record); arrival is unique per (viewer, time) because a
        // viewer's records are at least a second apart.
        let per_viewer = (end / 60_000 + 2) as usize;
        let mut all: Vec<(u64, Rec)> =
            Vec::with_capacity(spec.viewers as usize * per_viewer + (end / 1000) as usize);
        let mut push = |rng: &mut Rng, t: u32, viewer: u32, kind: Kind| {
            let arrival = t + rng.range(0, 300);
            all.push((
                (u64::from(arrival) << 32) | u64::from(viewer),
                Rec { t, viewer, kind },
            ));
        };
        for viewer in 0..spec.viewers {
            let tab_offset = rng
                .chance(spec.second_tab)
                .then(|| rng.range(5_000, 55_000));
            let mut t = rng.range(0, spec.join_spread_ms);
            'sessions: while t < end {
                // One session: pings until a leave, a silent drop or the end.
                loop {
                    push(&mut rng, t, viewer, Kind::Ping);
                    let leave_at = rng.chance(p_leave).then(|| t + rng.range(1_000, 59_000));
                    if let Some(off) = tab_offset {
                        let t2 = t + off;
                        if t2 < end && leave_at.is_none_or(|l| t2 + 1_000 <= l) {
                            push(&mut rng, t2, viewer, Kind::Ping);
                        }
                    }
                    if let Some(l) = leave_at {
                        if l < end {
                            push(&mut rng, l, viewer, Kind::Leave);
                        }
                        t = l;
                        break;
                    }
                    if rng.chance(p_drop) {
                        // Silent: the engine expires the interval at t + ttl.
                        break;
                    }
                    t += rng.range(58_000, 62_000);
                    if t >= end {
                        break 'sessions;
                    }
                }
                if !rng.chance(spec.rejoin) {
                    break;
                }
                t += rng.range(20_000, 300_000);
            }
        }
        if spec.ticks {
            // A tick stamped `s` is written when the wall clock reads s + 2 s.
            for s in (1_000..end).step_by(1_000) {
                all.push((
                    (u64::from(s + 2_000) << 32) | u64::from(u32::MAX),
                    Rec {
                        t: s,
                        viewer: u32::MAX,
                        kind: Kind::Tick,
                    },
                ));
            }
        }
        all.sort_unstable_by_key(|&(key, _)| key);
        let split = all.partition_point(|&(key, _)| (key >> 32) < u64::from(spec.warm_ms));
        let measured = all[split..].iter().map(|&(_, r)| r).collect();
        all.truncate(split);
        let warm = all.into_iter().map(|(_, r)| r).collect();
        Workload {
            spec,
            ids,
            webinar_of,
            warm,
            measured,
        }
    }

    /// The record as a decoded event, borrowing the interned ids.
    pub fn event(&self, r: &Rec) -> Event<'static> {
        let ts = T0 + i64::from(r.t);
        let action = match r.kind {
            Kind::Ping => PresenceAction::Ping,
            Kind::Leave => PresenceAction::Leave,
            Kind::Tick => return Event::Tick(Tick { ts }),
        };
        Event::Presence(Presence {
            id: None,
            webinar_id: Cow::Borrowed(
                self.ids.webinar[self.webinar_of[r.viewer as usize] as usize],
            ),
            viewer_id: Cow::Borrowed(self.ids.viewer[r.viewer as usize]),
            action,
            ts: Some(ts),
        })
    }

    pub fn events(&self, recs: &[Rec]) -> Vec<Event<'static>> {
        recs.iter().map(|r| self.event(r)).collect()
    }

    /// The records as JSON Lines, exactly in the wire format of DESIGN §5.
    pub fn json_lines(&self, recs: &[Rec]) -> JsonLines {
        let mut bytes = Vec::with_capacity(recs.len() * 96);
        let mut lines = Vec::with_capacity(recs.len());
        for r in recs {
            let start = bytes.len();
            let ts = T0 + i64::from(r.t);
            let action = match r.kind {
                Kind::Ping => "ping",
                Kind::Leave => "leave",
                Kind::Tick => {
                    write!(bytes, r#"{{"type":"tick","ts":{ts}}}"#).unwrap();
                    lines.push((start, bytes.len()));
                    bytes.push(b'\n');
                    continue;
                }
            };
            let webinar = self.ids.webinar[self.webinar_of[r.viewer as usize] as usize];
            let viewer = self.ids.viewer[r.viewer as usize];
            write!(
                bytes,
                r#"{{"type":"presence","webinar_id":"{webinar}","viewer_id":"{viewer}","action":"{action}","ts":{ts}}}"#
            )
            .unwrap();
            lines.push((start, bytes.len()));
            bytes.push(b'\n');
        }
        JsonLines { bytes, lines }
    }

    /// Counts of each kind of record.
    pub fn census(recs: &[Rec]) -> (usize, usize, usize) {
        recs.iter().fold((0, 0, 0), |(p, l, t), r| match r.kind {
            Kind::Ping => (p + 1, l, t),
            Kind::Leave => (p, l + 1, t),
            Kind::Tick => (p, l, t + 1),
        })
    }
}

/// One ping for each of `viewers` distinct viewers over `webinars` webinars
/// (skewed as in [`webinar_sizes`]), at random times in `[0, spread_ms)`, in
/// time order: with `spread_ms` below the ttl, all of them are live at the
/// end.
pub fn all_live_pings(
    webinars: u32,
    viewers: u32,
    spread_ms: u32,
    seed: u64,
) -> Vec<Event<'static>> {
    let sizes = webinar_sizes(webinars, viewers);
    let ids = Ids::new(webinars, viewers);
    let mut rng = Rng::new(seed);
    let mut pings: Vec<(u32, u32, u32)> = Vec::with_capacity(viewers as usize);
    let mut viewer = 0;
    for (w, &n) in sizes.iter().enumerate() {
        for _ in 0..n {
            pings.push((rng.range(0, spread_ms), viewer, w as u32));
            viewer += 1;
        }
    }
    pings.sort_unstable();
    pings
        .into_iter()
        .map(|(t, v, w)| {
            Event::Presence(Presence {
                id: None,
                webinar_id: Cow::Borrowed(ids.webinar[w as usize]),
                viewer_id: Cow::Borrowed(ids.viewer[v as usize]),
                action: PresenceAction::Ping,
                ts: Some(T0 + i64::from(t)),
            })
        })
        .collect()
}

/// Audience turnover within one day: `viewers` distinct viewers ping once in
/// `[0, 100 s)` and leave in `[100 s, 200 s)`, then as many other viewers
/// ping in `[200 s, 290 s)` (one bucket, so no bucket closes). At the end
/// `viewers` are live, and the first cohort still counts for the day's
/// distinct viewers.
pub fn turnover(webinars: u32, viewers: u32, seed: u64, gap_ms: u32) -> Vec<Event<'static>> {
    let sizes = webinar_sizes(webinars, viewers);
    let ids = Ids::new(webinars, 2 * viewers);
    let mut rng = Rng::new(seed);
    // (t, viewer, webinar, leave)
    let mut recs: Vec<(u32, u32, u32, bool)> = Vec::with_capacity(3 * viewers as usize);
    let mut viewer = 0;
    for (w, &n) in sizes.iter().enumerate() {
        for _ in 0..n {
            let w = w as u32;
            recs.push((rng.range(0, 100_000), viewer, w, false));
            recs.push((rng.range(100_000, 200_000), viewer, w, true));
            recs.push((
                gap_ms + rng.range(200_000, 290_000),
                viewer + viewers,
                w,
                false,
            ));
            viewer += 1;
        }
    }
    recs.sort_unstable();
    recs.into_iter()
        .map(|(t, v, w, leave)| {
            Event::Presence(Presence {
                id: None,
                webinar_id: Cow::Borrowed(ids.webinar[w as usize]),
                viewer_id: Cow::Borrowed(ids.viewer[v as usize]),
                action: if leave {
                    PresenceAction::Leave
                } else {
                    PresenceAction::Ping
                },
                ts: Some(T0 + i64::from(t)),
            })
        })
        .collect()
}
