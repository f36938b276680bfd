//! The campaign numbers of the engine (`Engine::campaigns`) against an
//! independent model of DESIGN §2 (campaign clocks), §4 "Exact rules of the
//! campaign numbers" and the query API of `campaign_api.md`.
//!
//! The model ([`model`]) parses the JSON lines itself, keeps the list of
//! applied records and recomputes every answer from it on each query: no
//! counters, no bitmaps, attribution (rule 6) read off the records applied
//! before each counted conversion.
//!
//! Random small logs ([`logs`]): two clients, three campaigns, four session
//! ids (each usable by both clients), three links (one id, `x`, is a
//! campaign, session, link, entry and webinar id at once), UTM values that trim to
//! nothing, repeated entry_ids and event ids, redelivered lines, the eight
//! crawlers and ordinary, KakaoTalk and NAVER in-app browsers, page views
//! with raw (`+`, `%XX`, verbatim spaces) or object queries, with or without
//! session, client and campaign, ticks, out-of-order stamps over four local
//! days of UTC or Asia/Seoul, taken from instants that put touches exactly
//! `window_days` (1 or 2) old and 1 ms older, and on local midnights.
//! Checked:
//!
//! - every line: the effective ts the engine applied a campaign record at
//!   (or that it skipped a repeated id), and the summary and overview of
//!   both clients over everything;
//! - at random cut points and at the end: every query (summary, overview,
//!   pageviews, link_stats and campaign_stats of every link and campaign,
//!   unknown ones too) of both clients (and an unknown one) over everything,
//!   a range without data and random days and ranges; exact JSON equality;
//! - at each cut point (and at the end) the engine is replaced by one
//!   restored from its checkpoint (`Engine::save` / `Engine::restore`),
//!   which goes on with the rest of the log: nothing may change (DESIGN §7).
//!
//! [`cases`] holds hand-worked logs whose answers were worked out by hand
//! from the rules; both the engine and the model must give them.

#[path = "campaign_model/cases.rs"]
mod cases;
#[path = "campaign_model/logs.rs"]
mod logs;
#[path = "campaign_model/model.rs"]
mod model;

use eventflow::engine::campaign::DateRange;
use eventflow::engine::{Engine, EngineConfig};
use model::{Config, Model, Outcome, Range};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestCaseError};
use serde_json::Value;

use cases::Hand;
use logs::{Case, Query, Tz};

fn engine(tz: Tz, window_days: i64) -> Engine {
    Engine::new(EngineConfig {
        timezone: tz.zone(),
        attribution_window_days: window_days as u32,
        ..EngineConfig::default()
    })
    .expect("valid configuration")
}

fn model(tz: Tz, window_days: i64) -> Model {
    Model::new(Config {
        tz: tz.zone(),
        window_days,
    })
}

fn date_range(r: Range) -> DateRange {
    DateRange {
        from: r.from,
        to: r.to,
    }
}

/// The engine's answer to `q`.
fn ask(e: &Engine, q: &Query) -> Option<Value> {
    let view = e.campaigns();
    fn json<T: serde::Serialize>(answer: T) -> Value {
        serde_json::to_value(answer).expect("answers serialize")
    }
    match *q {
        Query::Summary(c, r) => Some(json(view.summary(c, date_range(r)))),
        Query::LinkStats(c, l, r) => view.link_stats(c, l, date_range(r)).map(json),
        Query::CampaignStats(c, k, r) => view.campaign_stats(c, k, date_range(r)).map(json),
        Query::Pageviews(c, r, n) => Some(json(view.pageviews(c, date_range(r), n))),
        Query::Overview(c, r) => Some(json(view.overview(c, date_range(r)))),
    }
}

fn show(v: &Option<Value>) -> String {
    serde_json::to_string(v).expect("serializes")
}

/// Applies one line to both sides and compares how it was applied.
fn apply(e: &mut Engine, m: &mut Model, line: &str) -> Result<(), TestCaseError> {
    let ev = eventflow::event::decode(line.as_bytes())
        .map_err(|err| TestCaseError::fail(format!("the engine refused {line}: {err}")))?;
    let applied = e
        .apply(&ev, None)
        .map_err(|err| TestCaseError::fail(format!("{line}: {err}")))?;
    match m.apply(line) {
        Outcome::Applied(ts) => prop_assert!(
            !applied.duplicate && applied.ts == ts,
            "{line}: engine applied at {} (duplicate: {}), model at {ts}",
            applied.ts,
            applied.duplicate
        ),
        Outcome::Skipped => prop_assert!(
            applied.duplicate,
            "{line}: its id was applied before; the engine applied it at {}",
            applied.ts
        ),
        Outcome::Tick => {}
    }
    Ok(())
}

fn compare(e: &Engine, m: &Model, queries: &[Query], at: &str) -> Result<(), TestCaseError> {
    for q in queries {
        let (got, want) = (ask(e, q), q.model(m));
        prop_assert!(
            got == want,
            "{at}: {q:?}\n engine {}\n model  {}",
            show(&got),
            show(&want)
        );
    }
    Ok(())
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let mut e = engine(case.tz, case.window_days);
    let mut m = model(case.tz, case.window_days);
    let all = [logs::everything()];
    let light: Vec<Query> = logs::queries(&all)
        .into_iter()
        .filter(|q| matches!(q, Query::Summary(c, _) | Query::Overview(c, _) if *c != "c9"))
        .collect();
    let full = logs::queries(&logs::ranges(case));
    for (i, line) in case.lines.iter().enumerate() {
        apply(&mut e, &mut m, line)?;
        let at = format!("after line {i}");
        compare(&e, &m, &light, &at)?;
        if case.cuts.contains(&i) {
            compare(&e, &m, &full, &at)?;
            // Go on from a checkpoint (DESIGN §7: a restart reproduces the
            // same numbers).
            e = restored(&e)?;
            compare(&e, &m, &light, &format!("{at}, restored from a checkpoint"))?;
        }
    }
    compare(&e, &m, &full, "at the end")?;
    compare(
        &restored(&e)?,
        &m,
        &light,
        "at the end, restored from a checkpoint",
    )
}

/// An engine resumed from a checkpoint of `e`.
fn restored(e: &Engine) -> Result<Engine, TestCaseError> {
    Engine::restore(e.config().clone(), &e.save())
        .map_err(|err| TestCaseError::fail(format!("restore: {err}")))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_the_campaign_model(case in logs::arb_case()) {
        check(&case)?;
    }
}

// ---------------------------------------------------------------------------
// Hand-worked cases: the engine and the model against numbers worked out by
// hand.
// ---------------------------------------------------------------------------

fn hand(h: Hand) {
    let mut e = engine(h.tz, h.window_days);
    let mut m = model(h.tz, h.window_days);
    for line in &h.lines {
        apply(&mut e, &mut m, line).unwrap_or_else(|err| panic!("{}: {err}", h.name));
    }
    let mut failures = Vec::new();
    for (q, want) in &h.expect {
        for (side, got) in [("engine", ask(&e, q)), ("model", q.model(&m))] {
            if &got != want {
                failures.push(format!(
                    "{} ({side}): {q:?}\n got  {}\n want {}",
                    h.name,
                    show(&got),
                    show(want)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seoul_days_turn_at_15_utc() {
    hand(cases::seoul_midnight());
}

#[test]
fn the_seoul_log_read_in_utc() {
    hand(cases::seoul_log_in_utc());
}

#[test]
fn a_touch_exactly_window_days_old_counts_and_1_ms_older_does_not() {
    hand(cases::window_edge());
}

#[test]
fn a_visit_ahead_of_the_conversion_has_a_negative_age_and_counts() {
    hand(cases::negative_age());
}

#[test]
fn touches_with_equal_effective_ts_first_applied_wins() {
    hand(cases::ties());
}

#[test]
fn repeated_entry_ids_and_event_ids() {
    hand(cases::repeats());
}

#[test]
fn bots_are_apart_and_in_app_browsers_are_people() {
    hand(cases::bots_and_in_app_browsers());
}

#[test]
fn a_session_id_shared_by_two_clients_is_two_sessions() {
    hand(cases::shared_session());
}

#[test]
fn visit_coverage_counts_a_page_view_before_its_visit() {
    hand(cases::coverage());
}

#[test]
fn a_failed_visits_page_view_carries_the_utm() {
    hand(cases::pageview_touch());
}

#[test]
fn the_link_fallback() {
    hand(cases::link_fallback());
}

#[test]
fn a_campaign_first_seen_after_a_tick_and_webinars() {
    hand(cases::tick_and_webinars());
}

#[test]
fn percentages_round_the_exact_value() {
    hand(cases::rounding());
}

#[test]
fn model_helpers() {
    assert_eq!(model::url_decode("a+b%20c%2"), "a b c%2");
    assert_eq!(model::url_decode("%EC%B9%B4%zz"), "카%zz");
    assert!(model::is_bot(Some("x googleBOT y")));
    assert!(!model::is_bot(Some(logs::PEOPLE[1])));
    assert!(!model::is_bot(None));
    assert_eq!(model::pct(2, 3), serde_json::json!(66.7));
    assert_eq!(model::pct(1, 16), serde_json::json!(6.3));
    assert_eq!(model::pct(23, 80), serde_json::json!(28.8));
    assert_eq!(model::pct(1, 3), serde_json::json!(33.3));
    assert_eq!(model::pct(0, 0), Value::Null);
    for tz in [Tz::Utc, Tz::Seoul] {
        let m = logs::midnight(tz, 0);
        assert_eq!(model::local_date(&tz.zone(), m), logs::day(0));
        assert_eq!(model::local_date(&tz.zone(), m - 1), logs::day(-1));
    }
    assert_eq!(logs::midnight(Tz::Seoul, 0), cases::SEOUL_M);
    assert_eq!(logs::midnight(Tz::Utc, 0), cases::UTC_M);
}
