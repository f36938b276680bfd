//! Bounds on what public traffic may create (`limits.*`): every webinar,
//! campaign and client the engine holds costs memory until its day closes,
//! so the browser endpoints admit new ones only within two bounds — how
//! many distinct ones the public endpoints keep alive at once
//! (`limits.max_public_entities`, `503` past it) and how many new ones one
//! client address may introduce per minute
//! (`limits.new_entities_per_minute`, `429`). Entities already admitted keep
//! working, backends (batches, NATS) are not bounded, and nothing accepted
//! is ever dropped: a refused event is refused before it is logged.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use hashbrown::HashMap;

use super::ApiError;

/// How long an admitted entity stays admitted without traffic: past the
/// end of its local day's counts, whatever the time zone.
pub const IDLE_MS: i64 = 26 * 3_600_000;

/// What an event names that the engine keeps state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Webinar,
    Campaign,
    Client,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Webinar => "webinar",
            Kind::Campaign => "campaign",
            Kind::Client => "client",
        }
    }
}

fn fingerprint(kind: Kind, id: &str) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.as_str().as_bytes());
    h.update(&[0]);
    h.update(id.as_bytes());
    h.digest128()
}

/// The admitted entities and the per-address budget of new ones.
pub struct Admission {
    max: usize,
    /// Fingerprints (XXH3-128) of the admitted kinds and ids, and when each
    /// was last named.
    seen: Mutex<HashMap<u128, i64>>,
    new_per_source: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Admission {
    pub fn new(max: usize, new_per_minute: u32) -> Admission {
        Admission {
            max,
            seen: Mutex::new(HashMap::new()),
            new_per_source: NonZeroU32::new(new_per_minute)
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Admits the entities an event from `source` names at `now_ms`.
    pub fn admit(
        &self,
        source: IpAddr,
        entities: &[(Kind, &str)],
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut new: Vec<(Kind, u128)> = Vec::new();
        for (k, id) in entities {
            let fp = fingerprint(*k, id);
            match seen.get_mut(&fp) {
                Some(t) => *t = now_ms,
                None => new.push((*k, fp)),
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        if seen.len() + new.len() > self.max {
            seen.retain(|_, t| *t > now_ms - IDLE_MS);
        }
        if seen.len() + new.len() > self.max {
            return Err(ApiError::Unavailable(format!(
                "limits.max_public_entities: {} webinars, campaigns and clients are active; a new {} is refused until some go idle (existing ones still work)",
                self.max,
                new[0].0.as_str()
            )));
        }
        if let Some(limiter) = &self.new_per_source {
            for _ in &new {
                if let Err(not_until) = limiter.check_key(&source) {
                    use governor::clock::Clock as _;
                    let wait =
                        not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                    return Err(ApiError::RateLimitedFor(
                        format!(
                            "limits.new_entities_per_minute: this address introduced too many new {}s; existing ones still work",
                            new[0].0.as_str()
                        ),
                        wait.max(Duration::from_secs(1)),
                    ));
                }
            }
        }
        for (_, fp) in new {
            seen.insert(fp, now_ms);
        }
        Ok(())
    }

    /// Forgets idle entities and quiet addresses (bounded memory).
    pub fn sweep(&self, now_ms: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, t| *t > now_ms - IDLE_MS);
        seen.shrink_to_fit();
        drop(seen);
        if let Some(l) = &self.new_per_source {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Entities admitted now.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 2));

    #[test]
    fn new_entities_are_bounded_in_number_and_per_address() {
        let a = Admission::new(3, 2);
        assert!(a.admit(A, &[(Kind::Webinar, "w1")], 0).is_ok());
        assert!(a.admit(A, &[(Kind::Webinar, "w2")], 0).is_ok());
        // A third new one from A within the minute: 429.
        let e = a.admit(A, &[(Kind::Webinar, "w3")], 0).unwrap_err();
        assert!(matches!(e, ApiError::RateLimitedFor(..)), "{e}");
        // Known ones keep working for everyone.
        assert!(a.admit(A, &[(Kind::Webinar, "w1")], 1).is_ok());
        assert!(a.admit(B, &[(Kind::Webinar, "w3")], 1).is_ok());
        // Full: a fourth is refused, from any address.
        let e = a.admit(B, &[(Kind::Campaign, "k1")], 2).unwrap_err();
        assert!(
            e.to_string().starts_with("limits.max_public_entities"),
            "{e}"
        );
        assert_eq!(a.len(), 3);
        // Once the others go idle, room is made.
        assert!(a.admit(B, &[(Kind::Campaign, "k1")], IDLE_MS + 2).is_ok());
        assert_eq!(a.len(), 1);
    }
}
