//! The live hub: what the engine last said about each webinar, fanned out
//! to readers (`GET /live`) and WebSocket clients.
//!
//! Per webinar, the hub holds the latest live state; while someone reads
//! the webinar, a `watch` channel carries that state (a slow reader only
//! ever sees the newest value, and never slows the engine) and a small
//! `broadcast` channel carries buckets as they become final (a reader that
//! falls behind skips the ones it missed; they are in the store). The
//! channels go when their last reader does, so an unwatched webinar costs
//! its state alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use dashmap::DashMap;
use tokio::sync::{broadcast, watch};

use crate::engine::{LiveSnapshot, OpenPeriod, PresenceStats};
use crate::event::ActivityKind;

/// The latest state of one webinar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LiveState {
    pub live: u32,
    /// The webinar's clock.
    pub ts: i64,
    /// The open bucket so far, when the engine holds one.
    pub open_bucket: Option<PresenceStats>,
    /// Activity in the open bucket so far, by kind (in the order of
    /// [`ActivityKind::ALL`]).
    pub engagement: [u32; ActivityKind::ALL.len()],
    /// Distinct viewers so far of the open hour and day.
    pub open_periods: Option<[OpenPeriod; 2]>,
}

impl From<&LiveSnapshot> for LiveState {
    fn from(s: &LiveSnapshot) -> Self {
        LiveState {
            live: s.live,
            ts: s.ts,
            open_bucket: Some(s.open_bucket),
            engagement: s.engagement,
            open_periods: Some(s.open_periods),
        }
    }
}

/// One webinar in the hub: its latest state, and the channels to its
/// readers only while someone reads (an unwatched webinar costs its state
/// and nothing more — most webinars are never watched).
struct Channel {
    state: LiveState,
    readers: Option<Readers>,
}

struct Readers {
    state: watch::Sender<LiveState>,
    buckets: broadcast::Sender<PresenceStats>,
}

impl Readers {
    fn unread(&self) -> bool {
        self.state.receiver_count() == 0 && self.buckets.receiver_count() == 0
    }
}

impl Channel {
    fn new(state: LiveState) -> Channel {
        Channel {
            state,
            readers: None,
        }
    }

    /// Replaces the state, waking readers only if it changed (a reader that
    /// subscribes later reads the value as it is then); channels nobody
    /// reads any more are let go. Returns whether the live count changed.
    fn set(&mut self, state: LiveState) -> bool {
        let old = std::mem::replace(&mut self.state, state);
        if let Some(readers) = &self.readers {
            if readers.unread() {
                self.readers = None;
            } else if old != state {
                readers.state.send_replace(state);
            }
        }
        old.live != state.live
    }

    fn subscribe(&mut self) -> Subscription {
        let state = self.state;
        let readers = self.readers.get_or_insert_with(|| Readers {
            state: watch::Sender::new(state),
            buckets: broadcast::Sender::new(64),
        });
        Subscription {
            state: readers.state.subscribe(),
            buckets: readers.buckets.subscribe(),
        }
    }
}

/// A reader's view of one webinar.
pub struct Subscription {
    pub state: watch::Receiver<LiveState>,
    pub buckets: broadcast::Receiver<PresenceStats>,
}

#[derive(Default)]
pub struct LiveHub {
    webinars: DashMap<Arc<str>, Channel>,
    /// Webinars let go since the table last gave back its room.
    forgotten: AtomicUsize,
}

impl LiveHub {
    pub fn new() -> Arc<LiveHub> {
        Arc::new(LiveHub::default())
    }

    /// Records a webinar's state (from the engine); returns whether its
    /// live count changed (a webinar not held before counted 0).
    pub fn publish(&self, webinar_id: &Arc<str>, state: LiveState) -> bool {
        if let Some(mut ch) = self.webinars.get_mut(webinar_id) {
            return ch.set(state);
        }
        // Through the entry: a subscriber that came meanwhile keeps its channel.
        self.webinars
            .entry(webinar_id.clone())
            .or_insert_with(|| Channel::new(LiveState::default()))
            .set(state)
    }

    /// The engine no longer holds state for this webinar (nobody live, no
    /// open bucket): its entry goes unless someone is watching.
    pub fn forget(&self, webinar_id: &str, ts: i64) {
        if let Some(mut ch) = self.webinars.get_mut(webinar_id) {
            ch.set(LiveState {
                ts,
                ..LiveState::default()
            });
        }
        if self
            .webinars
            .remove_if(webinar_id, |_, ch| ch.readers.is_none())
            .is_some()
            && self.forgotten.fetch_add(1, Relaxed) >= 1024
            && self.webinars.len() < self.webinars.capacity() / 4
        {
            // A day closed many webinars at once: their room goes too.
            self.forgotten.store(0, Relaxed);
            self.webinars.shrink_to_fit();
        }
    }

    /// A bucket of this webinar became final.
    pub fn bucket(&self, webinar_id: &str, stats: PresenceStats) {
        if let Some(ch) = self.webinars.get(webinar_id)
            && let Some(readers) = &ch.readers
        {
            let _ = readers.buckets.send(stats);
        }
    }

    /// The latest state of a webinar (live 0 when the engine holds none).
    pub fn state(&self, webinar_id: &str) -> LiveState {
        self.webinars
            .get(webinar_id)
            .map(|ch| ch.state)
            .unwrap_or_default()
    }

    pub fn subscribe(&self, webinar_id: &str) -> Subscription {
        self.webinars
            .entry(Arc::from(webinar_id))
            .or_insert_with(|| Channel::new(LiveState::default()))
            .subscribe()
    }

    /// Every webinar's latest state.
    pub fn all_states(&self) -> Vec<(Arc<str>, LiveState)> {
        self.webinars
            .iter()
            .map(|e| (e.key().clone(), e.state))
            .collect()
    }

    /// Webinars with someone live, most viewers first.
    pub fn live_webinars(&self) -> Vec<(Arc<str>, LiveState)> {
        let mut out: Vec<_> = self
            .webinars
            .iter()
            .filter(|e| e.state.live > 0)
            .map(|e| (e.key().clone(), e.state))
            .collect();
        out.sort_by(|a, b| b.1.live.cmp(&a.1.live).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(live: u32, ts: i64) -> LiveState {
        LiveState {
            live,
            ts,
            ..LiveState::default()
        }
    }

    #[test]
    fn subscribers_see_the_latest_state_and_final_buckets() {
        let hub = LiveHub::new();
        let w: Arc<str> = "w".into();
        let mut sub = hub.subscribe("w");
        hub.publish(&w, state(1, 10));
        hub.publish(&w, state(2, 20));
        assert!(sub.state.has_changed().unwrap());
        assert_eq!(sub.state.borrow_and_update().live, 2, "latest value wins");
        hub.bucket("w", PresenceStats::default());
        assert!(sub.buckets.try_recv().is_ok());
        assert_eq!(hub.state("w").live, 2);
        assert_eq!(hub.state("other"), LiveState::default());
        assert_eq!(hub.live_webinars().len(), 1);
    }

    #[test]
    fn unwatched_states_are_kept_and_count_changes_reported() {
        let hub = LiveHub::new();
        let w: Arc<str> = "w".into();
        assert!(hub.publish(&w, state(1, 10)), "0 -> 1");
        assert!(!hub.publish(&w, state(1, 20)), "only the clock moved");
        assert_eq!(hub.state("w"), state(1, 20), "kept with nobody watching");
        let mut sub = hub.subscribe("w");
        assert_eq!(sub.state.borrow_and_update().ts, 20);
        assert!(!hub.publish(&w, state(1, 30)));
        assert!(
            sub.state.has_changed().unwrap(),
            "a watcher is woken by any change"
        );
        assert!(hub.publish(&w, state(0, 40)), "1 -> 0");
        assert_eq!(sub.state.borrow_and_update().live, 0);
    }

    #[test]
    fn forgotten_webinars_stay_while_watched() {
        let hub = LiveHub::new();
        let w: Arc<str> = "w".into();
        hub.publish(&w, state(3, 10));
        let sub = hub.subscribe("w");
        hub.forget("w", 50);
        assert_eq!(hub.state("w"), state(0, 50));
        drop(sub);
        hub.forget("w", 60);
        assert_eq!(hub.state("w"), LiveState::default());
        assert!(hub.live_webinars().is_empty());
    }
}
