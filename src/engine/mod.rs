//! The synchronous engine: an ordered log of events in, statistics out.
//!
//! No I/O and no clock of its own: time arrives with the records. The engine
//! owns the clock rules of DESIGN §2 (a clock per webinar and per campaign,
//! `effective ts = max(ts, clock)`, late and clamped events counted, ticks
//! advancing every clock) and dispatches each event to the state it feeds:
//! presence and engagement per webinar ([`presence`]), clocks per campaign.
//! Final buckets accumulate in an output queue the caller drains.

pub mod bucket;
pub mod presence;

use std::sync::Arc;

use hashbrown::HashMap;

use crate::event::{Event, EventType, PresenceAction};
pub use bucket::{ActivityBucket, Output, PresenceBucket, PresenceStats};
pub use presence::LiveSnapshot;
use presence::{Params, Slab, ViewerKey, Webinar};

/// The engine's settings (DESIGN §10 `window.*`, `presence.ttl_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub bucket_ms: i64,
    pub ttl_ms: i64,
    pub late_ms: i64,
    pub max_future_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bucket_ms: 300_000,
            ttl_ms: 150_000,
            late_ms: 1_000,
            max_future_ms: 5_000,
        }
    }
}

/// A setting outside its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {rule}")]
pub struct ConfigError {
    pub key: &'static str,
    pub rule: &'static str,
}

/// Longest bucket and time-to-live: one day.
pub const MAX_SPAN_MS: i64 = 86_400_000;

impl EngineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, key, rule| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError { key, rule })
            }
        };
        check(
            (1..=MAX_SPAN_MS).contains(&self.bucket_ms),
            "window.bucket_ms",
            "must be between 1 and 86400000 (one day)",
        )?;
        check(
            (1..=MAX_SPAN_MS).contains(&self.ttl_ms),
            "presence.ttl_ms",
            "must be between 1 and 86400000 (one day)",
        )?;
        check(self.late_ms >= 0, "window.late_ms", "must not be negative")?;
        check(
            self.max_future_ms >= 0,
            "window.max_future_ms",
            "must not be negative",
        )
    }

    fn params(&self) -> Params {
        Params {
            bucket_ms: self.bucket_ms,
            ttl_ms: self.ttl_ms,
        }
    }
}

/// An event the engine cannot place in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ts: is required (stamp events on arrival before applying them)")]
pub struct MissingTs;

/// How one event was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The effective time it was applied at.
    pub ts: i64,
    /// More than `late_ms` behind its clock.
    pub late: bool,
    /// More than `max_future_ms` ahead of its arrival: applied at arrival.
    pub clamped: bool,
}

/// Running totals of what the engine applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records applied, by [`EventType`] in the order of `EventType::ALL`.
    pub applied: [u64; EventType::ALL.len()],
    pub late: u64,
    pub clamped: u64,
}

impl Counters {
    pub fn applied_total(&self) -> u64 {
        self.applied.iter().sum()
    }

    pub fn applied(&self, t: EventType) -> u64 {
        self.applied[t.index()]
    }
}

/// The engine. See the module docs.
pub struct Engine {
    config: EngineConfig,
    params: Params,
    /// Clock set by the latest tick: every entity's clock is at least this.
    tick_clock: i64,
    webinar_index: HashMap<Arc<str>, u32>,
    webinars: Vec<Webinar>,
    slab: Slab,
    /// Campaigns (and `""` for page views without one) whose clock is ahead
    /// of `tick_clock`.
    campaign_clocks: HashMap<Box<str>, i64>,
    counters: Counters,
    out: Vec<Output>,
}

impl Engine {
    /// An engine with a validated configuration.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            params: config.params(),
            tick_clock: i64::MIN,
            webinar_index: HashMap::new(),
            webinars: Vec::new(),
            slab: Slab::default(),
            campaign_clocks: HashMap::new(),
            counters: Counters::default(),
            out: Vec::new(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Applies one event. `arrival` is when the source received it (the
    /// stored time of a stream message); events more than `max_future_ms`
    /// ahead of it are applied at it. Replay passes `None`: the log already
    /// holds arrival-clamped stamps.
    pub fn apply(&mut self, event: &Event<'_>, arrival: Option<i64>) -> Result<Applied, MissingTs> {
        let mut ts = event.ts().ok_or(MissingTs)?;
        let mut clamped = false;
        if let Some(arrival) = arrival
            && ts > arrival.saturating_add(self.config.max_future_ms)
        {
            ts = arrival;
            clamped = true;
        }
        let applied = match event {
            Event::Presence(e) => {
                let (w, applied) = self.webinar_at(&e.webinar_id, ts);
                let key = ViewerKey::of(&e.viewer_id);
                let webinar = &mut self.webinars[w];
                match e.action {
                    PresenceAction::Ping => webinar.ping(key, &self.params, &mut self.slab),
                    PresenceAction::Leave => {
                        webinar.leave(key, &self.params, &mut self.slab);
                    }
                }
                applied
            }
            Event::Activity(e) => {
                let (w, applied) = self.webinar_at(&e.webinar_id, ts);
                self.webinars[w].activity(e.kind);
                applied
            }
            Event::Visit(e) => self.campaign_at(&e.campaign_id, ts),
            Event::Conversion(e) => self.campaign_at(&e.campaign_id, ts),
            Event::Pageview(e) => self.campaign_at(e.campaign_id.as_deref().unwrap_or(""), ts),
            Event::Tick(t) => {
                self.tick(t.ts);
                Applied {
                    ts: t.ts.max(self.tick_clock),
                    late: false,
                    clamped: false,
                }
            }
        };
        let applied = Applied { clamped, ..applied };
        self.counters.applied[event.event_type().index()] += 1;
        self.counters.late += u64::from(applied.late);
        self.counters.clamped += u64::from(applied.clamped);
        Ok(applied)
    }

    fn effective(&self, clock: i64, ts: i64) -> Applied {
        Applied {
            ts: ts.max(clock),
            late: ts < clock.saturating_sub(self.config.late_ms),
            clamped: false,
        }
    }

    /// The webinar's slot, with its clock advanced to the event's effective time.
    fn webinar_at(&mut self, id: &str, ts: i64) -> (usize, Applied) {
        match self.webinar_index.get(id) {
            Some(&w) => {
                let w = w as usize;
                let applied = self.effective(self.webinars[w].clock, ts);
                self.webinars[w].advance(applied.ts, &self.params, &mut self.slab, &mut self.out);
                (w, applied)
            }
            None => {
                let applied = self.effective(self.tick_clock, ts);
                let id: Arc<str> = id.into();
                let w = self.webinars.len();
                self.webinar_index.insert(id.clone(), w as u32);
                self.webinars
                    .push(Webinar::new(id, applied.ts, &self.params));
                (w, applied)
            }
        }
    }

    fn campaign_at(&mut self, id: &str, ts: i64) -> Applied {
        let tick_clock = self.tick_clock;
        let late_ms = self.config.late_ms;
        let clock = self.campaign_clocks.entry_ref(id).or_insert(tick_clock);
        let applied = Applied {
            ts: ts.max(*clock),
            late: ts < clock.saturating_sub(late_ms),
            clamped: false,
        };
        *clock = applied.ts;
        applied
    }

    /// A tick advances every clock to `ts`; webinars left with nothing but
    /// their clock, and campaigns whose clock is the tick's, are dropped
    /// (their clock is the tick clock from now on).
    fn tick(&mut self, ts: i64) {
        if ts <= self.tick_clock {
            return;
        }
        self.tick_clock = ts;
        let mut w = 0;
        while w < self.webinars.len() {
            let webinar = &mut self.webinars[w];
            if webinar.clock < ts {
                webinar.advance(ts, &self.params, &mut self.slab, &mut self.out);
            }
            if webinar.is_idle() && webinar.clock == ts {
                let gone = self.webinars.swap_remove(w);
                self.webinar_index.remove(&*gone.id);
                if let Some(moved) = self.webinars.get(w) {
                    *self
                        .webinar_index
                        .get_mut(&*moved.id)
                        .expect("every webinar is indexed") = w as u32;
                }
            } else {
                w += 1;
            }
        }
        self.campaign_clocks.retain(|_, clock| *clock > ts);
    }

    /// Runs every interval to its end and closes every bucket (end of input).
    pub fn finish(&mut self) {
        for webinar in &mut self.webinars {
            webinar.finish(&self.params, &mut self.slab, &mut self.out);
        }
    }

    /// Final buckets emitted since the last drain, in emission order (each
    /// webinar's in time order).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Output> {
        self.out.drain(..)
    }

    /// The live count and open bucket of a webinar. A webinar the engine
    /// holds no state for has nobody live (at the tick clock).
    pub fn live(&self, webinar_id: &str) -> Option<LiveSnapshot> {
        self.webinar_index
            .get(webinar_id)
            .map(|&w| self.webinars[w as usize].snapshot(&self.params))
    }

    /// Webinars with state in memory.
    pub fn webinar_count(&self) -> usize {
        self.webinars.len()
    }

    /// Viewers live across all webinars.
    pub fn live_total(&self) -> u64 {
        self.webinars.iter().map(|w| u64::from(w.live())).sum()
    }

    /// The clock set by ticks.
    pub fn tick_clock(&self) -> Option<i64> {
        (self.tick_clock != i64::MIN).then_some(self.tick_clock)
    }
}
