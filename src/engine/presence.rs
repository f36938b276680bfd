//! Presence of one webinar (DESIGN §3): viewer intervals, joins, leaves and
//! expiries; the open bucket's exact min, max and time-weighted sum; and
//! distinct viewers per bucket, per hour and per calendar day.
//!
//! # How it stays exact in O(1) per record
//!
//! * Effective times only grow, and a ping always sets `end = t + ttl`, so
//!   live viewers kept in a list that a ping moves to the tail stay sorted by
//!   `end`: expiries pop from the head, in time order, one at a time.
//! * live(k) is constant between consecutive change times, so the open bucket
//!   integrates `live × Δt` and observes min and max only when time moves
//!   forward — several changes in one millisecond count as one value.
//! * Distinct viewers of an open window `w` (a bucket, an hour, a day): a
//!   viewer is counted when an interval of theirs that overlaps `w` closes
//!   (`seen` remembers the window it was counted in), and every viewer still
//!   live when `w` closes overlaps it. A viewer who closed an interval in `w`
//!   and joined again is live *and* already counted; `rejoined` counts those,
//!   so `distinct = closed + live - rejoined`, with no scan of the viewers.
//! * Closed viewers stay in a dead list while the open bucket or hour counts
//!   them (a rejoin there must find its `seen`); once only the open day
//!   does, they shrink to a fingerprint in `day_seen`; when the day closes
//!   they go. Memory follows live viewers and open windows — the viewers of
//!   the open day, whom an exact daily distinct count must remember — never
//!   history.
//!
//! Viewer ids are kept as 95-bit fingerprints (XXH3-128): two of a million
//! live viewers of one webinar share one with probability below 10⁻¹⁶. A
//! viewer record is 40 bytes.

use std::sync::Arc;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::bucket::{ActivityBucket, Output, Period, PresenceBucket, PresenceStats, RollupBucket};
use super::index::ViewerIndex;
use crate::event::ActivityKind;

const NIL: u32 = u32::MAX;
const KEY_MASK: u32 = 0x7fff_ffff;
/// Set in `key_lo` once a ping moved the interval's end: its start is then
/// no longer `end - ttl`.
const EXTENDED: u32 = 0x8000_0000;

/// A viewer id's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerKey {
    hi: u64,
    lo: u32,
}

impl ViewerKey {
    /// A placeholder, never compared with a real fingerprint.
    pub const NONE: ViewerKey = ViewerKey { hi: 0, lo: 0 };

    /// The fingerprint as one number, for sets of viewers.
    fn packed(self) -> u128 {
        (u128::from(self.hi) << 32) | u128::from(self.lo)
    }

    pub fn of(viewer_id: &str) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(viewer_id.as_bytes());
        ViewerKey {
            hi: (h >> 64) as u64,
            lo: h as u32 & KEY_MASK,
        }
    }
}

/// The windows distinct viewers are counted over.
pub const LEVELS: usize = 3;
const BUCKET: usize = 0;
const HOUR: usize = 1;
const DAY: usize = 2;

/// Bucket length, viewer time-to-live and calendar of the rollups.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub bucket_ms: i64,
    pub ttl_ms: i64,
    pub hour_ms: i64,
    pub timezone: TimeZone,
}

impl Params {
    fn bucket_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.bucket_ms)
    }

    /// The window of `level` containing `t`.
    fn window(&self, level: usize, t: i64) -> (i64, i64) {
        match level {
            BUCKET => {
                let b = self.bucket_of(t);
                (b, b + self.bucket_ms)
            }
            HOUR => {
                let h = t - t.rem_euclid(self.hour_ms);
                (h, h + self.hour_ms)
            }
            _ => day_of(&self.timezone, t),
        }
    }

    /// The window's ordinal, wrapping: only compared for equality with the
    /// open window's, so it must merely differ between windows one live
    /// interval spans (2³² of them).
    fn ordinal(&self, level: usize, start: i64) -> u32 {
        let unit = match level {
            BUCKET => self.bucket_ms,
            HOUR => self.hour_ms,
            _ => 1_000,
        };
        start.div_euclid(unit) as u32
    }
}

/// The calendar day of `tz` containing `t`, as `[start, end)` in ms.
pub fn day_of(tz: &TimeZone, t: i64) -> (i64, i64) {
    let fallback = (
        t - t.rem_euclid(86_400_000),
        t - t.rem_euclid(86_400_000) + 86_400_000,
    );
    let Ok(ts) = jiff::Timestamp::from_millisecond(t) else {
        return fallback;
    };
    let date = ts.to_zoned(tz.clone()).date();
    let start = date
        .to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond());
    let end = date
        .tomorrow()
        .and_then(|d| d.to_zoned(tz.clone()))
        .map(|z| z.timestamp().as_millisecond());
    match (start, end) {
        (Ok(s), Ok(e)) if s <= t && t < e => (s, e),
        _ => fallback,
    }
}

/// One viewer's current interval, or their last one while its bucket is open.
#[derive(Clone)]
pub struct Viewer {
    key_hi: u64,
    /// The low 31 bits of the fingerprint, and [`EXTENDED`].
    key_lo: u32,
    /// Per level, the ordinal of the window this viewer was last counted in
    /// through a closed interval.
    seen: [u32; LEVELS],
    end: i64,
    prev: u32,
    next: u32,
}

impl Viewer {
    fn is(&self, key: ViewerKey) -> bool {
        self.key_hi == key.hi && self.key_lo & KEY_MASK == key.lo
    }

    fn key(&self) -> ViewerKey {
        ViewerKey {
            hi: self.key_hi,
            lo: self.key_lo & KEY_MASK,
        }
    }

    /// Whether the interval `[start, end)` would be empty if it ended at `e`.
    fn empty_at(&self, e: i64, ttl_ms: i64) -> bool {
        self.key_lo & EXTENDED == 0 && self.end - ttl_ms == e
    }
}

/// Viewer records of every webinar, addressed by `u32`; freed slots are
/// chained through `next`. Records live in fixed-size pages, so growing never
/// copies them and never holds more than one page of slack.
#[derive(Default)]
pub struct Slab {
    pages: Vec<Box<[Viewer; PAGE]>>,
    pub(crate) len: u32,
    free: Option<u32>,
    /// Changes of which viewers had a live millisecond on which day, for
    /// the engine to take after each operation (see [`DayMark`]).
    pub(crate) day_marks: Vec<DayMark>,
}

/// A viewer gained (or, for an interval that ended in the millisecond it
/// began, lost again) a live millisecond on the local day starting at
/// `day_start`: the membership the daily rollups count, kept by the engine
/// per webinar and day so distinct viewers can be counted over any days
/// and webinars together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayMark {
    pub viewer: u128,
    pub day_start: i64,
    pub live: bool,
}

const PAGE_BITS: u32 = 14;
const PAGE: usize = 1 << PAGE_BITS;

const VACANT: Viewer = Viewer {
    key_hi: 0,
    key_lo: 0,
    seen: [0; LEVELS],
    end: 0,
    prev: NIL,
    next: NIL,
};

impl Slab {
    fn alloc(&mut self, v: Viewer) -> u32 {
        match self.free {
            Some(i) => {
                let next = self[i].next;
                self.free = (next != NIL).then_some(next);
                self[i] = v;
                i
            }
            None => {
                let i = self.len;
                assert!(i < NIL, "fewer than 2^32 - 1 viewers");
                if (i as usize).is_multiple_of(PAGE) {
                    let page: Box<[Viewer; PAGE]> = vec![VACANT; PAGE]
                        .into_boxed_slice()
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("a page has PAGE records"));
                    self.pages.push(page);
                }
                self.len += 1;
                self[i] = v;
                i
            }
        }
    }

    fn release(&mut self, i: u32) {
        self[i].next = self.free.unwrap_or(NIL);
        self.free = Some(i);
    }

    /// Bytes held by viewer records.
    pub fn capacity_bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<Viewer>()
    }

    /// Record `i`, if the slab has one there (it may be free).
    #[inline]
    fn get(&self, i: u32) -> Option<&Viewer> {
        self.pages
            .get((i >> PAGE_BITS) as usize)
            .map(|page| &page[i as usize & (PAGE - 1)])
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Viewer;
    #[inline]
    fn index(&self, i: u32) -> &Viewer {
        &self.pages[(i >> PAGE_BITS) as usize][i as usize & (PAGE - 1)]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    #[inline]
    fn index_mut(&mut self, i: u32) -> &mut Viewer {
        &mut self.pages[(i >> PAGE_BITS) as usize][i as usize & (PAGE - 1)]
    }
}

/// A doubly linked list of slab records.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    #[inline]
    fn push_back(&mut self, slab: &mut Slab, i: u32) {
        slab[i].prev = self.tail;
        slab[i].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            slab[self.tail].next = i;
        }
        self.tail = i;
    }

    #[inline]
    fn unlink(&mut self, slab: &mut Slab, i: u32) {
        let (prev, next) = (slab[i].prev, slab[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            slab[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            slab[next].prev = prev;
        }
    }

    fn iter<'s>(&self, slab: &'s Slab) -> impl Iterator<Item = u32> + 's {
        let mut i = self.head;
        std::iter::from_fn(move || {
            (i != NIL).then(|| {
                let cur = i;
                i = slab[cur].next;
                cur
            })
        })
    }
}

/// Distinct-viewer counting over one open window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Distinct {
    start: i64,
    end: i64,
    ordinal: u32,
    /// Viewers counted through an interval that closed in the window.
    closed: u32,
    /// Live viewers among those (they closed an interval, then joined again).
    rejoined: u32,
    /// Someone was live or a presence event happened in the window.
    active: bool,
}

impl Distinct {
    fn open(p: &Params, level: usize, t: i64, live: u32) -> Distinct {
        let (start, end) = p.window(level, t);
        Distinct {
            start,
            end,
            ordinal: p.ordinal(level, start),
            closed: 0,
            rejoined: 0,
            active: live > 0,
        }
    }

    fn count(&self, live: u32) -> u32 {
        self.closed + live - self.rejoined
    }
}

/// The open bucket's presence statistics (its distinct viewers are level 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    /// live(k) has been integrated over `[start, last)`.
    last: i64,
    live_ms: u64,
    min: u32,
    max: u32,
    pings: u32,
    joins: u32,
    leaves: u32,
    expiries: u32,
    /// A presence event, leave or expiry fell in the bucket.
    touched: bool,
    activity: [u32; ActivityKind::ALL.len()],
}

impl Open {
    fn new(start: i64) -> Self {
        Open {
            last: start,
            live_ms: 0,
            min: u32::MAX,
            max: 0,
            pings: 0,
            joins: 0,
            leaves: 0,
            expiries: 0,
            touched: false,
            activity: [0; ActivityKind::ALL.len()],
        }
    }

    /// The bucket's statistics, with `live` viewers now.
    fn stats(&self, bucket: &Distinct, bucket_ms: i64, live: u32) -> PresenceStats {
        PresenceStats {
            bucket_start: bucket.start,
            bucket_end: bucket.start + bucket_ms,
            min_concurrent: if self.min == u32::MAX { live } else { self.min },
            max_concurrent: self.max,
            live_ms: self.live_ms,
            unique_viewers: bucket.count(live),
            pings: self.pings,
            joins: self.joins,
            leaves: self.leaves,
            expiries: self.expiries,
        }
    }

    /// live(k) = `live` for every k in `[last, to)`.
    fn integrate(&mut self, live: u32, to: i64) {
        if to > self.last {
            self.live_ms += u64::from(live) * (to - self.last) as u64;
            self.min = self.min.min(live);
            self.max = self.max.max(live);
            self.last = to;
        }
    }
}

/// Distinct viewers so far in an open hour or day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPeriod {
    pub period: Period,
    pub start: i64,
    pub end: i64,
    pub unique_viewers: u32,
}

/// What `GET /live` shows: the live count at the clock and the open bucket
/// so far (integrated up to the clock; min and max include the count now),
/// and the distinct viewers so far of the open hour and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSnapshot {
    pub live: u32,
    pub ts: i64,
    pub open_bucket: PresenceStats,
    /// Activity in the open bucket so far, by kind (in the order of
    /// [`ActivityKind::ALL`]).
    pub engagement: [u32; ActivityKind::ALL.len()],
    pub open_periods: [OpenPeriod; 2],
}

/// Ids up to this long are compared inline, without following `id`.
const INLINE_ID: usize = 24;

/// The 64-bit hash a webinar is indexed by.
pub fn webinar_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// All state of one webinar.
pub struct Webinar {
    /// `webinar_hash(id)`.
    pub hash: u64,
    inline_len: u8,
    inline_id: [u8; INLINE_ID],
    pub id: Arc<str>,
    /// The webinar's clock: the largest effective time applied.
    pub clock: i64,
    /// Changed since the engine last published it.
    pub dirty: bool,
    viewers: ViewerIndex,
    live_list: List,
    dead_list: List,
    /// Viewers who left and are counted in the open day only: their
    /// fingerprints, in a quarter of a viewer record's room.
    day_seen: hashbrown::HashSet<u128>,
    live: u32,
    open: Open,
    windows: [Distinct; LEVELS],
}

impl Webinar {
    /// A webinar first seen at time `t`.
    pub fn new(id: Arc<str>, t: i64, p: &Params) -> Self {
        let windows = [0, 1, 2].map(|level| Distinct::open(p, level, t, 0));
        let mut open = Open::new(windows[BUCKET].start);
        open.integrate(0, t);
        let (inline_len, inline_id) = inline(&id);
        Webinar {
            hash: webinar_hash(&id),
            inline_len,
            inline_id,
            id,
            clock: t,
            dirty: false,
            viewers: ViewerIndex::default(),
            live_list: List::EMPTY,
            dead_list: List::EMPTY,
            day_seen: hashbrown::HashSet::new(),
            live: 0,
            open,
            windows,
        }
    }

    pub fn live(&self) -> u32 {
        self.live
    }

    /// Whether this is webinar `id`, whose hash is `hash`.
    pub fn is(&self, hash: u64, id: &str) -> bool {
        self.hash == hash
            && if id.len() <= INLINE_ID {
                usize::from(self.inline_len) == id.len()
                    && &self.inline_id[..id.len()] == id.as_bytes()
            } else {
                &*self.id == id
            }
    }

    /// Nothing live and nothing to emit: the webinar's whole state is its clock.
    pub fn is_idle(&self) -> bool {
        self.live == 0
            && !self.open.touched
            && self.open.max == 0
            && self.dead_list.head == NIL
            && self.day_seen.is_empty()
            && self.open.activity.iter().all(|&c| c == 0)
            && self.windows.iter().all(|w| !w.active)
    }

    /// Moves the clock to `t` (≥ the clock), expiring viewers and closing
    /// windows on the way, in time order.
    pub fn advance(&mut self, t: i64, p: &Params, slab: &mut Slab, out: &mut Vec<Output>) {
        debug_assert!(t >= self.clock);
        loop {
            let boundary = self
                .windows
                .iter()
                .map(|w| w.end)
                .min()
                .expect("three levels");
            let next_expiry = match self.live_list.head {
                NIL => i64::MAX,
                head => slab[head].end,
            };
            // Windows close before the expiries at their end: a viewer whose
            // interval ends at `b + W` was live at `b + W - 1`.
            if boundary <= t && boundary <= next_expiry {
                self.open.integrate(self.live, boundary);
                self.close_windows(boundary, t, p, slab, out);
            } else if next_expiry <= t {
                self.open.integrate(self.live, next_expiry);
                while self.live_list.head != NIL && slab[self.live_list.head].end == next_expiry {
                    let i = self.live_list.head;
                    self.live_list.unlink(slab, i);
                    self.end_interval(i, next_expiry, p, slab);
                    self.open.expiries += 1;
                    self.touch();
                }
            } else {
                break;
            }
        }
        self.open.integrate(self.live, t);
        self.clock = t;
    }

    fn touch(&mut self) {
        self.open.touched = true;
        for w in &mut self.windows {
            w.active = true;
        }
    }

    /// Closes every window ending at `at`, and opens the next ones: at `at`
    /// while someone is live, else directly at `until` (the windows between
    /// are empty and emit nothing). Then frees the closed viewers no open
    /// window still counts.
    fn close_windows(
        &mut self,
        at: i64,
        until: i64,
        p: &Params,
        slab: &mut Slab,
        out: &mut Vec<Output>,
    ) {
        let next = if self.live == 0 { until } else { at };
        if self.windows[BUCKET].end == at {
            self.close_bucket(p, out);
            self.open = Open::new(p.bucket_of(next));
        }
        for level in [BUCKET, HOUR, DAY] {
            let w = self.windows[level];
            if w.end != at {
                continue;
            }
            if level != BUCKET && w.active {
                out.push(Output::Rollup(RollupBucket {
                    webinar_id: self.id.clone(),
                    period: if level == HOUR {
                        Period::Hour
                    } else {
                        Period::Day
                    },
                    start: w.start,
                    end: w.end,
                    unique_viewers: w.count(self.live),
                }));
            }
            self.windows[level] = Distinct::open(p, level, next, self.live);
            if level == DAY {
                self.day_seen = hashbrown::HashSet::new();
                // Viewers live across midnight are live on the new day
                // (those whose interval ends right at it expire after this).
                let mut i = self.live_list.head;
                while i != NIL {
                    if slab[i].end > at {
                        let viewer = slab[i].key().packed();
                        slab.day_marks.push(DayMark {
                            viewer,
                            day_start: self.windows[DAY].start,
                            live: true,
                        });
                    }
                    i = slab[i].next;
                }
            }
        }
        self.free_dead(slab);
    }

    /// Frees closed viewers that no open window counts any more (a rejoin
    /// can no longer be a repeat in any of them), and keeps those only the
    /// open day counts as bare fingerprints.
    fn free_dead(&mut self, slab: &mut Slab) {
        let mut i = self.dead_list.head;
        while i != NIL {
            let next = slab[i].next;
            let v = &slab[i];
            let counted = |level: usize| v.seen[level] == self.windows[level].ordinal;
            let day_only = counted(DAY) && !counted(BUCKET) && !counted(HOUR);
            if day_only || !(counted(BUCKET) || counted(HOUR) || counted(DAY)) {
                let key = v.key();
                if day_only {
                    self.day_seen.insert(key.packed());
                }
                self.dead_list.unlink(slab, i);
                self.viewers.remove(key.hi, i);
                slab.release(i);
            }
            i = next;
        }
        // Nobody live: the day's fingerprints are all that may grow back,
        // so they keep no spare room.
        if self.live == 0 {
            self.day_seen.shrink_to_fit();
        }
    }

    /// Fetches ahead the cache lines of this webinar's record, which the
    /// next operations read throughout.
    #[inline]
    pub fn prefetch_self(&self) {
        let p = (self as *const Webinar).cast::<u8>();
        for offset in (0..std::mem::size_of::<Webinar>()).step_by(64) {
            crate::util::prefetch(p.wrapping_add(offset));
        }
    }

    /// Fetches ahead the index slot a ping or leave of `key` reads first,
    /// and the live viewer whose expiry comes next.
    #[inline]
    pub fn prefetch_slot(&self, key: ViewerKey, slab: &Slab) {
        if let Some(s) = self.viewers.home(key.hi) {
            crate::util::prefetch(s);
        }
        if let Some(v) = slab.get(self.live_list.head) {
            crate::util::prefetch(v);
        }
    }

    /// Fetches ahead the viewer record `key` probably has (its slot must
    /// be cached by now: [`Webinar::prefetch_slot`]).
    #[inline]
    pub fn prefetch_viewer(&self, key: ViewerKey, slab: &Slab) {
        if let Some(v) = self.viewers.guess(key.hi).and_then(|i| slab.get(i)) {
            crate::util::prefetch(v);
        }
    }

    /// Fetches ahead the records a ping of `key` relinks: its neighbours in
    /// its list (its own record must be cached by now).
    #[inline]
    pub fn prefetch_neighbours(&self, key: ViewerKey, slab: &Slab) {
        if let Some(v) = self.viewers.guess(key.hi).and_then(|i| slab.get(i)) {
            for n in [v.prev, v.next] {
                if let Some(n) = slab.get(n) {
                    crate::util::prefetch(n);
                }
            }
        }
    }

    /// A heartbeat at `t` (the clock, already advanced).
    pub fn ping(&mut self, key: ViewerKey, p: &Params, slab: &mut Slab) {
        let t = self.clock;
        self.open.pings += 1;
        self.touch();
        let found = self.viewers.find(key.hi, |i| slab[i].is(key));
        match found {
            Some(i) if slab[i].end > t => {
                let end = t + p.ttl_ms;
                if end > slab[i].end {
                    slab[i].end = end;
                    slab[i].key_lo |= EXTENDED;
                }
                if self.live_list.tail != i {
                    self.live_list.unlink(slab, i);
                    self.live_list.push_back(slab, i);
                }
            }
            Some(i) => {
                self.dead_list.unlink(slab, i);
                for (level, w) in self.windows.iter_mut().enumerate() {
                    if slab[i].seen[level] == w.ordinal {
                        w.rejoined += 1;
                    }
                }
                slab[i].end = t + p.ttl_ms;
                slab[i].key_lo &= KEY_MASK;
                self.join(i, slab);
            }
            None => {
                let mut seen = self.windows.map(|w| w.ordinal.wrapping_sub(1));
                if self.day_seen.remove(&key.packed()) {
                    // Back the same day: already counted in it.
                    seen[DAY] = self.windows[DAY].ordinal;
                    self.windows[DAY].rejoined += 1;
                }
                let i = slab.alloc(Viewer {
                    key_hi: key.hi,
                    key_lo: key.lo,
                    seen,
                    end: t + p.ttl_ms,
                    prev: NIL,
                    next: NIL,
                });
                self.viewers.insert(key.hi, i);
                self.join(i, slab);
            }
        }
    }

    fn join(&mut self, i: u32, slab: &mut Slab) {
        let day = &self.windows[DAY];
        if slab[i].seen[DAY] != day.ordinal {
            let viewer = slab[i].key().packed();
            slab.day_marks.push(DayMark {
                viewer,
                day_start: day.start,
                live: true,
            });
        }
        self.live_list.push_back(slab, i);
        self.live += 1;
        self.open.joins += 1;
    }

    /// A leave beacon at `t` (the clock, already advanced). Returns whether
    /// it ended a live interval; a leave for a viewer not live changes nothing.
    pub fn leave(&mut self, key: ViewerKey, p: &Params, slab: &mut Slab) -> bool {
        let t = self.clock;
        let found = self.viewers.find(key.hi, |i| slab[i].is(key));
        match found {
            Some(i) if slab[i].end > t => {
                self.live_list.unlink(slab, i);
                self.end_interval(i, t, p, slab);
                self.open.leaves += 1;
                self.touch();
                true
            }
            _ => false,
        }
    }

    /// An engagement event of `kind` at the clock.
    pub fn activity(&mut self, kind: ActivityKind) {
        self.open.activity[kind.index()] += 1;
    }

    /// Ends viewer `i`'s interval at `end` (a leave or an expiry) and counts
    /// the viewer as distinct in each open window the interval overlapped.
    fn end_interval(&mut self, i: u32, end: i64, p: &Params, slab: &mut Slab) {
        let day = &self.windows[DAY];
        if (slab[i].empty_at(end, p.ttl_ms) || end <= day.start) && slab[i].seen[DAY] != day.ordinal
        {
            // Joined and left in one millisecond, or left right at midnight
            // after being carried into the day: never live on it.
            let viewer = slab[i].key().packed();
            slab.day_marks.push(DayMark {
                viewer,
                day_start: self.windows[DAY].start,
                live: false,
            });
        }
        let v = &mut slab[i];
        let empty = v.empty_at(end, p.ttl_ms);
        for (level, w) in self.windows.iter_mut().enumerate() {
            if v.seen[level] == w.ordinal {
                w.rejoined -= 1;
            } else if !empty && end > w.start {
                w.closed += 1;
                v.seen[level] = w.ordinal;
            }
        }
        v.end = end;
        self.live -= 1;
        self.dead_list.push_back(slab, i);
    }

    /// Emits the open bucket (fully integrated) if it has anything to say.
    fn close_bucket(&mut self, p: &Params, out: &mut Vec<Output>) {
        if self.open.touched || self.open.max > 0 {
            out.push(Output::Presence(PresenceBucket {
                webinar_id: self.id.clone(),
                stats: self.stats(p),
            }));
        }
        if self.open.activity.iter().any(|&c| c > 0) {
            out.push(Output::Activity(ActivityBucket {
                webinar_id: self.id.clone(),
                bucket_start: self.windows[BUCKET].start,
                bucket_end: self.windows[BUCKET].end,
                counts: self.open.activity,
            }));
        }
    }

    fn stats(&self, p: &Params) -> PresenceStats {
        self.open
            .stats(&self.windows[BUCKET], p.bucket_ms, self.live)
    }

    /// Runs every live interval to its end and closes the open windows
    /// (the end of a replay's input).
    pub fn finish(&mut self, p: &Params, slab: &mut Slab, out: &mut Vec<Output>) {
        let last_end = match self.live_list.tail {
            NIL => self.clock,
            tail => slab[tail].end,
        };
        self.advance(last_end, p, slab, out);
        let end = self
            .windows
            .iter()
            .map(|w| w.end)
            .max()
            .expect("three levels");
        self.advance(end, p, slab, out);
    }

    /// The live count, the open bucket and the open periods so far.
    pub fn snapshot(&self, p: &Params) -> LiveSnapshot {
        let mut open = self.open.clone();
        open.integrate(self.live, self.clock);
        open.min = open.min.min(self.live);
        open.max = open.max.max(self.live);
        let period = |level: usize, period| {
            let w = &self.windows[level];
            OpenPeriod {
                period,
                start: w.start,
                end: w.end,
                unique_viewers: w.count(self.live),
            }
        };
        LiveSnapshot {
            live: self.live,
            ts: self.clock,
            open_bucket: open.stats(&self.windows[BUCKET], p.bucket_ms, self.live),
            engagement: open.activity,
            open_periods: [period(HOUR, Period::Hour), period(DAY, Period::Day)],
        }
    }

    /// The webinar's state for a checkpoint.
    pub fn save(&self, slab: &Slab) -> WebinarState {
        let viewer = |i: u32| {
            let v = &slab[i];
            ViewerState {
                key_hi: v.key_hi,
                key_lo: v.key_lo,
                seen: v.seen,
                end: v.end,
            }
        };
        WebinarState {
            id: self.id.to_string(),
            clock: self.clock,
            live: self.live_list.iter(slab).map(viewer).collect(),
            dead: self.dead_list.iter(slab).map(viewer).collect(),
            day_seen: self.day_seen.iter().copied().collect(),
            open: self.open.clone(),
            windows: self.windows,
        }
    }

    /// A webinar from a checkpoint.
    pub fn restore(s: WebinarState, slab: &mut Slab) -> Webinar {
        let (inline_len, inline_id) = inline(&s.id);
        let mut w = Webinar {
            hash: webinar_hash(&s.id),
            inline_len,
            inline_id,
            id: s.id.into(),
            clock: s.clock,
            dirty: true,
            viewers: ViewerIndex::default(),
            live_list: List::EMPTY,
            dead_list: List::EMPTY,
            day_seen: s.day_seen.into_iter().collect(),
            live: s.live.len() as u32,
            open: s.open,
            windows: s.windows,
        };
        for (list, viewers) in [(&mut w.live_list, s.live), (&mut w.dead_list, s.dead)] {
            for v in viewers {
                let i = slab.alloc(Viewer {
                    key_hi: v.key_hi,
                    key_lo: v.key_lo,
                    seen: v.seen,
                    end: v.end,
                    prev: NIL,
                    next: NIL,
                });
                w.viewers.insert(v.key_hi, i);
                list.push_back(slab, i);
            }
        }
        w
    }
}

fn inline(id: &str) -> (u8, [u8; INLINE_ID]) {
    let mut bytes = [0u8; INLINE_ID];
    if id.len() <= INLINE_ID {
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        (id.len() as u8, bytes)
    } else {
        (u8::MAX, bytes)
    }
}

/// A webinar as saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebinarState {
    id: String,
    clock: i64,
    /// Live viewers in order of interval end.
    live: Vec<ViewerState>,
    /// Viewers whose interval closed and whom an open window counts.
    dead: Vec<ViewerState>,
    /// Viewers only the open day counts.
    day_seen: Vec<u128>,
    open: Open,
    windows: [Distinct; LEVELS],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ViewerState {
    key_hi: u64,
    key_lo: u32,
    seen: [u32; LEVELS],
    end: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_record_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Viewer>(), 40);
    }

    #[test]
    fn days_follow_the_time_zone() {
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        // 2026-01-31T00:00+09:00 = 2026-01-30T15:00Z
        let start = 1_769_785_200_000;
        assert_eq!(day_of(&seoul, start), (start, start + 86_400_000));
        assert_eq!(day_of(&seoul, start - 1), (start - 86_400_000, start));
        assert_eq!(
            day_of(&TimeZone::UTC, 86_400_000 + 5),
            (86_400_000, 172_800_000)
        );
    }
}
