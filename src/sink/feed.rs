//! Live counts, whole webinar states and final buckets published on NATS
//! for other instances and for subscribers (DESIGN §7, §8): the latest
//! per webinar, gathered without blocking the engine and sent by one task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Client;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::PresenceStats;
use crate::sink::live::LiveState;
use crate::source::nats::Subjects;

/// Live counts for `<prefix>.live.<webinar_id>`: the latest state per
/// webinar whose live count changed, published at most every
/// `live.push_interval_ms`. Never blocks
/// the engine.
///
/// With `nats.leases` ([`LiveFeed::shared`]) it also carries each changed
/// webinar's whole state (open bucket and periods) on
/// `<prefix>.state.<webinar_id>` and its buckets as they become final on
/// `<prefix>.bucket.<webinar_id>`, so that every instance's WebSockets show
/// what the owner's engine knows (DESIGN §8).
#[derive(Default)]
pub struct LiveFeed {
    latest: Mutex<HashMap<Arc<str>, LiveState>>,
    shared: bool,
    states: Mutex<HashMap<Arc<str>, LiveState>>,
    buckets: Mutex<Vec<(Arc<str>, PresenceStats)>>,
    wake: Notify,
}

/// A webinar's whole state, on `<prefix>.state.<webinar_id>`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct StateMessage {
    pub webinar_id: String,
    pub state: LiveState,
}

/// A bucket that became final, on `<prefix>.bucket.<webinar_id>`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct BucketMessage {
    pub webinar_id: String,
    pub stats: PresenceStats,
}

impl LiveFeed {
    pub fn new() -> Arc<LiveFeed> {
        Arc::new(LiveFeed::default())
    }

    /// A feed that also carries whole states and final buckets.
    pub fn shared() -> Arc<LiveFeed> {
        Arc::new(LiveFeed {
            shared: true,
            ..LiveFeed::default()
        })
    }

    /// A webinar's whole state changed (sent only by a shared feed).
    pub fn state(&self, webinar_id: &Arc<str>, state: &LiveState) {
        if self.shared {
            self.states
                .lock()
                .expect("live feed lock")
                .insert(webinar_id.clone(), *state);
            self.wake.notify_one();
        }
    }

    /// A bucket became final (sent only by a shared feed).
    pub fn bucket(&self, webinar_id: &Arc<str>, stats: PresenceStats) {
        if self.shared {
            self.buckets
                .lock()
                .expect("live feed lock")
                .push((webinar_id.clone(), stats));
            self.wake.notify_one();
        }
    }

    pub fn live(&self, webinar_id: &Arc<str>, state: &LiveState) {
        self.latest
            .lock()
            .expect("live feed lock")
            .insert(webinar_id.clone(), *state);
        self.wake.notify_one();
    }
}

/// The message published on `<prefix>.live.<webinar_id>` (and on Redis).
pub fn live_message(webinar_id: &str, state: &LiveState) -> String {
    serde_json::json!({"webinar_id": webinar_id, "live": state.live, "ts": state.ts}).to_string()
}

pub async fn live_publisher(
    client: Client,
    subjects: Subjects,
    feed: Arc<LiveFeed>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = feed.wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
        let latest = std::mem::take(&mut *feed.latest.lock().expect("live feed lock"));
        for (w, state) in latest {
            // Core publishes are buffered by the client; while NATS is down
            // the newest counts replace these anyway.
            let _ = client
                .publish(subjects.live(&w), live_message(&w, &state).into())
                .await;
        }
        let buckets = std::mem::take(&mut *feed.buckets.lock().expect("live feed lock"));
        for (w, stats) in buckets {
            let message = BucketMessage {
                webinar_id: w.to_string(),
                stats,
            };
            if let Ok(body) = serde_json::to_vec(&message) {
                let _ = client.publish(subjects.bucket(&w), body.into()).await;
            }
        }
        let states = std::mem::take(&mut *feed.states.lock().expect("live feed lock"));
        for (w, state) in states {
            let message = StateMessage {
                webinar_id: w.to_string(),
                state,
            };
            if let Ok(body) = serde_json::to_vec(&message) {
                let _ = client.publish(subjects.state(&w), body.into()).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
