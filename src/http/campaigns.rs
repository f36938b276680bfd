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
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query::{Bound, parse_bound};
use super::{ApiError, AppState, Auth, ErrorBody};
use crate::auth::{AuthError, Claims};
use crate::engine::campaign::DateRange;
use crate::engine::report::{
    CampaignStats, LinkStats, Links, Overview, Pageviews, Period, Summary,
};
use crate::event::{Identifier, check_identifier};

/// Days in the default range: the last 30 local days, today included.
const DEFAULT_DAYS: i64 = 30;
/// Paths listed by default, and at most.
const DEFAULT_PATHS: usize = 20;
const MAX_PATHS: usize = 1000;

/// The range of a campaign read: inclusive local dates (`stats.timezone`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// First day: a date (`2026-01-01`), or an RFC 3339 instant or epoch
    /// milliseconds, whose local date is taken; from 1970 to year 9999.
    /// Default: 29 days before `to`.
    #[param(value_type = Option<Bound>, example = "2026-01-01")]
    from: Option<String>,
    /// Last day (inclusive), in the same forms. Default: today.
    #[param(value_type = Option<Bound>, example = "2026-01-31")]
    to: Option<String>,
    /// Campaign statistics only: `1d`, the one interval they come in.
    #[param(ignore)]
    interval: Option<String>,
    /// Page views only: how many paths, 1 to 1000 (default 20).
    #[param(ignore)]
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

/// The one interval campaign statistics come in.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: `interval` is read as text, to name a bad one.
pub enum CampaignInterval {
    #[schema(rename = "1d")]
    Day,
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
/// `DEFAULT_DAYS` days, today included, none before 1970).
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
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/campaigns/summary",
    tag = "campaigns",
    summary = "Conversions by UTM and by attribution",
    params(("client_id" = Identifier, Path, description = "The client.", example = "c-1"), Params),
    responses(
        (status = 200, description = "The summary.", body = Summary),
        (status = 400, description = "A bad identifier, `from` or `to` (the error says \
            why).", body = ErrorBody),
    ),
)]
pub async fn summary(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Summary>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    Ok(Json(
        s.campaigns_for(&client_id)?.summary(&client_id, range),
    ))
}

/// `GET /api/clients/{client_id}/campaigns/links/{link_id}/stats?from=&to=`
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/campaigns/links/{link_id}/stats",
    tag = "campaigns",
    summary = "A link's visits, conversions and conversion rate",
    description = "A link the client has used, asked about a range without data, answers \
        with zeros.",
    params(
        ("client_id" = Identifier, Path, description = "The client.", example = "c-1"),
        ("link_id" = Identifier, Path, description = "The link.", example = "l-3"),
        Params,
    ),
    responses(
        (status = 200, description = "The link's numbers.", body = LinkStats),
        (status = 400, description = "A bad identifier, `from` or `to` (the error says \
            why).", body = ErrorBody),
        (status = 404, description = "The client never used this link.", body = ErrorBody),
    ),
)]
pub async fn link(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path((client_id, link_id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Json<LinkStats>, ApiError> {
    authorize_client(&claims, &client_id)?;
    check_identifier("link_id", &link_id)?;
    let range = range_of(&s, &p)?;
    s.campaigns_for(&client_id)?
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
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/campaigns/links",
    tag = "campaigns",
    summary = "Every link with a visit or an attributed conversion",
    params(("client_id" = Identifier, Path, description = "The client.", example = "c-1"), Params),
    responses(
        (status = 200, description = "The links, most visits first.", body = Links),
        (status = 400, description = "A bad identifier, `from` or `to` (the error says \
            why).", body = ErrorBody),
    ),
)]
pub async fn links(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Links>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let links = s.campaigns_for(&client_id)?.links_stats(&client_id, range);
    Ok(Json(Links {
        client_id,
        period: range.period(),
        links,
    }))
}

/// `GET /api/clients/{client_id}/campaigns/{campaign_id}/stats?from=&to=&interval=1d`
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/campaigns/{campaign_id}/stats",
    tag = "campaigns",
    summary = "A campaign per day and over the range",
    params(
        ("client_id" = Identifier, Path, description = "The client.", example = "c-1"),
        ("campaign_id" = Identifier, Path, description = "The campaign.", example = "cmp-9"),
        Params,
        ("interval" = Option<CampaignInterval>, Query, description = "`1d`, the one \
            interval campaign statistics come in."),
    ),
    responses(
        (status = 200, description = "The campaign's numbers.", body = CampaignStats),
        (status = 400, description = "A bad identifier, `from`, `to` or `interval` (the \
            error says why).", body = ErrorBody),
        (status = 404, description = "The client never named this campaign.", body = ErrorBody),
    ),
)]
pub async fn campaign(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path((client_id, campaign_id)): Path<(String, String)>,
    Query(p): Query<Params>,
) -> Result<Json<CampaignStats>, ApiError> {
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
    s.campaigns_for(&client_id)?
        .campaign_stats(&client_id, &campaign_id, range)
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "campaign_id: {campaign_id:?} has no events of client {client_id:?}"
            ))
        })
}

/// `GET /api/clients/{client_id}/pageviews?from=&to=&limit=`
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/pageviews",
    tag = "campaigns",
    summary = "The most viewed paths",
    params(
        ("client_id" = Identifier, Path, description = "The client.", example = "c-1"),
        Params,
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "How many \
            paths (default 20)."),
    ),
    responses(
        (status = 200, description = "The paths.", body = Pageviews),
        (status = 400, description = "A bad identifier, `from`, `to` or `limit` (the error \
            says why).", body = ErrorBody),
    ),
)]
pub async fn pageviews(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Pageviews>, ApiError> {
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
    Ok(Json(
        s.campaigns_for(&client_id)?
            .pageviews(&client_id, range, limit),
    ))
}

/// `GET /api/clients/{client_id}/statistics/overview?from=&to=`
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/statistics/overview",
    tag = "campaigns",
    summary = "The client's overview: campaigns, webinars, links and tracking quality",
    params(("client_id" = Identifier, Path, description = "The client.", example = "c-1"), Params),
    responses(
        (status = 200, description = "The overview.", body = Overview),
        (status = 400, description = "A bad identifier, `from` or `to` (the error says \
            why).", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    ),
)]
pub async fn overview(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<Overview>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let campaigns = s.campaigns_for(&client_id)?;
    let mut body = campaigns.overview(&client_id, range);
    let webinars = campaigns.webinars(&client_id, range);
    if let Some(cluster) = &s.cluster {
        // The webinars' viewers are their partitions' (DESIGN §8).
        body.webinars.live_viewers = cluster
            .live_viewers(&webinars, range)
            .await
            .map_err(ApiError::Unavailable)?;
    }
    let mut peak = 0;
    for w in &webinars {
        peak = peak.max(webinar_peak(&s, w, range).await?);
    }
    body.webinars.peak_concurrent = peak;
    Ok(Json(body))
}

/// `GET /api/clients/{client_id}/webinars?from=&to=`: the webinars named
/// on the client's visits and counted conversions in the range, each with
/// its registrations in the range, its peak (the largest `max_concurrent`
/// of its buckets starting in the range) and its viewers live now.
#[utoipa::path(
    get,
    path = "/api/clients/{client_id}/webinars",
    tag = "campaigns",
    summary = "The client's webinars with registrations, peak and live viewers",
    description = "The webinars named on the client's visits and counted conversions in the \
        range.",
    params(("client_id" = Identifier, Path, description = "The client.", example = "c-1"), Params),
    responses(
        (status = 200, description = "The webinars.", body = ClientWebinars),
        (status = 400, description = "A bad identifier, `from` or `to` (the error says \
            why).", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    ),
)]
pub async fn webinars(
    State(s): State<AppState>,
    Auth(claims): Auth,
    Path(client_id): Path<String>,
    Query(p): Query<Params>,
) -> Result<Json<ClientWebinars>, ApiError> {
    authorize_client(&claims, &client_id)?;
    let range = range_of(&s, &p)?;
    let mut webinars = Vec::new();
    for (webinar_id, registrations) in s
        .campaigns_for(&client_id)?
        .webinar_registrations(&client_id, range)
    {
        webinars.push(ClientWebinar {
            live: s.hub.state(&webinar_id).live,
            peak_concurrent: webinar_peak(&s, &webinar_id, range).await?,
            webinar_id,
            registrations,
        });
    }
    Ok(Json(ClientWebinars {
        client_id,
        period: range.period(),
        webinars,
    }))
}

/// `GET /api/clients/{client_id}/webinars`
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWebinars {
    #[schema(value_type = Identifier)]
    pub client_id: String,
    pub period: Period,
    /// By `webinar_id`.
    pub webinars: Vec<ClientWebinar>,
}

/// One of a client's webinars.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWebinar {
    #[schema(value_type = Identifier)]
    pub webinar_id: String,
    /// Viewers live now.
    pub live: u32,
    /// The largest `max_concurrent` of its buckets starting in the range,
    /// final or open (0 if none).
    pub peak_concurrent: u32,
    /// Counted conversions in the range naming it.
    pub registrations: u64,
}

/// A webinar's peak in the range: the largest `max_concurrent` of its
/// buckets starting in the range, final (store) or open (hub).
async fn webinar_peak(s: &AppState, webinar_id: &str, range: DateRange) -> Result<u32, ApiError> {
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
    let mut peak = 0u32;
    for b in s.store.presence_buckets(webinar_id, start, end).await? {
        peak = peak.max(b.max_concurrent);
    }
    if let Some(open) = s.hub.state(webinar_id).open_bucket
        && (start..end).contains(&open.bucket_start)
    {
        peak = peak.max(open.max_concurrent);
    }
    Ok(peak)
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
