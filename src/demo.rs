//! `eventflow demo`: the service plus a simulated audience, so the numbers
//! move the moment it starts.
//!
//! Three webinars fill up over the first minutes; each viewer's browser
//! pings every 60 s (with jitter), a few close the tab (a leave beacon), a few
//! lose the network (they expire), newcomers keep arriving, and some chat.
//! Marketing traffic for client `c-demo` runs beside it: visitors land on
//! the `cmp-spring` registration page through UTM links (newsletter,
//! KakaoTalk, search ads) or directly, the middleware logs each page view
//! with its query string, the visit call fails now and then (the page view
//! keeps the UTM), a crawler passes by, and some visitors register and then
//! join the webinar they registered for.
//! Events go through the same path as HTTP ingest: stamped, logged with a
//! group commit, then read by the engine.

use std::time::Duration;

use crate::event::{
    Activity, ActivityKind, Conversion, Event, Pageview, Presence, PresenceAction, Utm, Visit,
};
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

/// The demo's client and campaign.
pub const CLIENT: &str = "c-demo";
const CAMPAIGN: &str = "cmp-spring";

/// (link, utm source, medium, campaign); the last one is direct traffic.
const LINKS: [(Option<&str>, &str, &str, &str); 4] = [
    (Some("l-newsletter"), "newsletter", "email", "spring"),
    (Some("l-kakao"), "kakao", "social", "spring"),
    (Some("l-search"), "naver", "cpc", "spring-search"),
    (None, "", "", ""),
];

/// A visitor who landed and may register a little later.
struct Visitor {
    session: String,
    link: usize,
    register_at: Option<i64>,
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
    let mut visitors: Vec<Visitor> = Vec::new();
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
        // About three visitors a second land; a third of them register.
        for _ in 0..rng.below(2) + u64::from(rng.chance(0.2)) {
            serial += 1;
            let link = rng.below(LINKS.len() as u64) as usize;
            let session = format!("sess-{serial}");
            let (_, source, medium, campaign) = LINKS[link];
            let query = if source.is_empty() {
                None
            } else {
                Some(format!(
                    "utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
                ))
            };
            let ua = if rng.chance(0.3) {
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) KAKAOTALK 10.4.5"
            } else {
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0"
            };
            events.push(Event::Pageview(Pageview {
                id: None,
                path: "/event/spring".into(),
                method: Some("GET".into()),
                query: query.map(Into::into),
                referrer: None,
                user_agent: Some(ua.into()),
                ip: None,
                session_id: Some(session.clone().into()),
                client_id: Some(CLIENT.into()),
                campaign_id: Some(CAMPAIGN.into()),
                webinar_id: None,
                status: Some(200),
                ts: Some(now),
            }));
            // One visit call in ten fails: only the page view knows the UTM.
            if !rng.chance(0.1) {
                events.push(visit(&session, link, ua, now));
            }
            visitors.push(Visitor {
                session,
                link,
                register_at: rng
                    .chance(0.35)
                    .then(|| now + 5_000 + rng.below(40_000) as i64),
            });
        }
        if rng.chance(0.01) {
            events.push(visit(
                &format!("crawl-{serial}"),
                3,
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                now,
            ));
        }
        let mut waiting = Vec::with_capacity(visitors.len());
        for v in visitors.drain(..) {
            match v.register_at {
                Some(at) if at <= now => {
                    // Registers (the form posts no UTM of its own), then
                    // joins the webinar as a viewer.
                    let w = rng.below(WEBINARS.len() as u64) as usize;
                    let viewer = format!("u-{}", v.session);
                    events.push(Event::Conversion(Conversion {
                        id: None,
                        client_id: CLIENT.into(),
                        campaign_id: CAMPAIGN.into(),
                        entry_id: format!("entry-{}", v.session).into(),
                        session_id: Some(v.session.clone().into()),
                        link_id: LINKS[v.link].0.map(Into::into),
                        utm: Utm::default(),
                        cid: None,
                        viewer_id: Some(viewer.clone().into()),
                        webinar_id: Some(WEBINARS[w].0.into()),
                        ts: Some(now),
                    }));
                    events.push(presence(WEBINARS[w].0, &viewer, PresenceAction::Ping, now));
                    viewers.push(Viewer {
                        webinar: w,
                        id: viewer,
                        next_ping: now + 60_000,
                    });
                }
                Some(_) => waiting.push(v),
                None => {}
            }
        }
        visitors = waiting;
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
            for e in &events {
                s.metrics.record(e.event_type().as_str(), "accepted", 1);
            }
        }
    }
}

fn visit(session: &str, link: usize, user_agent: &str, ts: i64) -> Event<'static> {
    let (link_id, source, medium, campaign) = LINKS[link];
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned().into());
    Event::Visit(Visit {
        id: None,
        client_id: CLIENT.into(),
        campaign_id: CAMPAIGN.into(),
        webinar_id: None,
        session_id: session.to_owned().into(),
        link_id: link_id.map(Into::into),
        utm: Utm {
            source: some(source),
            medium: some(medium),
            campaign: some(campaign),
            ..Utm::default()
        },
        cid: None,
        path: Some("/event/spring".into()),
        referrer: None,
        user_agent: Some(user_agent.to_owned().into()),
        ip: None,
        ts: Some(ts),
    })
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
