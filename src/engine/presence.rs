//! Presence of one webinar (DESIGN §3): viewer intervals, joins, leaves and
//! expiries, and the open bucket's exact min, max, time-weighted sum and
//! unique viewers.
//!
//! # How it stays exact in O(1) per record
//!
//! * Effective times only grow, and a ping always sets `end = t + ttl`, so
//!   live viewers kept in a list that a ping moves to the tail stay sorted by
//!   `end`: expiries pop from the head, in time order, one at a time.
//! * live(k) is constant between consecutive change times, so the open bucket
//!   integrates `live × Δt` and observes min and max only when time moves
//!   forward — several changes in one millisecond count as one value.
//! * Unique viewers of the open bucket `b`: a viewer is counted when an
//!   interval of theirs that overlaps `b` closes (`seen` remembers the bucket
//!   it was counted in), and every viewer still live when `b` closes overlaps
//!   it. A viewer who closed an interval in `b` and joined again is live *and*
//!   already counted; `rejoined_seen` counts those, so
//!   `unique = closed_unique + live - rejoined_seen` with no per-bucket scan.
//! * Closed viewers stay in a dead list until their bucket closes (a rejoin
//!   in the same bucket must find its `seen`), then their slots are freed:
//!   memory follows live viewers and the open bucket, never history.
//!
//! Viewer ids are kept as 96-bit fingerprints (XXH3-128): two of a million
//! live viewers of one webinar share one with probability below 10⁻¹⁷.

use std::sync::Arc;

use hashbrown::HashTable;

use super::bucket::{ActivityBucket, Output, PresenceBucket, PresenceStats};
use crate::event::ActivityKind;

const NIL: u32 = u32::MAX;

/// A viewer id's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerKey {
    hi: u64,
    lo: u32,
}

impl ViewerKey {
    pub fn of(viewer_id: &str) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(viewer_id.as_bytes());
        ViewerKey {
            hi: (h >> 64) as u64,
            lo: h as u32,
        }
    }
}

/// Bucket length and viewer time-to-live, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub bucket_ms: i64,
    pub ttl_ms: i64,
}

impl Params {
    fn bucket_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.bucket_ms)
    }

    /// The bucket's ordinal, wrapping: only ever compared for equality with
    /// the open bucket's, so it must merely differ between buckets a live
    /// viewer spans (2³² buckets).
    fn ordinal(&self, bucket_start: i64) -> u32 {
        bucket_start.div_euclid(self.bucket_ms) as u32
    }
}

/// One viewer's current interval, or their last one while its bucket is open.
pub struct Viewer {
    key_hi: u64,
    key_lo: u32,
    /// Ordinal of the bucket this viewer was last counted in through a
    /// closed interval.
    seen: u32,
    start: i64,
    end: i64,
    prev: u32,
    next: u32,
}

/// Viewer records of every webinar, addressed by `u32`; freed slots are
/// chained through `next`.
#[derive(Default)]
pub struct Slab {
    items: Vec<Viewer>,
    free: Option<u32>,
}

impl Slab {
    fn alloc(&mut self, v: Viewer) -> u32 {
        match self.free {
            Some(i) => {
                let next = self.items[i as usize].next;
                self.free = (next != NIL).then_some(next);
                self.items[i as usize] = v;
                i
            }
            None => {
                self.items.push(v);
                u32::try_from(self.items.len() - 1).expect("fewer than 2^32 viewers")
            }
        }
    }

    fn release(&mut self, i: u32) {
        self.items[i as usize].next = self.free.unwrap_or(NIL);
        self.free = Some(i);
    }

    /// Bytes held by viewer records (for memory accounting).
    pub fn capacity_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Viewer>()
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Viewer;
    fn index(&self, i: u32) -> &Viewer {
        &self.items[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    fn index_mut(&mut self, i: u32) -> &mut Viewer {
        &mut self.items[i as usize]
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
}

/// The open bucket of a webinar.
#[derive(Clone)]
struct Open {
    start: i64,
    /// live(k) has been integrated over `[start, last)`.
    last: i64,
    live_ms: u64,
    min: u32,
    max: u32,
    closed_unique: u32,
    rejoined_seen: u32,
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
            start,
            last: start,
            live_ms: 0,
            min: u32::MAX,
            max: 0,
            closed_unique: 0,
            rejoined_seen: 0,
            pings: 0,
            joins: 0,
            leaves: 0,
            expiries: 0,
            touched: false,
            activity: [0; ActivityKind::ALL.len()],
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

    fn stats(&self, bucket_ms: i64, live: u32) -> PresenceStats {
        PresenceStats {
            bucket_start: self.start,
            bucket_end: self.start + bucket_ms,
            min_concurrent: if self.min == u32::MAX { live } else { self.min },
            max_concurrent: self.max,
            live_ms: self.live_ms,
            unique_viewers: self.closed_unique + live - self.rejoined_seen,
            pings: self.pings,
            joins: self.joins,
            leaves: self.leaves,
            expiries: self.expiries,
        }
    }
}

/// What `GET /live` shows: the live count at the clock and the open bucket
/// so far (integrated up to the clock; min and max include the count now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSnapshot {
    pub live: u32,
    pub ts: i64,
    pub open_bucket: PresenceStats,
}

/// All state of one webinar.
pub struct Webinar {
    pub id: Arc<str>,
    /// The webinar's clock: the largest effective time applied.
    pub clock: i64,
    viewers: HashTable<u32>,
    live_list: List,
    dead_list: List,
    live: u32,
    open: Open,
}

impl Webinar {
    /// A webinar first seen at time `t`.
    pub fn new(id: Arc<str>, t: i64, p: &Params) -> Self {
        let mut open = Open::new(p.bucket_of(t));
        open.integrate(0, t);
        Webinar {
            id,
            clock: t,
            viewers: HashTable::new(),
            live_list: List::EMPTY,
            dead_list: List::EMPTY,
            live: 0,
            open,
        }
    }

    pub fn live(&self) -> u32 {
        self.live
    }

    /// Nothing live and nothing to emit: the webinar's whole state is its clock.
    pub fn is_idle(&self) -> bool {
        self.live == 0
            && !self.open.touched
            && self.open.max == 0
            && self.dead_list.head == NIL
            && self.open.activity.iter().all(|&c| c == 0)
    }

    /// Moves the clock to `t` (≥ the clock), expiring viewers and closing
    /// buckets on the way, in time order.
    pub fn advance(&mut self, t: i64, p: &Params, slab: &mut Slab, out: &mut Vec<Output>) {
        debug_assert!(t >= self.clock);
        loop {
            let bucket_end = self.open.start + p.bucket_ms;
            let next_expiry = match self.live_list.head {
                NIL => i64::MAX,
                head => slab[head].end,
            };
            // A bucket closes before the expiries at its end: a viewer whose
            // interval ends at `b + W` was live at `b + W - 1`.
            if bucket_end <= t && bucket_end <= next_expiry {
                self.open.integrate(self.live, bucket_end);
                self.close_bucket(p, slab, out);
                let next = if self.live == 0 {
                    p.bucket_of(t)
                } else {
                    bucket_end
                };
                self.open = Open::new(next);
            } else if next_expiry <= t {
                self.open.integrate(self.live, next_expiry);
                while self.live_list.head != NIL && slab[self.live_list.head].end == next_expiry {
                    let i = self.live_list.head;
                    self.live_list.unlink(slab, i);
                    self.end_interval(i, next_expiry, p, slab);
                    self.open.expiries += 1;
                    self.open.touched = true;
                }
            } else {
                break;
            }
        }
        self.open.integrate(self.live, t);
        self.clock = t;
    }

    /// A heartbeat at `t` (the clock, already advanced).
    pub fn ping(&mut self, key: ViewerKey, p: &Params, slab: &mut Slab) {
        let t = self.clock;
        self.open.pings += 1;
        self.open.touched = true;
        let found = self
            .viewers
            .find(key.hi, |&i| {
                slab[i].key_hi == key.hi && slab[i].key_lo == key.lo
            })
            .copied();
        match found {
            Some(i) if slab[i].end > t => {
                slab[i].end = t + p.ttl_ms;
                if self.live_list.tail != i {
                    self.live_list.unlink(slab, i);
                    self.live_list.push_back(slab, i);
                }
            }
            Some(i) => {
                self.dead_list.unlink(slab, i);
                if slab[i].seen == p.ordinal(self.open.start) {
                    self.open.rejoined_seen += 1;
                }
                slab[i].start = t;
                slab[i].end = t + p.ttl_ms;
                self.join(i, slab);
            }
            None => {
                let i = slab.alloc(Viewer {
                    key_hi: key.hi,
                    key_lo: key.lo,
                    seen: p.ordinal(self.open.start).wrapping_sub(1),
                    start: t,
                    end: t + p.ttl_ms,
                    prev: NIL,
                    next: NIL,
                });
                self.viewers.insert_unique(key.hi, i, |&j| slab[j].key_hi);
                self.join(i, slab);
            }
        }
    }

    fn join(&mut self, i: u32, slab: &mut Slab) {
        self.live_list.push_back(slab, i);
        self.live += 1;
        self.open.joins += 1;
    }

    /// A leave beacon at `t` (the clock, already advanced). Returns whether
    /// it ended a live interval; a leave for a viewer not live changes nothing.
    pub fn leave(&mut self, key: ViewerKey, p: &Params, slab: &mut Slab) -> bool {
        let t = self.clock;
        let found = self
            .viewers
            .find(key.hi, |&i| {
                slab[i].key_hi == key.hi && slab[i].key_lo == key.lo
            })
            .copied();
        match found {
            Some(i) if slab[i].end > t => {
                self.live_list.unlink(slab, i);
                self.end_interval(i, t, p, slab);
                self.open.leaves += 1;
                self.open.touched = true;
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
    /// the viewer as unique in the open bucket if the interval overlapped it.
    fn end_interval(&mut self, i: u32, end: i64, p: &Params, slab: &mut Slab) {
        let ordinal = p.ordinal(self.open.start);
        let v = &mut slab[i];
        v.end = end;
        if v.seen == ordinal {
            self.open.rejoined_seen -= 1;
        } else if end > v.start.max(self.open.start) {
            self.open.closed_unique += 1;
            v.seen = ordinal;
        }
        self.live -= 1;
        self.dead_list.push_back(slab, i);
    }

    /// Emits the open bucket (fully integrated) if it has anything to say,
    /// and frees the viewers that closed in it.
    fn close_bucket(&mut self, p: &Params, slab: &mut Slab, out: &mut Vec<Output>) {
        let open = &self.open;
        if open.touched || open.max > 0 {
            out.push(Output::Presence(PresenceBucket {
                webinar_id: self.id.clone(),
                stats: open.stats(p.bucket_ms, self.live),
            }));
        }
        if open.activity.iter().any(|&c| c > 0) {
            out.push(Output::Activity(ActivityBucket {
                webinar_id: self.id.clone(),
                bucket_start: open.start,
                bucket_end: open.start + p.bucket_ms,
                counts: open.activity,
            }));
        }
        let mut i = self.dead_list.head;
        while i != NIL {
            let next = slab[i].next;
            let (hi, lo) = (slab[i].key_hi, slab[i].key_lo);
            if let Ok(entry) = self
                .viewers
                .find_entry(hi, |&j| slab[j].key_hi == hi && slab[j].key_lo == lo)
            {
                entry.remove();
            }
            slab.release(i);
            i = next;
        }
        self.dead_list = List::EMPTY;
        if self.viewers.is_empty() {
            self.viewers = HashTable::new();
        }
    }

    /// Runs every live interval to its end and closes the open bucket
    /// (the end of a replay's input).
    pub fn finish(&mut self, p: &Params, slab: &mut Slab, out: &mut Vec<Output>) {
        let last_end = match self.live_list.tail {
            NIL => self.clock,
            tail => slab[tail].end,
        };
        self.advance(last_end, p, slab, out);
        let bucket_end = self.open.start + p.bucket_ms;
        self.open.integrate(self.live, bucket_end);
        self.close_bucket(p, slab, out);
        self.open = Open::new(bucket_end);
        self.clock = bucket_end;
    }

    /// The live count and the open bucket so far.
    pub fn snapshot(&self, p: &Params) -> LiveSnapshot {
        let mut open = self.open.clone();
        open.integrate(self.live, self.clock);
        open.min = open.min.min(self.live);
        open.max = open.max.max(self.live);
        LiveSnapshot {
            live: self.live,
            ts: self.clock,
            open_bucket: open.stats(p.bucket_ms, self.live),
        }
    }

    /// Bytes held by this webinar's index of viewers (for memory accounting).
    pub fn index_bytes(&self) -> usize {
        // hashbrown keeps one control byte per bucket plus a group of 16.
        self.viewers.capacity() * (std::mem::size_of::<u32>() + 1) + 16
    }
}
