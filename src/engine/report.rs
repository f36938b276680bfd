//! The shapes of the campaign answers (DESIGN §6) that
//! [`super::campaign::CampaignView`] computes and the read APIs send:
//! typed, so that the API description (`/openapi.json`) is derived from
//! the very types that are serialized.
//!
//! Rates are percentages with one decimal, `null` when their denominator
//! is 0; dates are local dates (`stats.timezone`), inclusive.

use serde::Serialize;
use utoipa::ToSchema;

use crate::event::Identifier;

/// An inclusive range of local dates, as an answer names it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Period {
    #[schema(format = Date, examples("2026-01-01"))]
    pub from: String,
    #[schema(format = Date, examples("2026-01-31"))]
    pub to: String,
}

/// `GET /api/clients/{client_id}/campaigns/summary`: conversions in total,
/// by source, medium, campaign and their combination (after attribution;
/// an unattributed conversion counts under `(none)`), most first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    pub total_conversions: u64,
    pub by_source: Vec<BySource>,
    pub by_medium: Vec<ByMedium>,
    pub by_campaign: Vec<ByCampaign>,
    pub by_combination: Vec<ByCombination>,
    pub attribution: Attribution,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BySource {
    pub source: String,
    pub conversions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ByMedium {
    pub medium: String,
    pub conversions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ByCampaign {
    pub campaign: String,
    pub conversions: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ByCombination {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub conversions: u64,
}

/// Conversions by how their UTM was found: their own, their session's
/// first touch, their link's, or none.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Attribution {
    pub own: u64,
    pub session: u64,
    pub link: u64,
    pub none: u64,
}

/// A link's visits (distinct sessions), conversions attributed to it and
/// their rate.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LinkStats {
    #[schema(value_type = Identifier)]
    pub link_id: String,
    pub visits: u64,
    pub conversions: u64,
    /// Conversions per visit, in percent (one decimal); `null` without
    /// visits.
    #[schema(required = true)]
    pub cvr: Option<f64>,
}

/// `GET /api/clients/{client_id}/campaigns/links`
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Links {
    #[schema(value_type = Identifier)]
    pub client_id: String,
    pub period: Period,
    /// Every link with a link visit or an attributed conversion in the
    /// range, most visits first.
    pub links: Vec<LinkStats>,
}

/// `GET /api/clients/{client_id}/campaigns/{campaign_id}/stats`: one
/// campaign per day and over the range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CampaignStats {
    #[schema(value_type = Identifier)]
    pub client_id: String,
    #[schema(value_type = Identifier)]
    pub campaign_id: String,
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Always `1d`.
    #[schema(examples("1d"))]
    pub interval: String,
    /// The days with any visit, conversion, bot visit or page view.
    pub days: Vec<CampaignDay>,
    pub total: CampaignNumbers,
}

/// A campaign's numbers on one day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CampaignDay {
    #[schema(format = Date)]
    pub date: String,
    #[serde(flatten)]
    pub numbers: CampaignNumbers,
}

/// A campaign's visits (distinct sessions), conversions, their rate, bot
/// visits (not counted as visits) and page views.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CampaignNumbers {
    pub visits: u64,
    pub conversions: u64,
    /// Conversions per visit, in percent; `null` without visits.
    #[schema(required = true)]
    pub cvr: Option<f64>,
    pub bot_visits: u64,
    pub pageviews: u64,
}

/// `GET /api/clients/{client_id}/pageviews`: the most viewed paths.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Pageviews {
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Page views of every path in the range.
    pub total: u64,
    /// Most viewed first, at most `limit`.
    pub paths: Vec<PathViews>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PathViews {
    pub path: String,
    pub pageviews: u64,
}

/// `GET /api/clients/{client_id}/statistics/overview` (DESIGN §6, rules
/// 8 and 9 of §4).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Overview {
    pub period: Period,
    pub campaigns: OverviewCampaigns,
    pub webinars: OverviewWebinars,
    pub links: OverviewLinks,
    pub quality: Quality,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OverviewCampaigns {
    /// Campaigns with a non-bot visit or a counted conversion in the range.
    pub total: u64,
    /// Distinct sessions of non-bot visits.
    pub visits: u64,
    pub conversions: u64,
    #[schema(required = true)]
    pub cvr: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OverviewWebinars {
    /// Webinars named on the client's visits and counted conversions.
    pub total: u64,
    /// Counted conversions naming a webinar.
    pub registrations: u64,
    /// Distinct viewers of those webinars together, live in the range.
    pub live_viewers: u64,
    /// The largest `max_concurrent` of their buckets starting in the
    /// range (0 if none).
    pub peak_concurrent: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OverviewLinks {
    /// Links with a link visit or an attributed conversion.
    pub total: u64,
    /// Links with a link visit.
    pub active: u64,
    /// Distinct sessions with a link visit.
    pub total_visits: u64,
    /// Counted conversions with a link.
    pub total_conversions: u64,
}

/// How well the client's traffic is tracked, in percent (rule 9).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Quality {
    /// (own + session + link) ÷ conversions.
    #[schema(required = true)]
    pub utm_tracking_rate: Option<f64>,
    /// own ÷ conversions.
    #[schema(required = true)]
    pub utm_tracking_rate_before_attribution: Option<f64>,
    /// Conversions whose session had an earlier non-bot visit of the
    /// client within the window ÷ conversions.
    #[schema(required = true)]
    pub visit_link_rate: Option<f64>,
    /// Page views whose session visited their campaign on the same local
    /// day ÷ page views naming the client and a campaign.
    #[schema(required = true)]
    pub visit_coverage: Option<f64>,
}
