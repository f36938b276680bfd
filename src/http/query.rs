//! Read APIs for webinars (DESIGN §6): the live count, access statistics in
//! 5-minute, hourly or daily buckets, and engagement by kind.
//!
//! Coarser intervals merge final buckets exactly: min of mins (0 when some
//! bucket of the period had nobody), max of maxes, Σ live_ms over the
//! period's length for the time-weighted average, sums of counts, and
//! distinct viewers from the engine's hourly and daily rollups (distinct
//! viewers do not add up across buckets). The period still open (marked
//! `"open": true`) also counts the open bucket so far and covers its elapsed
//! part only: the average is over the time up to the webinar's clock, the
//! minimum over the buckets begun so far, the counts and distinct viewers so
//! far — one span for every figure. A webinar never seen answers 404.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Auth, ErrorBody};
use crate::auth::AuthError;
use crate::engine::PresenceStats;
pub use crate::engine::bucket::{Bucket, ByKind, bucket_json, open_bucket_json};
use crate::event::{ActivityKind, Identifier, check_identifier};
use crate::sink::live::LiveState;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The range of a webinar read (`from`/`to`, see [`parse_range`]) and,
/// for access statistics, the interval.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Range {
    /// Start of the range (inclusive): a calendar date in `stats.timezone`
    /// (`2026-01-31`), an RFC 3339 instant (`2026-01-31T09:00:00Z`) or
    /// epoch milliseconds, from 1970 to the end of year 9999. Default: a
    /// day before `to`.
    #[param(value_type = Option<Bound>, example = "2026-01-31")]
    from: Option<String>,
    /// End of the range: a date (inclusive: the whole day), an RFC 3339
    /// instant or epoch milliseconds (exclusive). Default: now. A range
    /// spans at most 400 days.
    #[param(value_type = Option<Bound>, example = "2026-01-31")]
    to: Option<String>,
    /// Bucket length: 5 minutes (the final buckets), UTC hours or
    /// calendar days in `stats.timezone`. Default: `5m`.
    #[param(inline, value_type = Option<Interval>)]
    interval: Option<String>,
}

/// A bound of a range as a read takes it (see [`parse_bound`]): a date, an
/// RFC 3339 instant or epoch milliseconds. Whether it names a day that
/// exists, lies within 1970..=9999 and comes before the other bound is
/// checked on arrival (400).
pub struct Bound;

/// The forms of [`Bound`]. (The service also takes surrounding blanks and
/// the other spellings of an instant jiff reads.)
pub const BOUND_PATTERN: &str = "^([0-9]{1,15}\
    |[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\
    (T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?)$";

impl utoipa::PartialSchema for Bound {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(BOUND_PATTERN))
            .description(Some(
                "A calendar date in `stats.timezone` (`2026-01-31`), an RFC 3339 instant \
                 (`2026-01-31T09:00:00Z`) or epoch milliseconds (`1764000000000`).",
            ))
            .into()
    }
}

impl ToSchema for Bound {}

/// The intervals access statistics come in.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: `interval` is read as text, to name a bad one.
pub enum Interval {
    #[schema(rename = "5m")]
    FiveMinutes,
    #[schema(rename = "1h")]
    Hour,
    #[schema(rename = "1d")]
    Day,
}

/// `GET /api/webinars`
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveWebinars {
    pub webinars: Vec<LiveWebinar>,
}

/// A webinar with viewers live now.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveWebinar {
    #[schema(value_type = Identifier)]
    pub webinar_id: String,
    /// Viewers live at `ts`.
    pub live: u32,
    /// The webinar's clock, in epoch milliseconds.
    pub ts: i64,
}

/// `GET /api/webinars/{webinar_id}/live`
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    #[schema(value_type = Identifier)]
    pub webinar_id: String,
    /// Viewers live at `ts`.
    pub live: u32,
    /// The webinar's clock, in epoch milliseconds (for an idle webinar,
    /// one nobody is live in, at least the end of its last bucket).
    pub ts: i64,
    /// The open bucket so far (`null` for an idle webinar).
    #[schema(required = true)]
    pub open_bucket: Option<OpenBucket>,
    /// Distinct viewers so far of the open hour and day.
    #[schema(required = true)]
    pub open_periods: Option<OpenPeriods>,
}

/// The open bucket so far: integrated up to the webinar's clock, min and
/// max including the count now, `avg_concurrent` over the elapsed part.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenBucket {
    #[serde(flatten)]
    pub bucket: Bucket,
    /// Activity in the open bucket so far.
    pub engagement: ByKind,
}

/// The hour (UTC) and day (`stats.timezone`) still open.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenPeriods {
    pub hour: OpenPeriod,
    pub day: OpenPeriod,
}

/// An open hour or day and its distinct viewers so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenPeriod {
    /// Epoch milliseconds (inclusive).
    pub start: i64,
    /// Epoch milliseconds (exclusive).
    pub end: i64,
    pub unique_viewers: u32,
}

/// `GET /api/webinars/{webinar_id}/stats/access`
#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    #[schema(value_type = Identifier)]
    pub webinar_id: String,
    #[schema(value_type = Interval)]
    pub interval: String,
    /// The final buckets starting in the range, oldest first; coarser
    /// intervals merge them (min of mins, max of maxes, time-weighted
    /// average, distinct viewers of the period, sums). A period without
    /// a final bucket has no row.
    pub buckets: Vec<Bucket>,
}

/// `GET /api/webinars/{webinar_id}/stats/engagement`
#[derive(Debug, Serialize, ToSchema)]
pub struct Engagement {
    #[schema(value_type = Identifier)]
    pub webinar_id: String,
    /// The range read, in epoch milliseconds: `[from, to)`.
    pub from: i64,
    pub to: i64,
    pub total: u64,
    pub by_kind: ByKind,
}

/// Admin tokens read every webinar, webinar tokens their own, client tokens
/// the webinars named on the client's visits and conversions.
pub async fn authorize_webinar(
    s: &AppState,
    claims: &crate::auth::Claims,
    webinar_id: &str,
) -> Result<(), ApiError> {
    check_identifier("webinar_id", webinar_id)?;
    let by_client = match (&claims.scope, &s.cluster) {
        (crate::auth::Scope::Client(c), None) => s.campaigns.client_names_webinar(c, webinar_id),
        // The client's campaigns may be another instance's (DESIGN §8).
        (crate::auth::Scope::Client(c), Some(cluster)) => cluster
            .client_names_webinar(c, webinar_id)
            .await
            .map_err(ApiError::Unavailable)?,
        _ => false,
    };
    if by_client || claims.can_read_webinar(webinar_id) {
        Ok(())
    } else {
        Err(AuthError::Forbidden.into())
    }
}

/// `GET /api/webinars`: webinars with viewers live now (admin).
#[utoipa::path(
    get,
    path = "/api/webinars",
    tag = "webinars",
    summary = "Webinars with viewers live now",
    responses((status = 200, description = "The webinars.", body = LiveWebinars)),
)]
pub async fn webinars(
    State(s): State<AppState>,
    Auth(claims): Auth,
) -> Result<Json<LiveWebinars>, ApiError> {
    if !claims.is_admin() {
        return Err(AuthError::Forbidden.into());
    }
    let webinars = s
        .hub
        .live_webinars()
        .into_iter()
        .map(|(id, st)| LiveWebinar {
            webinar_id: id.to_string(),
            live: st.live,
            ts: st.ts,
        })
        .collect();
    Ok(Json(LiveWebinars { webinars }))
}

/// `GET /api/webinars/{id}/live`
#[utoipa::path(
    get,
    path = "/api/webinars/{webinar_id}/live",
    tag = "webinars",
    summary = "Viewers live now and the open bucket",
    description = "The live count at the webinar's clock, the open bucket so far (with its \
        engagement) and the distinct viewers so far of the open hour and day. For live \
        updates, open the WebSocket `/ws/webinars/{webinar_id}`.",
    params(("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17")),
    responses(
        (status = 200, description = "The live state.", body = Live),
        (status = 400, description = "`webinar_id` is not an identifier.", body = ErrorBody),
        (status = 404, description = "The webinar has no presence yet.", body = ErrorBody),
        (status = 503, description = "The store is unavailable (for a webinar nobody is live \
            in).", body = ErrorBody),
    ),
)]
pub async fn live(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
) -> Result<Json<Live>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id).await?;
    let mut st = s.hub.state(&webinar_id);
    if st.open_bucket.is_none() {
        // Not in the engine: a webinar with history is idle (nobody live
        // since its last bucket); one without was never seen.
        let last = s.store.recent_presence(&webinar_id, 1).await?;
        let Some(last) = last.first() else {
            return Err(ApiError::NotFound(format!(
                "webinar_id: {webinar_id:?} has no presence yet"
            )));
        };
        st.ts = st.ts.max(last.bucket_end);
    }
    let (open_bucket, open_periods) = open_state(&webinar_id, &st);
    Ok(Json(Live {
        webinar_id,
        live: st.live,
        ts: st.ts,
        open_bucket,
        open_periods,
    }))
}

/// The open bucket so far, with its engagement by kind, and the distinct
/// viewers so far of the open hour and day (`None` for a webinar the
/// engine holds nothing of).
pub fn open_state(webinar_id: &str, st: &LiveState) -> (Option<OpenBucket>, Option<OpenPeriods>) {
    let open_bucket = st.open_bucket.map(|b| OpenBucket {
        bucket: Bucket::open(webinar_id, &b, st.ts),
        engagement: ByKind::new(st.engagement.map(u64::from)),
    });
    let open_periods = st.open_periods.map(|periods| {
        let [hour, day] = periods.map(|p| OpenPeriod {
            start: p.start,
            end: p.end,
            unique_viewers: p.unique_viewers,
        });
        OpenPeriods { hour, day }
    });
    (open_bucket, open_periods)
}

/// [`open_state`] as JSON values (`null` when absent).
pub fn open_json(webinar_id: &str, st: &LiveState) -> (Value, Value) {
    let (bucket, periods) = open_state(webinar_id, st);
    (
        serde_json::to_value(bucket).expect("buckets serialize"),
        serde_json::to_value(periods).expect("periods serialize"),
    )
}

/// Parses `from`/`to`: a calendar date in `tz` (inclusive: `to` ends at the
/// next midnight), an RFC 3339 instant, or epoch milliseconds.
pub fn parse_bound(field: &str, s: &str, tz: &TimeZone, is_end: bool) -> Result<i64, ApiError> {
    let ms = parse_instant(field, s, tz, is_end)?;
    if (0..=crate::event::MAX_TS).contains(&ms) {
        Ok(ms)
    } else {
        Err(ApiError::BadRequest(format!(
            "{field}: must lie between 1970 and the end of year 9999"
        )))
    }
}

fn parse_instant(field: &str, s: &str, tz: &TimeZone, is_end: bool) -> Result<i64, ApiError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{field}: {s:?} is out of range")));
    }
    if let Some(date) = (s.len() == 10).then(|| s.parse::<Date>().ok()).flatten() {
        let day = if is_end {
            date.tomorrow()
                .map_err(|_| ApiError::BadRequest(format!("{field}: {s:?} is out of range")))?
        } else {
            date
        };
        return day
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ApiError::BadRequest(format!("{field}: {e}")));
    }
    s.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|_| {
        ApiError::BadRequest(format!(
            "{field}: {s:?} is not a date (2026-01-31), an RFC 3339 instant (2026-01-31T09:00:00Z) or epoch milliseconds"
        ))
    })
}

/// The range `[from, to)` of a request.
fn range(s: &AppState, q: &Range) -> Result<(i64, i64), ApiError> {
    parse_range(
        q.from.as_deref(),
        q.to.as_deref(),
        &s.settings.time_zone(),
        (s.clock)(),
    )
}

/// The range `[from, to)` of `from`/`to` parameters (see [`parse_bound`]);
/// without bounds, the 24 hours before `now_ms` (none before 1970). At most
/// 400 days long.
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    tz: &TimeZone,
    now_ms: i64,
) -> Result<(i64, i64), ApiError> {
    let to = match to {
        Some(t) => parse_bound("to", t, tz, true)?,
        None => now_ms,
    };
    let from = match from {
        Some(f) => parse_bound("from", f, tz, false)?,
        None => (to - DAY_MS).max(0),
    };
    if from >= to {
        return Err(ApiError::BadRequest(format!(
            "from: must be before to (from is {from}, to is {to} in epoch milliseconds)"
        )));
    }
    if to - from > 400 * DAY_MS {
        return Err(ApiError::BadRequest(
            "to: a range spans at most 400 days".into(),
        ));
    }
    Ok((from, to))
}

/// `GET /api/webinars/{id}/stats/access?from=&to=&interval=5m|1h|1d`
#[utoipa::path(
    get,
    path = "/api/webinars/{webinar_id}/stats/access",
    tag = "webinars",
    summary = "Access statistics in 5-minute, hourly or daily buckets",
    description = "Final buckets only: a bucket is final once the webinar's clock passed its \
        end (the open one is in `/live`).",
    params(("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17"), Range),
    responses(
        (status = 200, description = "The buckets.", body = Access),
        (status = 400, description = "A bad `webinar_id`, `from`, `to` or `interval` (the \
            error says why).", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    ),
)]
pub async fn access(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
    Query(q): Query<Range>,
) -> Result<Json<Access>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id).await?;
    let interval = q.interval.as_deref().unwrap_or("5m");
    let (from, to) = range(&s, &q)?;
    let tz = s.settings.time_zone();
    let buckets: Vec<Bucket> = match interval {
        "5m" => {
            let rows = s.store.presence_buckets(&webinar_id, from, to).await?;
            rows.iter().map(|b| Bucket::new(&webinar_id, b)).collect()
        }
        "1h" | "1d" => {
            let periods = if interval == "1h" {
                hours(from, to)
            } else {
                days(from, to, &tz)
            };
            let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
                return Ok(Json(Access {
                    interval: interval.to_owned(),
                    webinar_id,
                    buckets: Vec::new(),
                }));
            };
            let mut rows = s
                .store
                .presence_buckets(&webinar_id, first.0, last.1)
                .await?;
            // The period still open counts the open bucket so far, like its
            // unique viewers: every figure covers the same elapsed span.
            let st = s.hub.state(&webinar_id);
            let open = st
                .open_bucket
                .filter(|b| (first.0..last.1).contains(&b.bucket_start));
            rows.extend(open);
            let mut uniques: HashMap<i64, u32> = s
                .store
                .rollups(&webinar_id, interval, first.0, last.1)
                .await?
                .into_iter()
                .map(|(start, _, u)| (start, u))
                .collect();
            // The period still open has no rollup yet: the engine's count so far.
            for open in s.hub.state(&webinar_id).open_periods.into_iter().flatten() {
                if open.period.as_str() == interval {
                    uniques.entry(open.start).or_insert(open.unique_viewers);
                }
            }
            let covered_until = open.map_or(i64::MAX, |b| b.bucket_end);
            merge(&rows, &periods, s.settings.window.bucket_ms, covered_until)
                .into_iter()
                .map(|mut m| {
                    if let Some(u) = uniques.get(&m.bucket_start) {
                        m.unique_viewers = *u;
                    }
                    match open {
                        // Averaged over the elapsed part, up to the clock.
                        Some(b) if (m.bucket_start..m.bucket_end).contains(&b.bucket_start) => {
                            Bucket {
                                open: Some(true),
                                ..Bucket::open(&webinar_id, &m, st.ts)
                            }
                        }
                        _ => Bucket::new(&webinar_id, &m),
                    }
                })
                .collect()
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "interval: {other:?} is not one of 5m, 1h, 1d"
            )));
        }
    };
    Ok(Json(Access {
        interval: interval.to_owned(),
        webinar_id,
        buckets,
    }))
}

/// The UTC hours overlapping `[from, to)`.
fn hours(from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut h = from - from.rem_euclid(HOUR_MS);
    while h < to {
        out.push((h, h + HOUR_MS));
        h += HOUR_MS;
    }
    out
}

/// The calendar days of `tz` overlapping `[from, to)`.
pub fn days(from: i64, to: i64, tz: &TimeZone) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let Ok(start) = Timestamp::from_millisecond(from) else {
        return out;
    };
    let mut day = start.to_zoned(tz.clone()).date();
    loop {
        let Ok(begin) = day.to_zoned(tz.clone()) else {
            break;
        };
        let Ok(next) = day.tomorrow() else { break };
        let Ok(end) = next.to_zoned(tz.clone()) else {
            break;
        };
        let (b, e) = (
            begin.timestamp().as_millisecond(),
            end.timestamp().as_millisecond(),
        );
        if b >= to {
            break;
        }
        out.push((b, e));
        day = next;
    }
    out
}

/// Merges base buckets into the given periods (each period with at least
/// one bucket yields a row; `unique_viewers` is the busiest bucket's).
/// Buckets from `covered_until` on have not happened yet (the open period):
/// only those before it without a row had nobody live.
pub fn merge(
    rows: &[PresenceStats],
    periods: &[(i64, i64)],
    bucket_ms: i64,
    covered_until: i64,
) -> Vec<PresenceStats> {
    let mut out = Vec::new();
    let mut i = 0;
    for &(start, end) in periods {
        while i < rows.len() && rows[i].bucket_start < start {
            i += 1;
        }
        let mut m = PresenceStats {
            bucket_start: start,
            bucket_end: end,
            min_concurrent: u32::MAX,
            ..PresenceStats::default()
        };
        let mut n = 0i64;
        while i < rows.len() && rows[i].bucket_start < end {
            let r = &rows[i];
            m.min_concurrent = m.min_concurrent.min(r.min_concurrent);
            m.max_concurrent = m.max_concurrent.max(r.max_concurrent);
            m.live_ms += r.live_ms;
            m.unique_viewers = m.unique_viewers.max(r.unique_viewers);
            m.pings += r.pings;
            m.joins += r.joins;
            m.leaves += r.leaves;
            m.expiries += r.expiries;
            n += 1;
            i += 1;
        }
        if n == 0 {
            continue;
        }
        if n * bucket_ms < end.min(covered_until) - start {
            // A bucket without a row had nobody live.
            m.min_concurrent = 0;
        }
        out.push(m);
    }
    out
}

/// `GET /api/webinars/{id}/stats/engagement?from=&to=`
#[utoipa::path(
    get,
    path = "/api/webinars/{webinar_id}/stats/engagement",
    tag = "webinars",
    summary = "Engagement by kind",
    description = "Activity events (chat, question, poll, ...) in the final buckets starting \
        in the range.",
    params(
        ("webinar_id" = Identifier, Path, description = "The webinar.", example = "w-17"),
        ("from" = Option<Bound>, Query, example = "2026-01-31", description = "Start of \
            the range, as for access statistics."),
        ("to" = Option<Bound>, Query, example = "2026-01-31", description = "End of the \
            range, as for access statistics."),
    ),
    responses(
        (status = 200, description = "The counts.", body = Engagement),
        (status = 400, description = "A bad `webinar_id`, `from` or `to` (the error says \
            why).", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    ),
)]
pub async fn engagement(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
    Query(q): Query<Range>,
) -> Result<Json<Engagement>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id).await?;
    let (from, to) = range(&s, &q)?;
    let counts = s.store.activity(&webinar_id, from, to).await?;
    let by_kind = ByKind::new(ActivityKind::ALL.map(|kind| {
        counts
            .iter()
            .find(|(k, _)| k == kind.as_str())
            .map_or(0, |(_, n)| *n)
    }));
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    Ok(Json(Engagement {
        webinar_id,
        from,
        to,
        total,
        by_kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: i64, min: u32, max: u32, live_ms: u64, unique: u32) -> PresenceStats {
        PresenceStats {
            bucket_start: start,
            bucket_end: start + 300_000,
            min_concurrent: min,
            max_concurrent: max,
            live_ms,
            unique_viewers: unique,
            pings: 1,
            joins: 1,
            leaves: 0,
            expiries: 0,
        }
    }

    #[test]
    fn bounds_parse_as_dates_instants_or_milliseconds() {
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        assert_eq!(
            parse_bound("from", "1764000000000", &seoul, false).unwrap(),
            1_764_000_000_000
        );
        // 2026-01-31 in Seoul starts at 15:00 UTC the day before.
        let from = parse_bound("from", "2026-01-31", &seoul, false).unwrap();
        assert_eq!(
            from,
            "2026-01-30T15:00:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond()
        );
        let to = parse_bound("to", "2026-01-31", &seoul, true).unwrap();
        assert_eq!(to - from, DAY_MS, "a date as `to` includes that whole day");
        assert_eq!(
            parse_bound("to", "2026-01-31T09:00:00+09:00", &seoul, true).unwrap(),
            from + 9 * HOUR_MS
        );
        assert!(
            parse_bound("to", "9223372036854775807", &seoul, true)
                .unwrap_err()
                .to_string()
                .starts_with("to: must lie between 1970")
        );
        assert!(parse_bound("from", "1969-12-31T00:00:00Z", &seoul, false).is_err());
        let e = parse_bound("from", "yesterday", &seoul, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("from: \"yesterday\" is not a date"), "{e}");
    }

    #[test]
    fn a_range_without_from_starts_no_earlier_than_1970() {
        // Found by fuzz/fuzz_targets/read_params.rs (`to=5`): the default
        // `from`, a day before `to`, lay before 1970.
        let utc = TimeZone::UTC;
        assert_eq!(parse_range(None, Some("5"), &utc, 0).unwrap(), (0, 5));
        assert!(parse_range(None, None, &utc, 0).is_err(), "[0, 0) is empty");
        assert_eq!(
            parse_range(None, None, &utc, 2 * DAY_MS).unwrap(),
            (DAY_MS, 2 * DAY_MS)
        );
    }

    #[test]
    fn hours_merge_exactly() {
        let h = 1_764_000_000_000 - 1_764_000_000_000 % HOUR_MS;
        let rows = [
            b(h, 2, 5, 900_000, 6),
            b(h + 300_000, 1, 4, 600_000, 5),
            b(h + HOUR_MS, 3, 3, 900_000, 3),
        ];
        let merged = merge(&rows, &hours(h, h + 2 * HOUR_MS), 300_000, i64::MAX);
        assert_eq!(merged.len(), 2);
        let first = &merged[0];
        assert_eq!((first.bucket_start, first.bucket_end), (h, h + HOUR_MS));
        assert_eq!(
            first.min_concurrent, 0,
            "ten buckets of the hour had nobody"
        );
        assert_eq!(first.max_concurrent, 5);
        assert_eq!(first.live_ms, 1_500_000);
        assert_eq!(first.avg_concurrent(), 0.417);
        assert_eq!((first.pings, first.joins), (2, 2));
        let full: Vec<PresenceStats> = (0..12)
            .map(|i| b(h + i * 300_000, 2, 2, 600_000, 2))
            .collect();
        let merged = merge(&full, &hours(h, h + HOUR_MS), 300_000, i64::MAX);
        assert_eq!(
            (merged[0].min_concurrent, merged[0].avg_concurrent()),
            (2, 2.0)
        );
        // An open hour with its first four buckets so far, all busy: the
        // eight buckets yet to come do not make its minimum 0.
        let merged = merge(&full[..4], &hours(h, h + HOUR_MS), 300_000, h + 4 * 300_000);
        assert_eq!(merged[0].min_concurrent, 2);
        let merged = merge(
            &full[1..4],
            &hours(h, h + HOUR_MS),
            300_000,
            h + 4 * 300_000,
        );
        assert_eq!(merged[0].min_concurrent, 0, "the first bucket had nobody");
    }

    #[test]
    fn days_follow_the_time_zone() {
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        let from = parse_bound("from", "2026-03-01", &seoul, false).unwrap();
        let to = parse_bound("to", "2026-03-02", &seoul, true).unwrap();
        let d = days(from, to, &seoul);
        assert_eq!(d, vec![(from, from + DAY_MS), (from + DAY_MS, to)]);
        // A DST day in New York is 23 hours long.
        let ny = TimeZone::get("America/New_York").unwrap();
        let from = parse_bound("from", "2026-03-08", &ny, false).unwrap();
        let d = days(from, from + 1, &ny);
        assert_eq!(d[0].1 - d[0].0, 23 * HOUR_MS);
    }
}
