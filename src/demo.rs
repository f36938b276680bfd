//! `eventflow demo`: the service plus a simulated audience, so the numbers
//! move the moment it starts.
//!
//! Three webinars fill up over the first minutes; each viewer's browser
//! pings every 60 s (with jitter), a few close the tab (a leave beacon), a few
//! lose the network (they expire), newcomers keep arriving, and some chat.
//! Events go through the same path as HTTP ingest: stamped, logged with a
//! group commit, then read by the engine.

use std::time::Duration;

use crate::event::{Activity, ActivityKind, Event, Presence, PresenceAction};
use crate::http::AppState;

/// (webinar, audience size it settles around)
const WEBINARS: [(&str, usize); 3] = [
    ("w-keynote", 400),
    ("w-workshop", 120),
    ("w-office-hours", 25),
];

/// A tiny deterministic PRNG (xorshift64*), enough for a simulation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

struct Viewer {
    webinar: usize,
    id: String,
    next_ping: i64,
}

/// Runs the audience until the service shuts down.
pub async fn audience(s: AppState) {
    let mut rng = Rng((s.clock)() as u64 | 1);
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut serial = 0u64;
    let mut every = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = s.shutdown.cancelled() => return,
        }
        let now = (s.clock)();
        let mut events: Vec<Event<'static>> = Vec::new();
        // Arrivals: towards each webinar's audience size, then a trickle.
        for (w, (name, size)) in WEBINARS.iter().enumerate() {
            let here = viewers.iter().filter(|v| v.webinar == w).count();
            let arrivals = if here < *size {
                1 + rng.below(3)
            } else {
                u64::from(rng.chance(0.1))
            };
            for _ in 0..arrivals {
                serial += 1;
                let id = format!("u-{serial}");
                events.push(presence(name, &id, PresenceAction::Ping, now));
                viewers.push(Viewer {
                    webinar: w,
                    id,
                    next_ping: now + 60_000 + rng.below(4_000) as i64 - 2_000,
                });
            }
        }
        let mut keep = Vec::with_capacity(viewers.len());
        for mut v in viewers.drain(..) {
            let name = WEBINARS[v.webinar].0;
            if v.next_ping > now {
                keep.push(v);
                continue;
            }
            if rng.chance(0.05) {
                // Closes the tab: a leave beacon.
                events.push(presence(name, &v.id, PresenceAction::Leave, now));
                continue;
            }
            if rng.chance(0.02) {
                // Loses the network: no more pings; expires after the ttl.
                continue;
            }
            events.push(presence(name, &v.id, PresenceAction::Ping, now));
            if rng.chance(0.1) {
                let kind = [
                    ActivityKind::Chat,
                    ActivityKind::Question,
                    ActivityKind::Poll,
                ][rng.below(3) as usize];
                events.push(Event::Activity(Activity {
                    id: None,
                    webinar_id: name.into(),
                    viewer_id: Some(v.id.clone().into()),
                    kind,
                    ts: Some(now),
                }));
            }
            v.next_ping = now + 60_000 + rng.below(4_000) as i64 - 2_000;
            keep.push(v);
        }
        viewers = keep;
        if events.is_empty() {
            continue;
        }
        let mut lines = s.sink.prepare();
        for e in &events {
            if let Err(e) = lines.push(e, "event") {
                tracing::warn!(error = ?e, "the demo made an event too large");
            }
        }
        if let Err(e) = s.sink.append(lines).await {
            tracing::warn!(error = %e, "the demo audience could not write");
        } else {
            s.metrics
                .record("presence", "accepted", events.len() as u64);
        }
    }
}

fn presence(webinar: &str, viewer: &str, action: PresenceAction, ts: i64) -> Event<'static> {
    Event::Presence(Presence {
        id: None,
        webinar_id: webinar.to_owned().into(),
        viewer_id: viewer.to_owned().into(),
        action,
        ts: Some(ts),
    })
}
