//! Read APIs for campaigns (DESIGN §4, §6): a client's conversion summary
//! by UTM, link statistics, one campaign per day, top page paths, and the
//! overview. Campaign numbers are exact over any range of local days and
//! include everything applied so far (rule 10); they come from the
//! engine's campaign state, the overview's presence figures from the
//! presence rows and the live hub.

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::{Value, json};

use super::query::parse_bound;
use super::{ApiError, AppState, Auth};
use crate::auth::{AuthError, Claims};
use crate::engine::campaign::DateRange;
use crate::event::check_identifier;

/// Days in the default range: the last 30 local days, today included.
const DEFAULT_DAYS: i64 = 30;
/// Paths listed by default, and at most.
const DEFAULT_PATHS: usize = 20;
const MAX_PATHS: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    limit: Option<String>,
}

fn authorize_client(claims: &Claims, client_id: &str) -> Result<(), ApiError> {
    check_identifier("client_id", client_id)?;
    if claims.can_read_client(client_id) {
        Ok(())
    } else {
        Err(AuthError::Forbidden.into())
    }
}

/// The first local date a range may name (bounds lie within 1970..=9999).
const FIRST_DATE: Date = Date::constant(1970, 1, 1);

/// The local date of a bound: a date as given, an instant's date in `tz`.
fn bound_date(field: &str, s: &str, tz: &TimeZone) -> Result<Date, ApiError> {
    let s = s.trim();
    if s.len() == 10
        && let Ok(d) = s.parse::<Date>()
    {
        return if d < FIRST_DATE {
            Err(ApiError::BadRequest(format!(
                "{field}: must lie between 1970 and the end of year 9999"
            )))
        } else {
            Ok(d)
        };
    }
    let ms = parse_bound(field, s, tz, false)?;
    Ok(local_date(ms, tz))
}

/// The date of `ms` in `tz`. Bounds lie within years 1970..=9999, but jiff's
/// instants end some hours before year 9999 does: later ones are on its
/// last day.
fn local_date(ms: i64, tz: &TimeZone) -> Date {
    Timestamp::from_millisecond(ms).map_or(Date::MAX, |t| t.to_zoned(tz.clone()).date())
}

/// The inclusive range of local dates of a request (default: the last
/// [`DEFAULT_DAYS`] days, today included, none before 1970).
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    tz: &TimeZone,
    now_ms: i64,
) -> Result<DateRange, ApiError> {
    let to = match to {
        Some(t) => bound_date("to", t, tz)?,
        None => local_date(now_ms, tz),
    };
    let from = match from {
        Some(f) => bound_date("from", f, tz)?,
        None => to
            .checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
            .map_err(|e| ApiError::BadRequest(format!("to: {e}")))?
            .max(FIRST_DATE),
    };
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from: must not be after to (from is {from}, to is {to})"
        )));
    }
    Ok(DateRange { from, to })
}

fn range_of(s: &AppState, p: &Params) -> Result<DateRange, ApiError> {
    date_range(
        p.from.as_deref(),
        p.to.as_deref(),
        &s.settings.time_zone(),
        (s.clock)(),
    )
}

/// `GET /api/clients/{client_id}/campaigns/summary?from=&to=`
pub async fn summary(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    Ok(Json(s.campaigns.summary(&client_id, range)))
}

/// `GET /api/clients/{client_id}/campaigns/links/{link_id}/stats?from=&to=`
pub async fn link(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path((client_id, link_id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    check_identifier("link_id", &link_id)?;
    let range = range_of(&s, &p)?;
    s.campaigns
        .link_stats(&client_id, &link_id, range)
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "link_id: {link_id:?} has no visits or conversions of client {client_id:?}"
            ))
        })
}

/// `GET /api/clients/{client_id}/campaigns/links?from=&to=`: every link
/// with a link visit or an attributed conversion in the range.
pub async fn links(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let mut body = s.campaigns.links_stats(&client_id, range);
    body["client_id"] = json!(client_id);
    body["period"] = json!({"from": range.from.to_string(), "to": range.to.to_string()});
    Ok(Json(body))
}

/// `GET /api/clients/{client_id}/campaigns/{campaign_id}/stats?from=&to=&interval=1d`
pub async fn campaign(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path((client_id, campaign_id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    check_identifier("campaign_id", &campaign_id)?;
    if let Some(i) = p.interval.as_deref()
        && i != "1d"
    {
        return Err(ApiError::BadRequest(format!(
            "interval: {i:?} is not supported; campaign statistics are per day (1d)"
        )));
    }
    let range = range_of(&s, &p)?;
    s.campaigns
        .campaign_stats(&client_id, &campaign_id, range)
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "campaign_id: {campaign_id:?} has no events of client {client_id:?}"
            ))
        })
}

/// `GET /api/clients/{client_id}/pageviews?from=&to=&limit=`
pub async fn pageviews(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let limit = match p.limit.as_deref() {
        None => DEFAULT_PATHS,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PATHS).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit: must be a number from 1 to {MAX_PATHS}"))
            })?,
    };
    let range = range_of(&s, &p)?;
    Ok(Json(s.campaigns.pageviews(&client_id, range, limit)))
}

/// `GET /api/clients/{client_id}/statistics/overview?from=&to=`
pub async fn overview(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let mut body = s.campaigns.overview(&client_id, range);
    let peaks = webinar_peaks(&s, &client_id, range).await?;
    let peak = peaks.iter().map(|(_, _, peak)| *peak).max().unwrap_or(0);
    body["webinars"]["peak_concurrent"] = json!(peak);
    Ok(Json(body))
}

/// `GET /api/clients/{client_id}/webinars?from=&to=`: the webinars named
/// on the client's visits and counted conversions in the range, each with
/// its registrations in the range, its peak (the largest `max_concurrent`
/// of its buckets starting in the range) and its viewers live now.
pub async fn webinars(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let webinars: Vec<Value> = webinar_peaks(&s, &client_id, range)
        .await?
        .into_iter()
        .map(|(webinar_id, registrations, peak)| {
            let live = s.hub.state(&webinar_id).live;
            json!({
                "webinar_id": webinar_id,
                "live": live,
                "peak_concurrent": peak,
                "registrations": registrations,
            })
        })
        .collect();
    Ok(Json(json!({
        "client_id": client_id,
        "period": {"from": range.from.to_string(), "to": range.to.to_string()},
        "webinars": webinars,
    })))
}

/// The client's webinars in the range with their registrations and peak:
/// the largest `max_concurrent` of their buckets starting in the range,
/// final (store) or open (hub).
async fn webinar_peaks(
    s: &AppState,
    client_id: &str,
    range: DateRange,
) -> Result<Vec<(String, u64, u32)>, ApiError> {
    let tz = s.settings.time_zone();
    let start = range
        .from
        .to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0);
    let end = range
        .to
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(tz).ok())
        .map_or(crate::event::MAX_TS, |z| z.timestamp().as_millisecond());
    let mut out = Vec::new();
    for (w, registrations) in s.campaigns.webinar_registrations(client_id, range) {
        let mut peak = 0u32;
        for b in s.store.presence_buckets(&w, start, end).await? {
            peak = peak.max(b.max_concurrent);
        }
        if let Some(open) = s.hub.state(&w).open_bucket
            && (start..end).contains(&open.bucket_start)
        {
            peak = peak.max(open.max_concurrent);
        }
        out.push((w, registrations, peak));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_ranges_lie_within_years_1970_to_9999() {
        // Found by fuzz/fuzz_targets/read_params.rs: a date was taken as
        // given, before 1970 too, and the default `from` went back 29 days
        // from any `to`.
        let utc = TimeZone::UTC;
        let e = date_range(Some("0000-01-01"), Some("2026-01-01"), &utc, 0)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "from: must lie between 1970 and the end of year 9999");
        assert!(date_range(None, Some("1969-12-31"), &utc, 0).is_err());
        assert_eq!(
            date_range(None, Some("1970-01-05"), &utc, 0).unwrap(),
            DateRange {
                from: FIRST_DATE,
                to: Date::constant(1970, 1, 5)
            }
        );
        // Found by fuzz/fuzz_targets/read_params.rs: the last hours of year
        // 9999 are valid bounds but beyond jiff's instants, and panicked.
        let last = crate::event::MAX_TS.to_string();
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        for tz in [&utc, &seoul] {
            assert_eq!(
                date_range(Some("9999-12-01"), Some(&last), tz, 0)
                    .unwrap()
                    .to,
                Date::MAX
            );
        }
        assert_eq!(
            date_range(Some("1970-01-01"), None, &utc, crate::event::MAX_TS).unwrap(),
            DateRange {
                from: FIRST_DATE,
                to: Date::MAX
            }
        );
        assert_eq!(
            date_range(Some("1970-01-01"), Some("9999-12-31"), &utc, 0).unwrap(),
            DateRange {
                from: FIRST_DATE,
                to: Date::constant(9999, 12, 31)
            }
        );
    }
}
