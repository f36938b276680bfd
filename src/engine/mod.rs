//! The synchronous engine: an ordered log of events in, statistics out.
//!
//! No I/O and no clock of its own: time arrives with the records. The engine
//! owns the clock rules of DESIGN §2 (a clock per webinar and per campaign,
//! `effective ts = max(ts, clock)`, late and clamped events counted, ticks
//! advancing every clock) and dispatches each event to the state it feeds:
//! presence and engagement per webinar ([`presence`]), clocks per campaign.
//! Final buckets accumulate in an output queue the caller drains.

pub mod bucket;
pub mod campaign;
mod index;
pub mod presence;
pub mod report;

use std::sync::{Arc, RwLock};

use hashbrown::HashMap;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventType, PresenceAction};
pub use bucket::{ActivityBucket, Output, Period, PresenceBucket, PresenceStats, RollupBucket};
use campaign::{CampaignConfig, CampaignView, Campaigns};
pub use presence::{LiveSnapshot, OpenPeriod};
use presence::{Params, Slab, ViewerKey, Webinar, WebinarState, webinar_hash};

/// The engine's settings (DESIGN §10 `window.*`, `presence.ttl_ms`,
/// `stats.timezone`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub bucket_ms: i64,
    pub ttl_ms: i64,
    pub late_ms: i64,
    pub max_future_ms: i64,
    /// Calendar of the daily distinct-viewer rollups and campaign days.
    pub timezone: TimeZone,
    /// How far back a conversion looks for its session's touches
    /// (`attribution.window_days`).
    pub attribution_window_days: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            bucket_ms: 300_000,
            ttl_ms: 150_000,
            late_ms: 1_000,
            max_future_ms: 5_000,
            timezone: TimeZone::UTC,
            attribution_window_days: 30,
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
            hour_ms: 3_600_000,
            timezone: self.timezone.clone(),
        }
    }

    fn campaign_config(&self) -> CampaignConfig {
        CampaignConfig {
            timezone: self.timezone.clone(),
            window_days: self.attribution_window_days,
        }
    }

    /// What a checkpoint must have been made under to be resumed.
    fn fingerprint(&self) -> String {
        format!(
            "bucket_ms={} ttl_ms={} late_ms={} max_future_ms={} timezone={} window_days={}",
            self.bucket_ms,
            self.ttl_ms,
            self.late_ms,
            self.max_future_ms,
            self.timezone.iana_name().unwrap_or("fixed"),
            self.attribution_window_days
        )
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
    /// Its `id` was applied within [`DEDUPE_WINDOW_MS`]: not applied again.
    pub duplicate: bool,
}

/// How long, in event time, an event `id` makes redelivery idempotent (the
/// same as JetStream's default duplicate window).
pub const DEDUPE_WINDOW_MS: i64 = 120_000;

/// Fingerprints of the `id`s applied within the dedupe window, oldest first.
#[derive(Default)]
struct RecentIds {
    set: hashbrown::HashSet<u128>,
    order: std::collections::VecDeque<(i64, u128)>,
    /// The latest event time seen with an id.
    high_water: i64,
}

impl RecentIds {
    /// Whether the id fingerprint `fp` at time `ts` repeats one within the
    /// window; records it if not.
    fn repeats(&mut self, fp: u128, ts: i64) -> bool {
        self.high_water = self.high_water.max(ts);
        while let Some(&(t, fp)) = self.order.front() {
            if t >= self.high_water - DEDUPE_WINDOW_MS {
                break;
            }
            self.set.remove(&fp);
            self.order.pop_front();
        }
        if !self.set.insert(fp) {
            return true;
        }
        self.order.push_back((ts, fp));
        false
    }
}

/// Records between the stages of [`Engine::apply_all`]'s look-ahead.
const STAGE: usize = 4;
/// Look-aheads kept: a power of two above `4 * STAGE`.
const RING: usize = 32;
const NO_SLOT: u32 = u32::MAX;
/// A webinar the engine has no record of yet (nothing to fetch).
const NEW_SLOT: u32 = u32::MAX - 1;

/// What [`Engine::apply_all`] learnt of a record ahead of applying it.
#[derive(Clone, Copy)]
struct Ahead {
    webinar: u64,
    /// The webinar's slot, unchecked; [`NO_SLOT`] when not a presence record.
    slot: u32,
    key: ViewerKey,
}

impl Ahead {
    const NONE: Ahead = Ahead {
        webinar: 0,
        slot: NO_SLOT,
        key: ViewerKey::NONE,
    };
}

/// Running totals of what the engine applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Records applied, by [`EventType`] in the order of `EventType::ALL`.
    pub applied: [u64; EventType::ALL.len()],
    pub late: u64,
    pub clamped: u64,
    /// Records skipped because their `id` was applied before (within the
    /// window for presence and activity, ever for campaign events).
    pub duplicates: u64,
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
    /// Slots of `webinars`, by [`webinar_hash`].
    webinar_index: hashbrown::HashTable<u32>,
    webinars: Vec<Webinar>,
    slab: Slab,
    /// Campaigns (and `""` for page views without one) whose clock is ahead
    /// of `tick_clock`.
    campaign_clocks: HashMap<Box<str>, i64>,
    /// Visits, conversions, page views and attribution, shared with readers.
    campaigns: Arc<RwLock<Campaigns>>,
    /// Fingerprints of every applied campaign event `id` (rule 1: a repeat
    /// is skipped however late it comes).
    campaign_ids: hashbrown::HashSet<u128>,
    /// The tick clock when attribution last forgot old sessions.
    swept_at: i64,
    counters: Counters,
    recent_ids: RecentIds,
    out: Vec<Output>,
    /// Webinars changed since [`Engine::take_changed`] last ran.
    changed: Vec<Arc<str>>,
}

/// The room the output buffer keeps between bursts.
const OUT_ROOM: usize = 1024;

/// A checkpoint that cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the checkpoint is unreadable: {0}")]
    Unreadable(String),
    #[error("the checkpoint was made with {saved}, the engine now runs with {now}")]
    Settings { saved: String, now: String },
}

/// Everything the engine holds, as a checkpoint stores it.
#[derive(Serialize, Deserialize)]
struct EngineState {
    settings: String,
    tick_clock: i64,
    webinars: Vec<WebinarState>,
    campaign_clocks: Vec<(String, i64)>,
    counters: Counters,
    recent_ids: Vec<(i64, u128)>,
    ids_high_water: i64,
    campaign_ids: Vec<u128>,
    campaigns: Vec<u8>,
}

impl Engine {
    /// An engine with a validated configuration.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let campaigns = Campaigns::new(&config.campaign_config());
        Ok(Engine {
            params: config.params(),
            config,
            tick_clock: i64::MIN,
            webinar_index: hashbrown::HashTable::new(),
            webinars: Vec::new(),
            slab: Slab::default(),
            campaign_clocks: HashMap::new(),
            campaigns: Arc::new(RwLock::new(campaigns)),
            campaign_ids: hashbrown::HashSet::new(),
            swept_at: i64::MIN,
            counters: Counters::default(),
            recent_ids: RecentIds::default(),
            out: Vec::new(),
            changed: Vec::new(),
        })
    }

    /// The whole state, for a checkpoint.
    pub fn save(&self) -> Vec<u8> {
        let state = EngineState {
            settings: self.config.fingerprint(),
            tick_clock: self.tick_clock,
            webinars: self.webinars.iter().map(|w| w.save(&self.slab)).collect(),
            campaign_clocks: self
                .campaign_clocks
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            counters: self.counters.clone(),
            recent_ids: self.recent_ids.order.iter().copied().collect(),
            ids_high_water: self.recent_ids.high_water,
            campaign_ids: self.campaign_ids.iter().copied().collect(),
            campaigns: postcard::to_stdvec(&*self.campaigns_read())
                .expect("campaign state serializes"),
        };
        postcard::to_stdvec(&state).expect("engine state serializes")
    }

    /// An engine resumed from [`Engine::save`]'s bytes, under the same settings.
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, anyhow::Error> {
        let state: EngineState =
            postcard::from_bytes(bytes).map_err(|e| RestoreError::Unreadable(e.to_string()))?;
        if state.settings != config.fingerprint() {
            return Err(RestoreError::Settings {
                saved: state.settings,
                now: config.fingerprint(),
            }
            .into());
        }
        let mut engine = Engine::new(config)?;
        engine.tick_clock = state.tick_clock;
        engine.counters = state.counters;
        engine.recent_ids = RecentIds {
            set: state.recent_ids.iter().map(|&(_, fp)| fp).collect(),
            order: state.recent_ids.into(),
            high_water: state.ids_high_water,
        };
        engine.campaign_ids = state.campaign_ids.into_iter().collect();
        let campaigns: Campaigns = postcard::from_bytes(&state.campaigns)
            .map_err(|e| RestoreError::Unreadable(e.to_string()))?;
        *engine.campaigns_mut() = campaigns.from_saved(&engine.config.campaign_config());
        engine.campaign_clocks = state
            .campaign_clocks
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .collect();
        for w in state.webinars {
            let webinar = Webinar::restore(w, &mut engine.slab);
            engine.changed.push(webinar.id.clone());
            engine.index_webinar(webinar);
        }
        Ok(engine)
    }

    /// Gives a client's sessions the numbers a store already holds for them
    /// (`numbers` in order 0, 1, 2, ...), before any of its events apply.
    pub fn seed_campaign_sessions(
        &mut self,
        client_id: &str,
        numbers: Vec<(u32, String)>,
    ) -> Result<(), String> {
        self.campaigns_mut().seed_sessions(client_id, numbers)
    }

    /// Takes in the rows of a store's restores up to `restore_id` (see
    /// [`Campaigns::absorb`](campaign::Campaigns::absorb)); how many.
    pub fn absorb_restored(&mut self, restore_id: i64, rows: campaign::CampaignRows) -> usize {
        self.campaigns_mut().absorb(restore_id, rows)
    }

    /// The latest store restore absorbed (0: none).
    pub fn restored_through(&self) -> i64 {
        self.campaigns_read().restored_through()
    }

    /// Campaign rows changed since the last call (for the store).
    pub fn take_campaign_rows(&mut self) -> campaign::CampaignRows {
        self.campaigns_mut().take_rows()
    }

    /// A read handle on the campaign state (DESIGN §4, §6).
    pub fn campaigns(&self) -> CampaignView {
        CampaignView(self.campaigns.clone())
    }

    fn campaigns_mut(&self) -> std::sync::RwLockWriteGuard<'_, Campaigns> {
        self.campaigns.write().unwrap_or_else(|e| e.into_inner())
    }

    fn campaigns_read(&self) -> std::sync::RwLockReadGuard<'_, Campaigns> {
        self.campaigns.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of webinar `id`.
    fn slot(&self, id: &str) -> Option<usize> {
        self.slot_hashed(webinar_hash(id), id)
    }

    /// The slot of webinar `id`, whose [`webinar_hash`] is `hash`.
    fn slot_hashed(&self, hash: u64, id: &str) -> Option<usize> {
        let webinars = &self.webinars;
        self.webinar_index
            .find(hash, |&w| webinars[w as usize].is(hash, id))
            .map(|&w| w as usize)
    }

    /// Adds a webinar in a new slot; returns the slot.
    fn index_webinar(&mut self, webinar: Webinar) -> usize {
        let w = self.webinars.len();
        if w == self.webinars.capacity() {
            // Grow by an eighth: doubling would hold up to as many empty
            // slots as webinars (2 MB at 10 000). Webinars are added rarely,
            // so the extra copies cost nothing that shows.
            self.webinars.reserve_exact((w / 8).max(64));
        }
        let webinars = &self.webinars;
        self.webinar_index
            .insert_unique(webinar.hash, w as u32, |&x| webinars[x as usize].hash);
        self.webinars.push(webinar);
        w
    }

    /// Drops the webinar in slot `w`; the last one moves into its slot.
    fn drop_webinar(&mut self, w: usize) -> Webinar {
        let (hash, last) = (self.webinars[w].hash, self.webinars.len() - 1);
        let webinars = &self.webinars;
        if let Ok(e) = self.webinar_index.find_entry(hash, |&x| x as usize == w) {
            e.remove();
        }
        if w != last {
            let moved = webinars[last].hash;
            if let Some(slot) = self.webinar_index.find_mut(moved, |&x| x as usize == last) {
                *slot = w as u32;
            }
        }
        self.webinars.swap_remove(w)
    }

    /// Calls `f` for each webinar changed since the last call: with its
    /// snapshot, or `None` when the engine dropped its state (nobody live,
    /// nothing open).
    pub fn take_changed(&mut self, mut f: impl FnMut(&Arc<str>, Option<&LiveSnapshot>)) {
        for id in std::mem::take(&mut self.changed) {
            match self.slot(&id) {
                Some(w) => {
                    let webinar = &mut self.webinars[w];
                    if webinar.dirty {
                        webinar.dirty = false;
                        f(&id, Some(&webinar.snapshot(&self.params)));
                    }
                }
                None => f(&id, None),
            }
        }
    }

    fn mark(&mut self, w: usize) {
        let webinar = &mut self.webinars[w];
        if !webinar.dirty {
            webinar.dirty = true;
            self.changed.push(webinar.id.clone());
        }
    }

    /// Bytes held by viewer records (the dominant part of the engine's memory).
    pub fn viewer_bytes(&self) -> usize {
        self.slab.capacity_bytes()
    }

    /// How many webinars changed since [`Engine::take_changed`] last ran.
    pub fn changed_count(&self) -> usize {
        self.changed.len()
    }

    /// Bytes held by webinar records, empty slots included.
    pub fn webinar_bytes(&self) -> usize {
        self.webinars.capacity() * std::mem::size_of::<Webinar>()
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
        self.apply_hashed(event, arrival, None)
    }

    /// Applies `events` in order, exactly as [`Engine::apply`] one by one,
    /// with `arrival(i)` for event `i`, handing each result to `each`.
    ///
    /// Faster on presence records: while one is applied, the memory the
    /// next ones will read is fetched in stages, `STAGE` records apart
    /// (webinar record; index slot and next expiry; viewer record; the
    /// viewer's list neighbours), each stage using what the one before
    /// brought into the cache. The fingerprints computed on the way are
    /// reused; everything else fetched is only a hint and is read again,
    /// so a webinar or viewer that changed in between only costs a miss.
    pub fn apply_all(
        &mut self,
        events: &[Event<'_>],
        arrival: impl Fn(usize) -> Option<i64>,
        mut each: impl FnMut(usize, Result<Applied, MissingTs>),
    ) {
        let mut ring = [Ahead::NONE; RING];
        for (k, e) in events.iter().enumerate().take(4 * STAGE) {
            ring[k % RING] = self.look_ahead(e);
        }
        for (i, event) in events.iter().enumerate() {
            if let Some(e) = events.get(i + 4 * STAGE) {
                ring[(i + 4 * STAGE) % RING] = self.look_ahead(e);
            }
            let [slot, viewer, neighbours] = [3, 2, 1].map(|d| ring[(i + d * STAGE) % RING]);
            if let Some(w) = self.hinted(slot) {
                w.prefetch_slot(slot.key, &self.slab);
            }
            if let Some(w) = self.hinted(viewer) {
                w.prefetch_viewer(viewer.key, &self.slab);
            }
            if let Some(w) = self.hinted(neighbours) {
                w.prefetch_neighbours(neighbours.key, &self.slab);
            }
            let hashes = ring[i % RING];
            let hashes = (hashes.slot != NO_SLOT).then_some((hashes.webinar, hashes.key));
            each(i, self.apply_hashed(event, arrival(i), hashes));
        }
    }

    /// The first stage of [`Engine::apply_all`] for a record: its
    /// fingerprints, and the webinar's record fetched ahead.
    #[inline]
    fn look_ahead(&self, event: &Event<'_>) -> Ahead {
        let Event::Presence(e) = event else {
            return Ahead::NONE;
        };
        let webinar = webinar_hash(&e.webinar_id);
        // The index alone, unchecked: comparing ids would read the very
        // record this fetches.
        let slot = self
            .webinar_index
            .find(webinar, |_| true)
            .map_or(NEW_SLOT, |&w| w);
        if let Some(w) = self.webinars.get(slot as usize) {
            w.prefetch_self();
        }
        Ahead {
            webinar,
            slot,
            key: ViewerKey::of(&e.viewer_id),
        }
    }

    /// The webinar a look-ahead points at, if it still looks like it.
    #[inline]
    fn hinted(&self, ahead: Ahead) -> Option<&Webinar> {
        self.webinars
            .get(ahead.slot as usize)
            .filter(|w| w.hash == ahead.webinar)
    }

    /// [`Engine::apply`], with the webinar's hash and the viewer's
    /// fingerprint of a presence event already computed.
    fn apply_hashed(
        &mut self,
        event: &Event<'_>,
        arrival: Option<i64>,
        hashes: Option<(u64, ViewerKey)>,
    ) -> Result<Applied, MissingTs> {
        let mut ts = event.ts().ok_or(MissingTs)?;
        let mut clamped = false;
        if let Some(arrival) = arrival
            && ts > arrival.saturating_add(self.config.max_future_ms)
        {
            ts = arrival;
            clamped = true;
        }
        // Ids are unique per type and tenant (`Event::id_key`).
        let repeated = match (event.id_key(), event) {
            (None, _) => false,
            (Some(key), Event::Visit(_) | Event::Conversion(_) | Event::Pageview(_)) => {
                !self.campaign_ids.insert(key)
            }
            (Some(key), _) => self.recent_ids.repeats(key, ts),
        };
        if repeated {
            self.counters.duplicates += 1;
            return Ok(Applied {
                ts,
                duplicate: true,
                ..Applied::default()
            });
        }
        let applied = match event {
            Event::Presence(e) => {
                let (hash, key) = hashes
                    .unwrap_or_else(|| (webinar_hash(&e.webinar_id), ViewerKey::of(&e.viewer_id)));
                let (w, applied) = self.webinar_at(hash, &e.webinar_id, ts);
                let webinar = &mut self.webinars[w];
                match e.action {
                    PresenceAction::Ping => webinar.ping(key, &self.params, &mut self.slab),
                    PresenceAction::Leave => {
                        webinar.leave(key, &self.params, &mut self.slab);
                    }
                }
                self.record_days(w);
                applied
            }
            Event::Activity(e) => {
                let (w, applied) = self.webinar_at(webinar_hash(&e.webinar_id), &e.webinar_id, ts);
                self.webinars[w].activity(e.kind);
                self.record_days(w);
                applied
            }
            Event::Visit(e) => {
                let applied = self.campaign_at(&e.campaign_id, ts);
                let horizon = self.attribution_horizon();
                self.campaigns_mut().visit(e, applied.ts, horizon);
                applied
            }
            Event::Conversion(e) => {
                let applied = self.campaign_at(&e.campaign_id, ts);
                self.campaigns_mut().conversion(e, applied.ts);
                applied
            }
            Event::Pageview(e) => {
                let applied = self.campaign_at(e.campaign_id.as_deref().unwrap_or(""), ts);
                let horizon = self.attribution_horizon();
                self.campaigns_mut().pageview(e, applied.ts, horizon);
                applied
            }
            Event::Tick(t) => {
                self.tick(t.ts);
                Applied {
                    ts: t.ts.max(self.tick_clock),
                    ..Applied::default()
                }
            }
        };
        let applied = Applied { clamped, ..applied };
        self.counters.applied[event.event_type().index()] += 1;
        self.counters.late += u64::from(applied.late);
        self.counters.clamped += u64::from(applied.clamped);
        Ok(applied)
    }

    /// Hands the days on which viewers of webinar `w` were live, as its last
    /// operation changed them, to the campaign state (the overview's
    /// `live_viewers`).
    fn record_days(&mut self, w: usize) {
        if self.slab.day_marks.is_empty() {
            return;
        }
        let mut marks = std::mem::take(&mut self.slab.day_marks);
        self.campaigns_mut()
            .viewer_days(&self.webinars[w].id, &marks);
        marks.clear();
        self.slab.day_marks = marks;
    }

    /// The earliest effective time a conversion applied from now on can
    /// look back to: every clock is at least the tick clock.
    fn attribution_horizon(&self) -> i64 {
        self.tick_clock
            .saturating_sub(i64::from(self.config.attribution_window_days) * 86_400_000)
    }

    fn effective(&self, clock: i64, ts: i64) -> Applied {
        Applied {
            ts: ts.max(clock),
            late: ts < clock.saturating_sub(self.config.late_ms),
            ..Applied::default()
        }
    }

    /// The webinar's slot, with its clock advanced to the event's effective time.
    fn webinar_at(&mut self, hash: u64, id: &str, ts: i64) -> (usize, Applied) {
        let (w, applied) = match self.slot_hashed(hash, id) {
            Some(w) => {
                let applied = self.effective(self.webinars[w].clock, ts);
                self.webinars[w].advance(applied.ts, &self.params, &mut self.slab, &mut self.out);
                (w, applied)
            }
            None => {
                let applied = self.effective(self.tick_clock, ts);
                let webinar = Webinar::new(id.into(), applied.ts, &self.params);
                (self.index_webinar(webinar), applied)
            }
        };
        self.mark(w);
        (w, applied)
    }

    fn campaign_at(&mut self, id: &str, ts: i64) -> Applied {
        let tick_clock = self.tick_clock;
        let late_ms = self.config.late_ms;
        let clock = self.campaign_clocks.entry_ref(id).or_insert(tick_clock);
        let applied = Applied {
            ts: ts.max(*clock),
            late: ts < clock.saturating_sub(late_ms),
            ..Applied::default()
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
        // A burst (every webinar closing a bucket at once) leaves the output
        // buffer large; ticks find it drained, and leave it a modest room.
        if self.out.is_empty() && self.out.capacity() > OUT_ROOM {
            self.out.shrink_to(OUT_ROOM);
        }
        // Daily, attribution forgets what fell out of every future window
        // (memory only: no answer depends on when this runs; it walks every
        // session inside the window, so not more often).
        if ts >= self.swept_at.saturating_add(86_400_000) {
            self.swept_at = ts;
            let horizon = self.attribution_horizon();
            self.campaigns_mut().sweep(horizon);
        }
        let mut w = 0;
        while w < self.webinars.len() {
            if self.webinars[w].clock < ts {
                self.webinars[w].advance(ts, &self.params, &mut self.slab, &mut self.out);
                self.record_days(w);
                self.mark(w);
            }
            let webinar = &self.webinars[w];
            if webinar.is_idle() && webinar.clock == ts {
                let gone = self.drop_webinar(w);
                if !gone.dirty {
                    self.changed.push(gone.id.clone());
                }
            } else {
                w += 1;
            }
        }
        self.campaign_clocks.retain(|_, clock| *clock > ts);
        // After a day closed many webinars, their room goes too.
        if self.webinars.len() < self.webinars.capacity() / 4 {
            self.webinars.shrink_to_fit();
            let webinars = &self.webinars;
            self.webinar_index
                .shrink_to_fit(|&w| webinars[w as usize].hash);
        }
    }

    /// Runs every interval to its end and closes every bucket (end of input).
    pub fn finish(&mut self) {
        for w in 0..self.webinars.len() {
            self.webinars[w].finish(&self.params, &mut self.slab, &mut self.out);
            self.record_days(w);
            self.mark(w);
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
        self.slot(webinar_id)
            .map(|w| self.webinars[w].snapshot(&self.params))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Presence, Tick};

    const W: i64 = 100;
    const TTL: i64 = 150;
    const DAY: i64 = 86_400_000;

    fn engine() -> Engine {
        Engine::new(EngineConfig {
            bucket_ms: W,
            ttl_ms: TTL,
            late_ms: 10,
            max_future_ms: 50,
            ..EngineConfig::default()
        })
        .unwrap()
    }

    fn presence(
        w: &'static str,
        v: &'static str,
        action: PresenceAction,
        ts: i64,
    ) -> Event<'static> {
        Event::Presence(Presence {
            id: None,
            webinar_id: w.into(),
            viewer_id: v.into(),
            action,
            ts: Some(ts),
        })
    }

    fn ping(v: &'static str, ts: i64) -> Event<'static> {
        presence("w", v, PresenceAction::Ping, ts)
    }

    fn leave(v: &'static str, ts: i64) -> Event<'static> {
        presence("w", v, PresenceAction::Leave, ts)
    }

    fn tick(ts: i64) -> Event<'static> {
        Event::Tick(Tick { ts })
    }

    /// Applies the events, finishes, and returns the presence buckets.
    fn run(events: &[Event<'static>]) -> Vec<PresenceStats> {
        let mut e = engine();
        for ev in events {
            e.apply(ev, None).unwrap();
        }
        e.finish();
        presence_rows(&mut e)
    }

    fn presence_rows(e: &mut Engine) -> Vec<PresenceStats> {
        e.drain()
            .filter_map(|o| match o {
                Output::Presence(p) => Some(p.stats),
                _ => None,
            })
            .collect()
    }

    fn row(
        start: i64,
        min: u32,
        max: u32,
        live_ms: u64,
        unique: u32,
        counts: [u32; 4],
    ) -> PresenceStats {
        PresenceStats {
            bucket_start: start,
            bucket_end: start + W,
            min_concurrent: min,
            max_concurrent: max,
            live_ms,
            unique_viewers: unique,
            pings: counts[0],
            joins: counts[1],
            leaves: counts[2],
            expiries: counts[3],
        }
    }

    #[test]
    fn one_ping_lives_for_ttl_across_buckets() {
        // [10, 160): 90 ms in bucket 0, 60 ms in bucket 100.
        assert_eq!(
            run(&[ping("a", 10)]),
            vec![
                row(0, 0, 1, 90, 1, [1, 1, 0, 0]),
                row(100, 0, 1, 60, 1, [0, 0, 0, 1])
            ]
        );
    }

    #[test]
    fn a_ping_exactly_at_end_starts_a_new_interval() {
        // [0, 150) expires at 150, the ping at 150 joins again: live never
        // drops; [150, 300) expires at 300, in the bucket starting there.
        let rows = run(&[ping("a", 0), ping("a", 150)]);
        assert_eq!(
            rows,
            vec![
                row(0, 1, 1, 100, 1, [1, 1, 0, 0]),
                row(100, 1, 1, 100, 1, [1, 1, 0, 1]),
                row(200, 1, 1, 100, 1, [0, 0, 0, 0]),
                row(300, 0, 0, 0, 0, [0, 0, 0, 1]),
            ]
        );
    }

    #[test]
    fn a_ping_one_ms_before_end_extends() {
        let rows = run(&[ping("a", 0), ping("a", 149)]);
        assert_eq!(
            rows,
            vec![
                row(0, 1, 1, 100, 1, [1, 1, 0, 0]),
                row(100, 1, 1, 100, 1, [1, 0, 0, 0]),
                row(200, 0, 1, 99, 1, [0, 0, 0, 1]),
            ]
        );
    }

    #[test]
    fn a_leave_in_the_same_ms_as_its_ping_is_an_empty_interval() {
        let rows = run(&[ping("a", 30), leave("a", 30)]);
        assert_eq!(rows, vec![row(0, 0, 0, 0, 0, [1, 1, 1, 0])]);
    }

    #[test]
    fn a_leave_when_not_live_changes_nothing() {
        assert_eq!(run(&[leave("a", 30)]), vec![]);
        let rows = run(&[ping("a", 0), leave("a", 10), leave("a", 20)]);
        assert_eq!(rows, vec![row(0, 0, 1, 10, 1, [1, 1, 1, 0])]);
    }

    #[test]
    fn out_of_order_events_apply_at_the_clock_and_count_as_late() {
        let mut e = engine();
        e.apply(&ping("a", 50), None).unwrap();
        let a = e.apply(&ping("b", 45), None).unwrap();
        assert_eq!((a.ts, a.late), (50, false));
        let a = e.apply(&ping("c", 20), None).unwrap();
        assert_eq!((a.ts, a.late), (50, true));
        assert_eq!(e.counters().late, 1);
        assert_eq!(e.live("w").unwrap().live, 3);
        e.finish();
        let rows = presence_rows(&mut e);
        assert_eq!(rows[0], row(0, 0, 3, 150, 3, [3, 3, 0, 0]));
    }

    #[test]
    fn several_tabs_of_one_viewer_count_once() {
        let rows = run(&[ping("a", 0), ping("a", 0), ping("a", 40), leave("a", 60)]);
        assert_eq!(rows, vec![row(0, 0, 1, 60, 1, [3, 1, 1, 0])]);
    }

    #[test]
    fn a_tick_expires_viewers_and_closes_buckets() {
        let mut e = engine();
        e.apply(&ping("a", 10), None).unwrap();
        e.apply(&tick(99), None).unwrap();
        assert!(presence_rows(&mut e).is_empty(), "bucket 0 is still open");
        e.apply(&tick(100), None).unwrap();
        assert_eq!(
            presence_rows(&mut e),
            vec![row(0, 0, 1, 90, 1, [1, 1, 0, 0])]
        );
        assert_eq!(e.live("w").unwrap().live, 1);
        e.apply(&tick(500), None).unwrap();
        assert_eq!(
            presence_rows(&mut e),
            vec![row(100, 0, 1, 60, 1, [0, 0, 0, 1])]
        );
        // The open hour and day still count the viewer.
        assert_eq!(e.webinar_count(), 1);
        e.apply(&tick(DAY), None).unwrap();
        // Nothing is left but the clock: the webinar's state is dropped, and
        // a late event for it is still applied at the tick's clock.
        assert_eq!(e.webinar_count(), 0);
        let a = e.apply(&ping("a", 20), None).unwrap();
        assert_eq!((a.ts, a.late), (DAY, true));
    }

    #[test]
    fn a_tick_crossing_several_buckets_emits_each_live_one() {
        let mut e = engine();
        e.apply(&ping("a", 0), None).unwrap();
        e.apply(&ping("a", 140), None).unwrap();
        e.apply(&tick(1_000), None).unwrap();
        let rows = presence_rows(&mut e);
        assert_eq!(
            rows,
            vec![
                row(0, 1, 1, 100, 1, [1, 1, 0, 0]),
                row(100, 1, 1, 100, 1, [1, 0, 0, 0]),
                row(200, 0, 1, 90, 1, [0, 0, 0, 1]),
            ]
        );
    }

    #[test]
    fn a_leave_at_a_bucket_start_belongs_to_the_new_bucket_without_a_viewer() {
        let rows = run(&[ping("a", 50), leave("a", 100)]);
        assert_eq!(
            rows,
            vec![
                row(0, 0, 1, 50, 1, [1, 1, 0, 0]),
                row(100, 0, 0, 0, 0, [0, 0, 1, 0])
            ]
        );
    }

    #[test]
    fn an_expiry_on_a_bucket_boundary_counts_in_the_later_bucket() {
        // [50, 200): expires at 200, the start of bucket 200.
        let rows = run(&[ping("a", 50)]);
        assert_eq!(
            rows,
            vec![
                row(0, 0, 1, 50, 1, [1, 1, 0, 0]),
                row(100, 1, 1, 100, 1, [0, 0, 0, 0]),
                row(200, 0, 0, 0, 0, [0, 0, 0, 1]),
            ]
        );
    }

    #[test]
    fn unique_viewers_count_a_rejoining_viewer_once() {
        // a: [0,10) leave, [20,30) leave, [40, 190) expires; b: [5, 155).
        let rows = run(&[
            ping("a", 0),
            ping("b", 5),
            leave("a", 10),
            ping("a", 20),
            leave("a", 30),
            ping("a", 40),
        ]);
        assert_eq!(rows[0].unique_viewers, 2);
        assert_eq!(rows[0].joins, 4);
        assert_eq!(rows[0].leaves, 2);
        // live: 0..5:1, 5..10:2, 10..20:1, 20..30:2, 30..40:1, 40..100:2
        assert_eq!(rows[0].live_ms, 5 + 10 + 10 + 20 + 10 + 120);
        assert_eq!((rows[0].min_concurrent, rows[0].max_concurrent), (1, 2));
        assert_eq!(rows[1].unique_viewers, 2);
    }

    #[test]
    fn a_rejoin_after_an_empty_interval_is_still_one_viewer() {
        let rows = run(&[
            ping("a", 10),
            leave("a", 20),
            ping("a", 30),
            leave("a", 30),
            ping("a", 40),
            leave("a", 50),
        ]);
        assert_eq!(rows, vec![row(0, 0, 1, 20, 1, [3, 3, 3, 0])]);
    }

    #[test]
    fn empty_buckets_between_sessions_are_not_emitted() {
        let rows = run(&[ping("a", 0), ping("a", 1_000)]);
        let starts: Vec<i64> = rows.iter().map(|r| r.bucket_start).collect();
        assert_eq!(starts, vec![0, 100, 1_000, 1_100]);
    }

    #[test]
    fn webinars_keep_their_own_clocks() {
        let mut e = engine();
        e.apply(&presence("w1", "a", PresenceAction::Ping, 1_000), None)
            .unwrap();
        let a = e
            .apply(&presence("w2", "a", PresenceAction::Ping, 10), None)
            .unwrap();
        assert_eq!((a.ts, a.late), (10, false));
        assert_eq!(e.live("w1").unwrap().ts, 1_000);
        assert_eq!(e.live("w2").unwrap().ts, 10);
    }

    #[test]
    fn future_events_are_clamped_to_their_arrival() {
        let mut e = engine();
        let a = e.apply(&ping("a", 1_000), Some(960)).unwrap();
        assert_eq!(
            (a.ts, a.clamped),
            (1_000, false),
            "40 ms ahead is within max_future_ms"
        );
        let a = e.apply(&ping("b", 2_000), Some(1_000)).unwrap();
        assert_eq!((a.ts, a.clamped), (1_000, true));
        assert_eq!(e.counters().clamped, 1);
    }

    #[test]
    fn a_repeated_id_is_applied_once_within_the_window() {
        let with_id = |v: &'static str, ts: i64, id: &'static str| {
            Event::Presence(Presence {
                id: Some(id.into()),
                webinar_id: "w".into(),
                viewer_id: v.into(),
                action: PresenceAction::Ping,
                ts: Some(ts),
            })
        };
        let mut e = engine();
        assert!(!e.apply(&with_id("a", 0, "ev-1"), None).unwrap().duplicate);
        assert!(e.apply(&with_id("b", 10, "ev-1"), None).unwrap().duplicate);
        assert_eq!(
            e.live("w").unwrap().live,
            1,
            "b's redelivered ping was skipped"
        );
        assert!(!e.apply(&with_id("b", 20, "ev-2"), None).unwrap().duplicate);
        // Past the window the id is forgotten.
        e.apply(&with_id("c", DEDUPE_WINDOW_MS + 1, "ev-3"), None)
            .unwrap();
        assert!(
            !e.apply(&with_id("d", DEDUPE_WINDOW_MS + 2, "ev-1"), None)
                .unwrap()
                .duplicate
        );
        assert_eq!(e.counters().duplicates, 1);
        // The window survives a checkpoint.
        let mut restored = Engine::restore(e.config().clone(), &e.save()).unwrap();
        assert!(
            restored
                .apply(&with_id("x", DEDUPE_WINDOW_MS + 3, "ev-3"), None)
                .unwrap()
                .duplicate
        );
        assert!(
            !restored
                .apply(&with_id("x", DEDUPE_WINDOW_MS + 3, "ev-4"), None)
                .unwrap()
                .duplicate
        );
    }

    #[test]
    fn missing_ts_is_refused() {
        let mut e = engine();
        let ev = Event::Presence(Presence {
            id: None,
            webinar_id: "w".into(),
            viewer_id: "a".into(),
            action: PresenceAction::Ping,
            ts: None,
        });
        assert_eq!(e.apply(&ev, None), Err(MissingTs));
        assert_eq!(e.counters().applied_total(), 0);
    }

    #[test]
    fn live_snapshot_shows_the_open_bucket_so_far() {
        let mut e = engine();
        e.apply(&ping("a", 10), None).unwrap();
        e.apply(&ping("b", 30), None).unwrap();
        e.apply(&tick(50), None).unwrap();
        let s = e.live("w").unwrap();
        assert_eq!((s.live, s.ts), (2, 50));
        assert_eq!(s.open_bucket.live_ms, 20 + 2 * 20);
        assert_eq!(
            (s.open_bucket.min_concurrent, s.open_bucket.max_concurrent),
            (0, 2)
        );
        assert_eq!(s.open_bucket.unique_viewers, 2);
        assert_eq!(s.open_bucket.joins, 2);
    }

    #[test]
    fn activity_is_counted_per_bucket_and_kind() {
        use crate::event::{Activity, ActivityKind};
        let act = |kind, ts| {
            Event::Activity(Activity {
                id: None,
                webinar_id: "w".into(),
                viewer_id: None,
                kind,
                ts: Some(ts),
            })
        };
        let mut e = engine();
        e.apply(&act(ActivityKind::Chat, 5), None).unwrap();
        e.apply(&act(ActivityKind::Chat, 6), None).unwrap();
        e.apply(&act(ActivityKind::Cta, 150), None).unwrap();
        e.finish();
        let rows: Vec<ActivityBucket> = e
            .drain()
            .filter_map(|o| match o {
                Output::Activity(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].bucket_start,
                rows[0].counts[ActivityKind::Chat.index()]
            ),
            (0, 2)
        );
        assert_eq!(
            (
                rows[1].bucket_start,
                rows[1].counts[ActivityKind::Cta.index()]
            ),
            (100, 1)
        );
        assert_eq!(e.counters().applied(EventType::Activity), 3);
    }

    #[test]
    fn configuration_is_validated() {
        let bad = EngineConfig {
            bucket_ms: 0,
            ..EngineConfig::default()
        };
        assert_eq!(Engine::new(bad).err().unwrap().key, "window.bucket_ms");
        let bad = EngineConfig {
            ttl_ms: -1,
            ..EngineConfig::default()
        };
        assert_eq!(Engine::new(bad).err().unwrap().key, "presence.ttl_ms");
    }

    #[test]
    fn memory_is_released_when_viewers_and_buckets_close() {
        let mut e = engine();
        for round in 0..50 {
            let base = round * 1_000;
            e.apply(&ping("a", base), None).unwrap();
            e.apply(&ping("b", base), None).unwrap();
            e.apply(&leave("a", base + 10), None).unwrap();
        }
        e.apply(&tick(100_000), None).unwrap();
        assert_eq!(e.live_total(), 0);
        e.apply(&tick(DAY + 100_000), None).unwrap();
        assert_eq!(e.webinar_count(), 0);
        assert_eq!(e.slab.len, 2, "viewer slots are reused");
    }
}
