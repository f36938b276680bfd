//! The partition function of DESIGN §8, in one place: an event's partition
//! is FNV-1a 32-bit of its key, modulo `nats.partitions`. The key is
//! `webinar_id` for presence and activity, `client_id` for visits,
//! conversions and page views naming a client (a client's sessions, visits
//! and attribution span its campaigns, so one owner sees them all), and
//! `session_id` for other page views (the empty key when a page view names
//! neither). Backends publishing to NATS directly compute the same function;
//! the README publishes the test vectors of its `tests` module.

use crate::event::Event;

/// FNV-1a, 32 bits: offset basis 2166136261, prime 16777619, over the
/// key's UTF-8 bytes.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The key an event is partitioned by; `None` for the service's ticks,
/// which go to every partition.
pub fn key<'a>(ev: &'a Event<'_>) -> Option<&'a str> {
    match ev {
        Event::Presence(e) => Some(&e.webinar_id),
        Event::Activity(e) => Some(&e.webinar_id),
        Event::Visit(e) => Some(&e.client_id),
        Event::Conversion(e) => Some(&e.client_id),
        Event::Pageview(e) => Some(
            e.client_id
                .as_deref()
                .or(e.session_id.as_deref())
                .unwrap_or(""),
        ),
        Event::Tick(_) => None,
    }
}

/// The partition of `key` among `partitions` (at least 1).
pub fn of_key(key: &str, partitions: u32) -> u32 {
    fnv1a32(key.as_bytes()) % partitions.max(1)
}

/// The partition of an event; ticks belong to partition 0 here (they are
/// published to every partition).
pub fn of(ev: &Event<'_>, partitions: u32) -> u32 {
    key(ev).map_or(0, |k| of_key(k, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors the README publishes for other languages.
    pub const VECTORS: [(&str, u32, u32, u32); 6] = [
        // key, FNV-1a 32, partition of 4, partition of 16
        ("", 0x811c_9dc5, 1, 5),
        ("a", 0xe40c_292c, 0, 12),
        ("foobar", 0xbf9c_f968, 0, 8),
        ("w-17", 0xc76c_fb65, 1, 5),
        ("c-demo", 0x1760_b2be, 2, 14),
        ("sess-42", 0x81bb_b898, 0, 8),
    ];

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        for (key, hash, of4, of16) in VECTORS {
            assert_eq!(fnv1a32(key.as_bytes()), hash, "{key:?}");
            assert_eq!(of_key(key, 4), of4, "{key:?} of 4");
            assert_eq!(of_key(key, 16), of16, "{key:?} of 16");
            assert_eq!(of_key(key, 1), 0);
        }
    }
}
