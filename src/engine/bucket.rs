//! The statistics the engine emits: presence buckets and engagement buckets,
//! and their one textual form (the "Replay output" of DESIGN §6), also as
//! the JSON values the read APIs, WebSockets and the Redis cache send.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::event::ActivityKind;

/// One webinar's presence statistics over `[bucket_start, bucket_end)`.
///
/// `live_ms` is Σ live(k) over the bucket, kept exact so that coarser
/// intervals can merge buckets into an exact time-weighted average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct PresenceStats {
    pub bucket_start: i64,
    pub bucket_end: i64,
    pub min_concurrent: u32,
    pub max_concurrent: u32,
    pub live_ms: u64,
    pub unique_viewers: u32,
    pub pings: u32,
    pub joins: u32,
    pub leaves: u32,
    pub expiries: u32,
}

impl PresenceStats {
    /// The exact mean of live(k) over the bucket, in thousandths, rounded
    /// half up: `avg_concurrent` = this ÷ 1000.
    pub fn avg_milli(&self) -> u64 {
        avg_milli(self.live_ms, self.bucket_end - self.bucket_start)
    }

    /// `avg_concurrent` as a number (for JSON APIs).
    pub fn avg_concurrent(&self) -> f64 {
        self.avg_milli() as f64 / 1000.0
    }
}

/// `round(live_ms * 1000 / span_ms)` in exact integer arithmetic.
pub fn avg_milli(live_ms: u64, span_ms: i64) -> u64 {
    let span = span_ms.max(1) as u128;
    ((u128::from(live_ms) * 2000 + span) / (2 * span)) as u64
}

/// Formats thousandths as a decimal with exactly three digits.
pub fn write_milli(out: &mut String, milli: u64) {
    let _ = write!(out, "{}.{:03}", milli / 1000, milli % 1000);
}

/// A final presence bucket of one webinar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceBucket {
    pub webinar_id: Arc<str>,
    pub stats: PresenceStats,
}

impl PresenceBucket {
    /// Appends the bucket as one line of replay output (with the newline).
    pub fn write_json_line(&self, out: &mut String) {
        let s = &self.stats;
        out.push_str("{\"webinar_id\":");
        write_json_str(out, &self.webinar_id);
        let _ = write!(
            out,
            ",\"bucket_start\":{},\"bucket_end\":{},\"min_concurrent\":{},\"max_concurrent\":{},\"avg_concurrent\":",
            s.bucket_start, s.bucket_end, s.min_concurrent, s.max_concurrent
        );
        write_milli(out, s.avg_milli());
        let _ = writeln!(
            out,
            ",\"unique_viewers\":{},\"pings\":{},\"joins\":{},\"leaves\":{},\"expiries\":{}}}",
            s.unique_viewers, s.pings, s.joins, s.leaves, s.expiries
        );
    }
}

/// Webinar engagement in one bucket: activity counts in the order of
/// [`ActivityKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityBucket {
    pub webinar_id: Arc<str>,
    pub bucket_start: i64,
    pub bucket_end: i64,
    pub counts: [u32; ActivityKind::ALL.len()],
}

/// The coarser periods distinct viewers are counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum Period {
    /// A UTC hour.
    Hour,
    /// A calendar day in `stats.timezone`.
    Day,
}

impl Period {
    /// The name used in the store and the API's `interval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "1h",
            Period::Day => "1d",
        }
    }
}

/// Distinct viewers of a webinar over a final hour or day (distinct viewers
/// do not add up across buckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupBucket {
    pub webinar_id: Arc<str>,
    pub period: Period,
    pub start: i64,
    pub end: i64,
    pub unique_viewers: u32,
}

/// What the engine emits as buckets and periods become final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Presence(PresenceBucket),
    Activity(ActivityBucket),
    Rollup(RollupBucket),
}

fn write_json_str(out: &mut String, s: &str) {
    // Identifiers are plain ASCII without quotes or backslashes; serde_json
    // keeps this correct for anything else.
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

/// A presence bucket as the read APIs and WebSockets send it: the fields
/// of the replay output (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    #[schema(value_type = crate::event::Identifier)]
    pub webinar_id: String,
    /// Start of the bucket, in epoch milliseconds (inclusive).
    pub bucket_start: i64,
    /// End of the bucket, in epoch milliseconds (exclusive).
    pub bucket_end: i64,
    /// The fewest viewers live at once.
    pub min_concurrent: u32,
    /// The most viewers live at once.
    pub max_concurrent: u32,
    /// The time-weighted mean of viewers live, to three decimals.
    pub avg_concurrent: f64,
    /// Distinct viewers live at some moment of the bucket.
    pub unique_viewers: u32,
    pub pings: u32,
    /// Viewers who went live (a first ping, or one after a leave or expiry).
    pub joins: u32,
    /// Viewers who left with a leave beacon.
    pub leaves: u32,
    /// Viewers whose liveness ran out without a leave.
    pub expiries: u32,
    /// `true` on the hour or day still open in coarser access statistics:
    /// it covers its elapsed part only (absent on final buckets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
}

impl Bucket {
    pub fn new(webinar_id: &str, s: &PresenceStats) -> Bucket {
        Bucket {
            webinar_id: webinar_id.to_owned(),
            bucket_start: s.bucket_start,
            bucket_end: s.bucket_end,
            min_concurrent: s.min_concurrent,
            max_concurrent: s.max_concurrent,
            avg_concurrent: s.avg_concurrent(),
            unique_viewers: s.unique_viewers,
            pings: s.pings,
            joins: s.joins,
            leaves: s.leaves,
            expiries: s.expiries,
            open: None,
        }
    }

    /// The open bucket so far: its `avg_concurrent` is the mean over the
    /// part of the bucket elapsed at the webinar's clock.
    pub fn open(webinar_id: &str, s: &PresenceStats, clock: i64) -> Bucket {
        let elapsed = (clock - s.bucket_start).clamp(1, s.bucket_end - s.bucket_start);
        Bucket {
            avg_concurrent: avg_milli(s.live_ms, elapsed) as f64 / 1000.0,
            ..Bucket::new(webinar_id, s)
        }
    }
}

/// A bucket in the fields of the replay output.
pub fn bucket_json(webinar_id: &str, s: &PresenceStats) -> Value {
    serde_json::to_value(Bucket::new(webinar_id, s)).expect("buckets serialize")
}

/// The open bucket so far (see [`Bucket::open`]).
pub fn open_bucket_json(webinar_id: &str, s: &PresenceStats, clock: i64) -> Value {
    serde_json::to_value(Bucket::open(webinar_id, s, clock)).expect("buckets serialize")
}

/// Activity counts by kind (in the order of [`ActivityKind::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
pub struct ByKind {
    pub chat: u64,
    pub question: u64,
    pub poll: u64,
    pub download: u64,
    pub form: u64,
    pub giveaway: u64,
    pub cta: u64,
}

impl ByKind {
    /// Counts in the order of [`ActivityKind::ALL`].
    pub fn new(counts: [u64; ActivityKind::ALL.len()]) -> ByKind {
        let [chat, question, poll, download, form, giveaway, cta] = counts;
        ByKind {
            chat,
            question,
            poll,
            download,
            form,
            giveaway,
            cta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_is_exact_and_rounded_half_up() {
        assert_eq!(avg_milli(0, 300_000), 0);
        assert_eq!(avg_milli(300_000, 300_000), 1000);
        // 1/3 = 0.333..., 2/3 = 0.666... -> 0.667
        assert_eq!(avg_milli(1, 3), 333);
        assert_eq!(avg_milli(2, 3), 667);
        // exactly half a thousandth rounds up
        assert_eq!(avg_milli(1, 2000), 1);
        assert_eq!(
            avg_milli(u64::from(u32::MAX) * 86_400_000, 86_400_000),
            u64::from(u32::MAX) * 1000
        );
    }

    #[test]
    fn replay_line_matches_the_contract() {
        let b = PresenceBucket {
            webinar_id: "w-17".into(),
            stats: PresenceStats {
                bucket_start: 1_764_000_000_000,
                bucket_end: 1_764_000_300_000,
                min_concurrent: 0,
                max_concurrent: 412,
                live_ms: 86_229_300,
                unique_viewers: 455,
                pings: 1630,
                joins: 470,
                leaves: 12,
                expiries: 3,
            },
        };
        let mut line = String::new();
        b.write_json_line(&mut line);
        assert_eq!(
            line,
            "{\"webinar_id\":\"w-17\",\"bucket_start\":1764000000000,\"bucket_end\":1764000300000,\
             \"min_concurrent\":0,\"max_concurrent\":412,\"avg_concurrent\":287.431,\
             \"unique_viewers\":455,\"pings\":1630,\"joins\":470,\"leaves\":12,\"expiries\":3}\n"
        );
    }
}
