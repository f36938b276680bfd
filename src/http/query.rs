//! Read APIs for webinars (DESIGN §6): the live count, access statistics in
//! 5-minute, hourly or daily buckets, and engagement by kind.
//!
//! Coarser intervals merge final buckets exactly: min of mins (0 when some
//! bucket of the period had nobody), max of maxes, Σ live_ms over the
//! period's length for the time-weighted average, sums of counts, and
//! distinct viewers from the engine's hourly and daily rollups (distinct
//! viewers do not add up across buckets).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Auth};
use crate::auth::AuthError;
use crate::engine::PresenceStats;
pub use crate::engine::bucket::{bucket_json, open_bucket_json};
use crate::event::{ActivityKind, check_identifier};
use crate::live::LiveState;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
}

/// Admin tokens read every webinar, webinar tokens their own, client tokens
/// the webinars named on the client's visits and conversions.
pub fn authorize_webinar(
    s: &AppState,
    claims: &crate::auth::Claims,
    webinar_id: &str,
) -> Result<(), ApiError> {
    check_identifier("webinar_id", webinar_id)?;
    let by_client = match &claims.scope {
        crate::auth::Scope::Client(c) => s.campaigns.client_names_webinar(c, webinar_id),
        _ => false,
    };
    if by_client || claims.can_read_webinar(webinar_id) {
        Ok(())
    } else {
        Err(AuthError::Forbidden.into())
    }
}

/// `GET /api/webinars`: webinars with viewers live now (admin).
pub async fn webinars(
    State(s): State<AppState>,
    Auth(claims): Auth,
) -> Result<Json<Value>, ApiError> {
    if !claims.is_admin() {
        return Err(AuthError::Forbidden.into());
    }
    let list: Vec<Value> = s
        .hub
        .live_webinars()
        .into_iter()
        .map(|(id, st)| json!({"webinar_id": &*id, "live": st.live, "ts": st.ts}))
        .collect();
    Ok(Json(json!({ "webinars": list })))
}

/// `GET /api/webinars/{id}/live`
pub async fn live(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id)?;
    let st = s.hub.state(&webinar_id);
    let (open_bucket, open_periods) = open_json(&webinar_id, &st);
    Ok(Json(json!({
        "webinar_id": webinar_id,
        "live": st.live,
        "ts": st.ts,
        "open_bucket": open_bucket,
        "open_periods": open_periods,
    })))
}

/// The open bucket so far, with its engagement by kind, and the distinct
/// viewers so far of the open hour and day (`null` for a webinar the
/// engine holds nothing of).
pub fn open_json(webinar_id: &str, st: &LiveState) -> (Value, Value) {
    let open_bucket = st.open_bucket.map_or(Value::Null, |b| {
        let mut v = open_bucket_json(webinar_id, &b, st.ts);
        v["engagement"] = ActivityKind::ALL
            .iter()
            .zip(st.engagement)
            .map(|(kind, n)| (kind.as_str().to_owned(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        v
    });
    let open_periods = st.open_periods.map_or(Value::Null, |periods| {
        let [hour, day] = periods
            .map(|p| json!({"start": p.start, "end": p.end, "unique_viewers": p.unique_viewers}));
        json!({"hour": hour, "day": day})
    });
    (open_bucket, open_periods)
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
pub async fn access(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
    Query(q): Query<Range>,
) -> Result<Json<Value>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id)?;
    let interval = q.interval.as_deref().unwrap_or("5m");
    let (from, to) = range(&s, &q)?;
    let tz = s.settings.time_zone();
    let buckets: Vec<Value> = match interval {
        "5m" => {
            let rows = s.store.presence_buckets(&webinar_id, from, to).await?;
            rows.iter().map(|b| bucket_json(&webinar_id, b)).collect()
        }
        "1h" | "1d" => {
            let periods = if interval == "1h" {
                hours(from, to)
            } else {
                days(from, to, &tz)
            };
            let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
                return Ok(Json(
                    json!({"webinar_id": webinar_id, "interval": interval, "buckets": []}),
                ));
            };
            let rows = s
                .store
                .presence_buckets(&webinar_id, first.0, last.1)
                .await?;
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
            merge(&rows, &periods, s.settings.window.bucket_ms)
                .into_iter()
                .map(|mut m| {
                    if let Some(u) = uniques.get(&m.bucket_start) {
                        m.unique_viewers = *u;
                    }
                    bucket_json(&webinar_id, &m)
                })
                .collect()
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "interval: {other:?} is not one of 5m, 1h, 1d"
            )));
        }
    };
    Ok(Json(
        json!({ "webinar_id": webinar_id, "interval": interval, "buckets": buckets }),
    ))
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
pub fn merge(rows: &[PresenceStats], periods: &[(i64, i64)], bucket_ms: i64) -> Vec<PresenceStats> {
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
        if n * bucket_ms < end - start {
            // A bucket without a row had nobody live.
            m.min_concurrent = 0;
        }
        out.push(m);
    }
    out
}

/// `GET /api/webinars/{id}/stats/engagement?from=&to=`
pub async fn engagement(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(webinar_id): Path<String>,
    Query(q): Query<Range>,
) -> Result<Json<Value>, ApiError> {
    authorize_webinar(&s, &claims, &webinar_id)?;
    let (from, to) = range(&s, &q)?;
    let counts = s.store.activity(&webinar_id, from, to).await?;
    let mut by_kind = serde_json::Map::new();
    for kind in ActivityKind::ALL {
        let n = counts
            .iter()
            .find(|(k, _)| k == kind.as_str())
            .map_or(0, |(_, n)| *n);
        by_kind.insert(kind.as_str().into(), json!(n));
    }
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    Ok(Json(json!({
        "webinar_id": webinar_id,
        "from": from,
        "to": to,
        "total": total,
        "by_kind": by_kind,
    })))
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
        let merged = merge(&rows, &hours(h, h + 2 * HOUR_MS), 300_000);
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
        let merged = merge(&full, &hours(h, h + HOUR_MS), 300_000);
        assert_eq!(
            (merged[0].min_concurrent, merged[0].avg_concurrent()),
            (2, 2.0)
        );
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
