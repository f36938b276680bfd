//! Campaigns: visits, conversions and page views (DESIGN §4, §6).
//!
//! 1. **One core.** A realistic mix of campaign events — 70 % visits, 20 %
//!    page views (70 % of them with `utm_*` query strings), 5 % conversions
//!    (a tenth with their own UTM), 5 % crawler visits; 4 clients, 20
//!    campaigns, 1 000 links, sessions revisiting, a tick per simulated
//!    second — decoded from JSON lines and applied, and applied pre-decoded
//!    (records/s, best of 3; the first fifth of the records warm the engine
//!    up untimed).
//! 2. **HTTP.** The same mix, without `ts` (ingest stamps it) and without
//!    ticks, as NDJSON batches of 10 000 through `POST /api/events` into an
//!    in-process service with its default durability (local log, `fdatasync`
//!    per group commit), 4 connections, as `benches/ingest.rs` does for
//!    presence: accepted/s, and applied/s until the engine has applied
//!    everything accepted. Then the campaign reads over HTTP on that state.
//! 3. **A year of one client**: about 10 M visits from 3 M sessions (revisits
//!    minutes to 60 days apart, 1 % crawlers), 500 k conversions (2 %
//!    repeated), 1 000 links, 20 campaigns over 365 days, scaled by
//!    `EVENTFLOW_BENCH_SCALE` (or `EVENTFLOW_BENCH_YEAR_SCALE` for this part
//!    alone). The engine is built by applying the events in time order with
//!    a tick every simulated hour, taking its campaign rows every simulated
//!    day (as the service flushes them). Then `summary` and `overview` are
//!    timed warm over random ranges (a day, a week, 30 days, the whole year;
//!    200 of each); then cold: `save()`, drop, `Engine::restore`, the first
//!    queries and the p99 after. The year's rows go into SQLite and into a
//!    fresh Postgres database through `Store::write`, one batch per day.
//!    Reads are served from the engine's memory whichever store holds rows.
//! 4. **The review's design**: the same raw visit and conversion rows loaded
//!    (COPY) into Postgres tables indexed on `(client_id, ts)`, and the same
//!    questions answered by SQL at query time over the same ranges. It has
//!    no attribution: the summary groups conversions by their own UTM. The
//!    numbers both can answer exactly (visits, sessions through a link,
//!    active links, conversions) must agree, or the benchmark fails.
//! 5. **Memory**, by a counting global allocator: the engine after the year
//!    (what dropping it frees), and bytes per session inside the
//!    attribution window (the growth when N more sessions, each one visit
//!    with a UTM and a link, are added after the year, ÷ N).
//!
//! `SUMMARY` lines give the figures `scripts/bench` collects. Postgres on
//! `EVENTFLOW_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the databases created are
//! dropped at the end. `EVENTFLOW_BENCH_RECORDS` (default 2 000 000) sets
//! part 1's records, `EVENTFLOW_BENCH_SECS` (default 10) the HTTP phase and
//! each SQL range kind's time budget (× 1.5).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use common::http::Conn;
use common::{JsonLines, Rng};
use eventflow::app::Application;
use eventflow::config::Settings;
use eventflow::engine::campaign::{DateRange, is_bot};
use eventflow::engine::{Engine, EngineConfig};
use eventflow::event::{Event, decode};
use eventflow::metrics::{Metrics, RecordLabels};
use eventflow::sink::store::{Batch, Store};
use figment::providers::Serialized;
use jiff::civil::Date;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool, Row};

// ---------------------------------------------------------------------------
// Live bytes, by a counting global allocator (one counter, so it costs one
// atomic add per allocation in every part of this benchmark).

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Small helpers.

fn summary(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("SUMMARY {name} {value} {unit}");
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn f64_of(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

const MIB: f64 = 1024.0 * 1024.0;

/// Quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latencies in milliseconds.
#[derive(Default, Clone)]
struct Lat(Vec<f64>);

impl Lat {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn p(&self, q: f64) -> f64 {
        quantile(&self.sorted(), q)
    }
    fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Milliseconds with enough digits for sub-millisecond reads.
fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// Skewed choice of `0..n`: rank `r` with weight `1 / (r + 2)`.
struct Skew(Vec<f64>);

impl Skew {
    fn new(n: usize) -> Skew {
        let mut acc = 0.0;
        let mut cum: Vec<f64> = (0..n)
            .map(|r| {
                acc += 1.0 / (r as f64 + 2.0);
                acc
            })
            .collect();
        for c in &mut cum {
            *c /= acc;
        }
        Skew(cum)
    }

    fn pick(&self, rng: &mut Rng) -> u32 {
        let x = f64_of(rng);
        (self.0.partition_point(|&c| c < x) as u32).min(self.0.len() as u32 - 1)
    }
}

// ---------------------------------------------------------------------------
// Wire format (DESIGN §5).

const SOURCES: [&str; 8] = [
    "newsletter",
    "google",
    "facebook",
    "instagram",
    "kakao",
    "naver",
    "youtube",
    "partner",
];
const MEDIUMS: [&str; 5] = ["email", "cpc", "social", "display", "referral"];
const UTM_CAMPAIGNS: [&str; 20] = [
    "spring-sale",
    "summer-webinar",
    "autumn-launch",
    "winter-promo",
    "ai-summit",
    "hr-forum",
    "dev-days",
    "cloud-week",
    "security-live",
    "data-camp",
    "retail-talk",
    "fintech-day",
    "edu-open",
    "health-expo",
    "startup-pitch",
    "marketing-101",
    "sales-kickoff",
    "partner-meetup",
    "customer-story",
    "year-end",
];
/// UTM combinations: `source * 100 + medium * 20 + campaign`.
const UTM_COMBOS: u16 = 800;

fn utm_of(combo: u16) -> (&'static str, &'static str, &'static str) {
    let c = usize::from(combo);
    (
        SOURCES[c / 100],
        MEDIUMS[(c / 20) % 5],
        UTM_CAMPAIGNS[c % 20],
    )
}

const BROWSERS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918N Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36;KAKAOTALK 2410800",
    "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 NAVER(inapp; search; 2000; 12.6.2)",
];
const CRAWLERS: [&str; 3] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
];

/// `"session_id":"s-12"` with a prefix (`s` people, `b` crawlers, `x`
/// the memory probe).
#[derive(Clone, Copy)]
struct Sid(char, u32);

struct VisitJson {
    client: u32,
    campaign: u32,
    session: Sid,
    link: Option<u32>,
    utm: Option<u16>,
    ua: &'static str,
    ts: Option<i64>,
}

fn ts_json(out: &mut Vec<u8>, ts: Option<i64>) {
    if let Some(ts) = ts {
        write!(out, r#","ts":{ts}"#).unwrap();
    }
}

fn utm_json(out: &mut Vec<u8>, utm: Option<u16>) {
    if let Some(u) = utm {
        let (s, m, c) = utm_of(u);
        write!(
            out,
            r#","utm":{{"source":"{s}","medium":"{m}","campaign":"{c}"}}"#
        )
        .unwrap();
    }
}

fn visit_json(out: &mut Vec<u8>, v: &VisitJson) {
    let Sid(p, s) = v.session;
    write!(
        out,
        r#"{{"type":"visit","client_id":"c-{}","campaign_id":"cmp-{}","session_id":"{p}-{s}""#,
        v.client + 1,
        v.campaign + 1
    )
    .unwrap();
    if let Some(l) = v.link {
        write!(out, r#","link_id":"l-{}""#, l + 1).unwrap();
    }
    utm_json(out, v.utm);
    write!(
        out,
        r#","path":"/event/{}","user_agent":"{}","ip":"203.0.113.{}""#,
        149_400 + v.campaign,
        v.ua,
        s % 250
    )
    .unwrap();
    ts_json(out, v.ts);
    out.push(b'}');
}

struct ConversionJson {
    client: u32,
    campaign: u32,
    entry: u32,
    session: Option<Sid>,
    link: Option<u32>,
    utm: Option<u16>,
    webinar: Option<u32>,
    ts: Option<i64>,
}

fn conversion_json(out: &mut Vec<u8>, c: &ConversionJson) {
    write!(
        out,
        r#"{{"type":"conversion","client_id":"c-{}","campaign_id":"cmp-{}","entry_id":"e-{}""#,
        c.client + 1,
        c.campaign + 1,
        c.entry
    )
    .unwrap();
    if let Some(Sid(p, s)) = c.session {
        write!(out, r#","session_id":"{p}-{s}""#).unwrap();
    }
    if let Some(l) = c.link {
        write!(out, r#","link_id":"l-{}""#, l + 1).unwrap();
    }
    utm_json(out, c.utm);
    if let Some(w) = c.webinar {
        write!(out, r#","webinar_id":"w-{}""#, w + 1).unwrap();
    }
    ts_json(out, c.ts);
    out.push(b'}');
}

fn pageview_json(
    out: &mut Vec<u8>,
    client: u32,
    campaign: u32,
    session: Sid,
    utm: Option<u16>,
    ts: Option<i64>,
) {
    let Sid(p, s) = session;
    let query = match utm {
        Some(u) => {
            let (s, m, c) = utm_of(u);
            format!("utm_source={s}&utm_medium={m}&utm_campaign={c}")
        }
        None => "page=2".to_owned(),
    };
    write!(
        out,
        r#"{{"type":"pageview","path":"/event/{}","method":"GET","query":"{query}","session_id":"{p}-{s}","client_id":"c-{}","campaign_id":"cmp-{}","user_agent":"{}","ip":"203.0.113.{}","status":200"#,
        149_400 + campaign,
        client + 1,
        campaign + 1,
        BROWSERS[(s % 4) as usize],
        s % 250
    )
    .unwrap();
    ts_json(out, ts);
    out.push(b'}');
}

fn tick_json(out: &mut Vec<u8>, ts: i64) {
    write!(out, r#"{{"type":"tick","ts":{ts}}}"#).unwrap();
}

// ---------------------------------------------------------------------------
// Part 1 and 2: the mix.

const MIX_CLIENTS: u32 = 4;
const MIX_CAMPAIGNS_PER_CLIENT: u32 = 5;
const MIX_LINKS_PER_CLIENT: u32 = 250;

/// `n` records of the mix as JSON lines; with `timed`, each carries `ts`
/// and a tick is interleaved per simulated second (about 1 000 records).
fn mix(n: usize, timed: bool, seed: u64) -> JsonLines {
    #[derive(Clone, Copy)]
    struct Sess {
        id: u32,
        client: u32,
        campaign: u32,
        link: Option<u32>,
    }
    const RING: usize = 1 << 16;
    let mut rng = Rng::new(seed);
    let campaign_skew = Skew::new(MIX_CAMPAIGNS_PER_CLIENT as usize);
    let link_skew = Skew::new(MIX_LINKS_PER_CLIENT as usize);
    let mut ring: Vec<Sess> = Vec::with_capacity(RING);
    let mut next_session = 0u32;
    let mut t = common::T0;
    let mut next_tick = t + 1_000;
    let mut bytes = Vec::with_capacity(n * 330);
    let mut lines = Vec::with_capacity(n + n / 500);
    let mut entry = 0u32;
    let mut push = |bytes: &mut Vec<u8>, start: usize| {
        lines.push((start, bytes.len()));
        bytes.push(b'\n');
    };
    for _ in 0..n {
        t += i64::from(rng.range(0, 3));
        let ts = timed.then_some(t);
        if timed && t >= next_tick {
            let start = bytes.len();
            tick_json(&mut bytes, next_tick);
            push(&mut bytes, start);
            next_tick += 1_000;
        }
        let start = bytes.len();
        let r = f64_of(&mut rng);
        let known = |rng: &mut Rng, ring: &[Sess]| ring[rng.range(0, ring.len() as u32) as usize];
        if r < 0.70 {
            let (s, link, utm) = if ring.is_empty() || rng.chance(0.35) {
                let client = rng.range(0, MIX_CLIENTS);
                let s = Sess {
                    id: next_session,
                    client,
                    campaign: client * MIX_CAMPAIGNS_PER_CLIENT + campaign_skew.pick(&mut rng),
                    link: rng
                        .chance(0.6)
                        .then(|| client * MIX_LINKS_PER_CLIENT + link_skew.pick(&mut rng)),
                };
                next_session += 1;
                if ring.len() < RING {
                    ring.push(s);
                } else {
                    ring[s.id as usize % RING] = s;
                }
                let utm = rng.chance(0.55).then(|| rng.range(0, 800) as u16);
                (s, s.link, utm)
            } else {
                let s = known(&mut rng, &ring);
                let link = if rng.chance(0.3) { s.link } else { None };
                let utm = rng.chance(0.15).then(|| rng.range(0, 800) as u16);
                (s, link, utm)
            };
            visit_json(
                &mut bytes,
                &VisitJson {
                    client: s.client,
                    campaign: s.campaign,
                    session: Sid('s', s.id),
                    link,
                    utm,
                    ua: BROWSERS[(s.id % 4) as usize],
                    ts,
                },
            );
        } else if r < 0.90 && !ring.is_empty() {
            let s = known(&mut rng, &ring);
            let utm = rng.chance(0.7).then(|| rng.range(0, 800) as u16);
            pageview_json(&mut bytes, s.client, s.campaign, Sid('s', s.id), utm, ts);
        } else if r < 0.95 && !ring.is_empty() {
            let s = known(&mut rng, &ring);
            entry += 1;
            conversion_json(
                &mut bytes,
                &ConversionJson {
                    client: s.client,
                    campaign: s.campaign,
                    entry,
                    session: (!rng.chance(0.05)).then_some(Sid('s', s.id)),
                    link: None,
                    utm: rng.chance(0.1).then(|| rng.range(0, 800) as u16),
                    webinar: rng.chance(0.4).then(|| rng.range(0, 30)),
                    ts,
                },
            );
        } else {
            let client = rng.range(0, MIX_CLIENTS);
            visit_json(
                &mut bytes,
                &VisitJson {
                    client,
                    campaign: client * MIX_CAMPAIGNS_PER_CLIENT
                        + rng.range(0, MIX_CAMPAIGNS_PER_CLIENT),
                    session: Sid('b', rng.range(0, 5_000)),
                    link: rng
                        .chance(0.3)
                        .then(|| client * MIX_LINKS_PER_CLIENT + link_skew.pick(&mut rng)),
                    utm: None,
                    ua: CRAWLERS[rng.range(0, 3) as usize],
                    ts,
                },
            );
        }
        push(&mut bytes, start);
    }
    JsonLines { bytes, lines }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        attribution_window_days: 30,
        ..Default::default()
    }
}

/// Part 1: records/s decoded + applied, and applied pre-decoded.
fn one_core(n: usize, rounds: usize) -> anyhow::Result<(f64, f64)> {
    let lines = mix(n, true, 0xCA4A_1A55_0001);
    let warm = lines.len() / 5;
    let all: Vec<&[u8]> = lines.iter().collect();
    let (warm_lines, measured) = all.split_at(warm);
    let decoded: Vec<Event<'_>> = measured
        .iter()
        .map(|l| decode(l))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("the mix does not decode: {e}"))?;
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..rounds {
        for pre in [false, true] {
            let mut engine = Engine::new(engine_config())?;
            for l in warm_lines {
                let ev = decode(l).map_err(|e| anyhow::anyhow!("{e}"))?;
                engine
                    .apply(&ev, None)
                    .map_err(|_| anyhow::anyhow!("no ts"))?;
            }
            let started = Instant::now();
            if pre {
                for ev in &decoded {
                    engine
                        .apply(ev, None)
                        .map_err(|_| anyhow::anyhow!("no ts"))?;
                }
            } else {
                for l in measured {
                    let ev = decode(l).map_err(|e| anyhow::anyhow!("{e}"))?;
                    engine
                        .apply(&ev, None)
                        .map_err(|_| anyhow::anyhow!("no ts"))?;
                }
            }
            let rate = measured.len() as f64 / started.elapsed().as_secs_f64();
            std::hint::black_box(engine.take_campaign_rows());
            if pre {
                best.1 = best.1.max(rate);
            } else {
                best.0 = best.0.max(rate);
            }
        }
    }
    Ok(best)
}

// ---------------------------------------------------------------------------
// Part 2: HTTP (common::http's keep-alive client).

fn settings(dir: &std::path::Path) -> Settings {
    let over = json!({
        "http": {"addr": "127.0.0.1:0", "rate_limit_per_sec": 0},
        "data": {"dir": dir},
        "auth": {"secret": "bench-signing-key-0f3e5d7c9b1a2f4e6d8c0b2a"},
    });
    Settings::from_figment(Settings::figment(None).merge(Serialized::defaults(over))).unwrap()
}

/// Campaign records the engine has applied.
fn applied(metrics: &Metrics) -> u64 {
    ["visit", "conversion", "pageview"]
        .iter()
        .map(|t| {
            metrics
                .records
                .get_or_create(&RecordLabels {
                    r#type: (*t).into(),
                    outcome: "applied".into(),
                })
                .get()
        })
        .sum()
}

struct HttpFigures {
    accepted: f64,
    applied: f64,
    summary: Lat,
    overview: Lat,
}

async fn http_part(secs: f64, pool_batches: usize) -> anyhow::Result<HttpFigures> {
    const BATCH: usize = 10_000;
    let lines = mix(pool_batches * BATCH, false, 0xCA4A_1A55_0002);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        lines
            .lines
            .chunks(BATCH)
            .map(|c| lines.bytes[c[0].0..c[c.len() - 1].1 + 1].to_vec())
            .collect(),
    );
    drop(lines);
    let dir = tempfile::tempdir()?;
    let app = Application::build(settings(dir.path())).await?;
    let addr = app.local_addr();
    let token = app.admin_token();
    let metrics = app.state().metrics.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..4usize {
        let (done, stop, token, bodies) =
            (done.clone(), stop.clone(), token.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let body = &bodies[i % bodies.len()];
                assert_eq!(
                    conn.request("POST", "/api/events", Some(&token), body)
                        .await,
                    202
                );
                done.fetch_add(BATCH as u64, Ordering::Relaxed);
                i += 4;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    let accepted = done.load(Ordering::Relaxed);
    // End to end: until the engine has applied every accepted event.
    let deadline = Instant::now() + Duration::from_secs(600);
    while applied(&metrics) < accepted {
        ensure!(
            Instant::now() < deadline,
            "the engine applied {} of {accepted} accepted campaign events",
            applied(&metrics)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let applied_rate = accepted as f64 / started.elapsed().as_secs_f64();

    // Reads over HTTP on that state (the last 30 days, the default range).
    let mut conn = Conn::open(addr).await;
    let (mut summary, mut overview) = (Lat::default(), Lat::default());
    for i in 0..220 {
        for (path, lat) in [
            ("/api/clients/c-1/campaigns/summary", &mut summary),
            ("/api/clients/c-1/statistics/overview", &mut overview),
        ] {
            let t = Instant::now();
            assert_eq!(conn.request("GET", path, Some(&token), b"").await, 200);
            if i >= 20 {
                lat.push(t.elapsed());
            }
        }
    }
    let body: Value = serde_json::from_slice(conn.body())?;
    println!(
        "  overview of c-1 after the HTTP phase: {} visits, {} conversions",
        body["campaigns"]["visits"], body["campaigns"]["conversions"]
    );
    let _ = stop_tx.send(());
    server.await??;
    Ok(HttpFigures {
        accepted: accepted as f64 / elapsed,
        applied: applied_rate,
        summary,
        overview,
    })
}

// ---------------------------------------------------------------------------
// Part 3: a year of one client.

/// 2025-01-01T00:00:00Z.
const YEAR_START: i64 = 1_735_689_600_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const DAYS: i64 = 365;
const YEAR_END: i64 = YEAR_START + DAYS * DAY_MS;
const YEAR_CAMPAIGNS: u32 = 20;
const YEAR_LINKS: u32 = 1_000;
const WEBINARS: u32 = 30;
const NO_LINK: u16 = u16::MAX;
const NO_UTM: u16 = u16::MAX;
const NO_SESSION: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum YKind {
    Visit,
    Crawler,
    Conversion,
}

/// One event of the year, compactly.
#[derive(Clone, Copy)]
struct YEv {
    ts: i64,
    session: u32,
    /// Entry number of a conversion.
    entry: u32,
    link: u16,
    utm: u16,
    campaign: u8,
    kind: YKind,
    /// Conversion: names a webinar.
    webinar: bool,
}

struct YearSpec {
    scale: f64,
    sessions: u32,
    conversions: u32,
}

struct Year {
    events: Vec<YEv>,
    visits: usize,
    crawler_visits: usize,
    conversions: usize,
    repeats: usize,
}

fn generate_year(spec: &YearSpec) -> Year {
    let mut rng = Rng::new(0xCA4A_1A55_0003);
    let campaign_skew = Skew::new(YEAR_CAMPAIGNS as usize);
    let per_campaign = YEAR_LINKS / YEAR_CAMPAIGNS;
    let link_skew = Skew::new(per_campaign as usize);
    let sessions = spec.sessions;
    let mut events: Vec<YEv> = Vec::with_capacity(sessions as usize * 4);
    let p_convert = f64::from(spec.conversions) * 0.95 / f64::from(sessions);
    let mut entry = 0u32;
    let mut times: Vec<i64> = Vec::with_capacity(64);
    let mut conversion = |rng: &mut Rng, events: &mut Vec<YEv>, ts, session, campaign: u8| {
        entry += 1;
        let ev = YEv {
            ts,
            session,
            entry,
            link: if rng.chance(0.05) {
                rng.range(0, YEAR_LINKS) as u16
            } else {
                NO_LINK
            },
            utm: if rng.chance(0.1) {
                rng.range(0, u32::from(UTM_COMBOS)) as u16
            } else {
                NO_UTM
            },
            campaign,
            kind: YKind::Conversion,
            webinar: rng.chance(0.4),
        };
        events.push(ev);
        if rng.chance(0.02) {
            // A repeat of the same entry within ten minutes, the same day.
            let day_end = YEAR_START + (ts - YEAR_START) / DAY_MS * DAY_MS + DAY_MS - 1;
            events.push(YEv {
                ts: (ts + i64::from(rng.range(1_000, 600_000))).min(day_end),
                ..ev
            });
        }
    };
    for s in 0..sessions {
        let day = i64::from(rng.range(0, DAYS as u32));
        // Busier in the day than at night: a second draw biases toward 9-22 h.
        let hour = if rng.chance(0.8) {
            rng.range(9, 23)
        } else {
            rng.range(0, 24)
        };
        let mut t = YEAR_START
            + day * DAY_MS
            + i64::from(hour) * HOUR_MS
            + i64::from(rng.range(0, 3_600_000));
        let campaign = campaign_skew.pick(&mut rng);
        let link_of = |rng: &mut Rng, c: u32| c + YEAR_CAMPAIGNS * link_skew.pick(rng);
        let first_link = rng.chance(0.6).then(|| link_of(&mut rng, campaign));
        let first_utm = rng
            .chance(0.55)
            .then(|| rng.range(0, u32::from(UTM_COMBOS)) as u16);
        times.clear();
        let mut v = 0;
        loop {
            let (link, utm) = if v == 0 {
                (first_link, first_utm)
            } else {
                let link = if rng.chance(0.3) {
                    first_link.or_else(|| Some(link_of(&mut rng, campaign)))
                } else {
                    None
                };
                (
                    link,
                    rng.chance(0.15)
                        .then(|| rng.range(0, u32::from(UTM_COMBOS)) as u16),
                )
            };
            let c = match link {
                Some(l) => l % YEAR_CAMPAIGNS,
                None if rng.chance(0.8) => campaign,
                None => rng.range(0, YEAR_CAMPAIGNS),
            };
            events.push(YEv {
                ts: t,
                session: s,
                entry: 0,
                link: link.map_or(NO_LINK, |l| l as u16),
                utm: utm.unwrap_or(NO_UTM),
                campaign: c as u8,
                kind: YKind::Visit,
                webinar: false,
            });
            times.push(t);
            v += 1;
            // 1 + geometric(0.29) visits: 3.4 on average before the year's end.
            if v >= 40 || rng.chance(0.29) {
                break;
            }
            let x = f64_of(&mut rng);
            t += if x < 0.55 {
                i64::from(rng.range(60_000, 7_200_000))
            } else if x < 0.85 {
                i64::from(rng.range(1, 15)) * DAY_MS + i64::from(rng.range(0, 7_200_000))
            } else {
                i64::from(rng.range(15, 61)) * DAY_MS + i64::from(rng.range(0, 7_200_000))
            };
            if t >= YEAR_END {
                break;
            }
        }
        if rng.chance(p_convert) {
            let after = times[rng.range(0, times.len() as u32) as usize];
            let ts = after + i64::from(rng.range(30_000, 1_800_000));
            if ts < YEAR_END {
                conversion(&mut rng, &mut events, ts, s, campaign as u8);
            }
        }
    }
    // Conversions without a session.
    for _ in 0..(f64::from(spec.conversions) * 0.05) as u32 {
        let ts = YEAR_START + (f64_of(&mut rng) * (YEAR_END - YEAR_START) as f64) as i64;
        let c = campaign_skew.pick(&mut rng) as u8;
        conversion(&mut rng, &mut events, ts, NO_SESSION, c);
    }
    // Crawlers: 1 % of the visits, from 5 000 crawler sessions.
    let people = events.iter().filter(|e| e.kind == YKind::Visit).count();
    for _ in 0..people / 99 {
        let ts = YEAR_START + (f64_of(&mut rng) * (YEAR_END - YEAR_START) as f64) as i64;
        events.push(YEv {
            ts,
            session: rng.range(0, 5_000),
            entry: 0,
            link: if rng.chance(0.3) {
                rng.range(0, YEAR_LINKS) as u16
            } else {
                NO_LINK
            },
            utm: NO_UTM,
            campaign: rng.range(0, YEAR_CAMPAIGNS) as u8,
            kind: YKind::Crawler,
            webinar: false,
        });
    }
    events.sort_by_key(|e| e.ts);
    let count = |k| events.iter().filter(|e| e.kind == k).count();
    let (visits, crawler_visits, conversion_records) = (
        count(YKind::Visit),
        count(YKind::Crawler),
        count(YKind::Conversion),
    );
    Year {
        visits,
        crawler_visits,
        conversions: entry as usize,
        repeats: conversion_records - entry as usize,
        events,
    }
}

fn year_json(out: &mut Vec<u8>, e: &YEv) {
    let link = (e.link != NO_LINK).then_some(u32::from(e.link));
    let utm = (e.utm != NO_UTM).then_some(e.utm);
    match e.kind {
        YKind::Visit | YKind::Crawler => {
            let crawler = e.kind == YKind::Crawler;
            visit_json(
                out,
                &VisitJson {
                    client: 0,
                    campaign: u32::from(e.campaign),
                    session: Sid(if crawler { 'b' } else { 's' }, e.session),
                    link,
                    utm,
                    ua: if crawler {
                        CRAWLERS[(e.session % 3) as usize]
                    } else {
                        BROWSERS[(e.session % 4) as usize]
                    },
                    ts: Some(e.ts),
                },
            )
        }
        YKind::Conversion => conversion_json(
            out,
            &ConversionJson {
                client: 0,
                campaign: u32::from(e.campaign),
                entry: e.entry,
                session: (e.session != NO_SESSION).then_some(Sid('s', e.session)),
                link,
                utm,
                webinar: e.webinar.then_some(e.entry % WEBINARS),
                ts: Some(e.ts),
            },
        ),
    }
}

fn apply_json(engine: &mut Engine, line: &[u8]) -> anyhow::Result<()> {
    let ev = decode(line).map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(line)))?;
    engine
        .apply(&ev, None)
        .map_err(|_| anyhow::anyhow!("an event without ts"))?;
    Ok(())
}

/// Applies the year in time order, a tick at every simulated hour, and
/// takes the campaign rows at every simulated midnight (one batch per day).
fn build_year(year: &Year) -> anyhow::Result<(Engine, Vec<Batch>)> {
    let mut engine = Engine::new(engine_config())?;
    let mut batches = Vec::with_capacity(DAYS as usize + 1);
    let mut buf = Vec::with_capacity(1024);
    let mut next_hour = YEAR_START;
    let take = |engine: &mut Engine, batches: &mut Vec<Batch>| {
        batches.push(Batch {
            campaigns: engine.take_campaign_rows(),
            ..Default::default()
        })
    };
    for e in &year.events {
        while e.ts >= next_hour {
            if next_hour > YEAR_START && (next_hour - YEAR_START) % DAY_MS == 0 {
                take(&mut engine, &mut batches);
            }
            buf.clear();
            tick_json(&mut buf, next_hour);
            apply_json(&mut engine, &buf)?;
            next_hour += HOUR_MS;
        }
        buf.clear();
        year_json(&mut buf, e);
        apply_json(&mut engine, &buf)?;
    }
    take(&mut engine, &mut batches);
    Ok((engine, batches))
}

/// Range kinds, and `per` random ranges of each.
const KINDS: [(&str, i64); 4] = [("day", 1), ("week", 7), ("month", 30), ("year", 365)];

fn ranges(per: usize) -> Vec<Vec<(i64, i64)>> {
    let mut rng = Rng::new(0xCA4A_1A55_0004);
    KINDS
        .iter()
        .map(|&(_, len)| {
            (0..per)
                .map(|_| {
                    let from = i64::from(rng.range(0, (DAYS - len + 1) as u32));
                    (from, from + len - 1)
                })
                .collect()
        })
        .collect()
}

fn day(i: i64) -> Date {
    jiff::civil::date(2025, 1, 1)
        .checked_add(jiff::Span::new().days(i))
        .expect("a day of 2025-2026")
}

fn date_range((from, to): (i64, i64)) -> DateRange {
    DateRange {
        from: day(from),
        to: day(to),
    }
}

const CLIENT: &str = "c-1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Summary,
    Overview,
}

/// An answer as the API sends it (a JSON value, as the read APIs build it).
fn ask(engine: &Engine, what: Ask, range: (i64, i64)) -> Value {
    let view = engine.campaigns();
    match what {
        Ask::Summary => serde_json::to_value(view.summary(CLIENT, date_range(range))),
        Ask::Overview => serde_json::to_value(view.overview(CLIENT, date_range(range))),
    }
    .expect("answers serialize")
}

fn timed_ask(engine: &Engine, what: Ask, range: (i64, i64)) -> Duration {
    let started = Instant::now();
    let answer = ask(engine, what, range);
    let took = started.elapsed();
    std::hint::black_box(answer);
    took
}

/// Warm latencies: `[Ask][kind]`.
fn warm_latencies(engine: &Engine, ranges: &[Vec<(i64, i64)>]) -> [[Lat; 4]; 2] {
    for r in ranges.iter().flat_map(|k| k.iter().take(5)) {
        std::hint::black_box(ask(engine, Ask::Summary, *r));
        std::hint::black_box(ask(engine, Ask::Overview, *r));
    }
    let mut out: [[Lat; 4]; 2] = Default::default();
    for (a, what) in [Ask::Summary, Ask::Overview].into_iter().enumerate() {
        for (k, list) in ranges.iter().enumerate() {
            for r in list {
                out[a][k].push(timed_ask(engine, what, *r));
            }
        }
    }
    out
}

/// Live bytes an engine grows by when `n` sessions, one visit each with a
/// UTM and a link, are added after the year (inside the window).
fn bytes_per_session(engine: &mut Engine, n: u32) -> anyhow::Result<f64> {
    let mut rng = Rng::new(0xCA4A_1A55_0005);
    let mut bytes = Vec::with_capacity(n as usize * 330);
    let mut lines = Vec::with_capacity(n as usize);
    for i in 0..n {
        let start = bytes.len();
        let link = rng.range(0, YEAR_LINKS);
        visit_json(
            &mut bytes,
            &VisitJson {
                client: 0,
                campaign: link % YEAR_CAMPAIGNS,
                session: Sid('x', i),
                link: Some(link),
                utm: Some(rng.range(0, u32::from(UTM_COMBOS)) as u16),
                ua: BROWSERS[(i % 4) as usize],
                ts: Some(YEAR_END + HOUR_MS + i64::from(i)),
            },
        );
        lines.push((start, bytes.len()));
    }
    let events: Vec<Event<'_>> = lines
        .iter()
        .map(|&(s, e)| decode(&bytes[s..e]))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(engine.take_campaign_rows());
    let before = live_bytes();
    for ev in &events {
        engine
            .apply(ev, None)
            .map_err(|_| anyhow::anyhow!("no ts"))?;
    }
    drop(engine.take_campaign_rows());
    let after = live_bytes();
    Ok((after as f64 - before as f64) / f64::from(n))
}

// ---------------------------------------------------------------------------
// Part 3 stores and part 4: Postgres.

fn db_url(base: &str, db: &str) -> String {
    let (head, _) = base
        .rsplit_once('/')
        .expect("a database URL names a database");
    format!("{head}/{db}")
}

async fn create_db(admin: &PgPool, db: &str) -> anyhow::Result<()> {
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    Ok(())
}

async fn drop_db(admin: &PgPool, db: &str) {
    if let Err(e) = admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
    {
        eprintln!("could not drop database {db}: {e}");
    }
}

/// What writing the year's rows to a store took.
struct Written {
    secs: f64,
    rows: usize,
    batches: usize,
    /// The whole year's time: measured, or projected at the measured rate
    /// when the budget ran out first.
    year_secs: f64,
}

/// Writes the day batches through `Store::write` in day order, for at most
/// `budget`.
async fn write_rows(store: &Store, batches: &[Batch], budget: Duration) -> anyhow::Result<Written> {
    store.migrate().await?;
    let total: usize = batches.iter().map(|b| b.rows()).sum();
    let started = Instant::now();
    let (mut rows, mut done) = (0, 0);
    for b in batches {
        if started.elapsed() >= budget {
            break;
        }
        store.write(b, YEAR_END).await?;
        rows += b.rows();
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Written {
        secs,
        rows,
        batches: done,
        year_secs: secs * total as f64 / rows.max(1) as f64,
    })
}

fn copy_field(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => out.extend_from_slice(v.as_bytes()),
        None => out.extend_from_slice(b"\\N"),
    }
}

/// Loads the raw rows (COPY), then indexes and analyzes; seconds.
async fn load_raw(pool: &PgPool, year: &Year) -> anyhow::Result<f64> {
    let started = Instant::now();
    pool.execute(
        "CREATE TABLE visits (client_id text NOT NULL, campaign_id text NOT NULL, \
         session_id text NOT NULL, link_id text, utm_source text, utm_medium text, \
         utm_campaign text, is_bot boolean NOT NULL, ts bigint NOT NULL); \
         CREATE TABLE conversions (client_id text NOT NULL, campaign_id text NOT NULL, \
         entry_id text NOT NULL, session_id text, link_id text, utm_source text, \
         utm_medium text, utm_campaign text, webinar_id text, ts bigint NOT NULL)",
    )
    .await?;
    let mut conn = pool.acquire().await?;
    for table in ["visits", "conversions"] {
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN"))
            .await?;
        let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
        let want = if table == "visits" {
            [YKind::Visit, YKind::Crawler].as_slice()
        } else {
            [YKind::Conversion].as_slice()
        };
        for e in year.events.iter().filter(|e| want.contains(&e.kind)) {
            let link = (e.link != NO_LINK).then(|| format!("l-{}", e.link + 1));
            let utm = (e.utm != NO_UTM).then(|| utm_of(e.utm));
            let prefix = if e.kind == YKind::Crawler { 'b' } else { 's' };
            write!(buf, "{CLIENT}\tcmp-{}\t", e.campaign + 1)?;
            if e.kind == YKind::Conversion {
                write!(buf, "e-{}\t", e.entry)?;
                if e.session == NO_SESSION {
                    buf.extend_from_slice(b"\\N");
                } else {
                    write!(buf, "{prefix}-{}", e.session)?;
                }
            } else {
                write!(buf, "{prefix}-{}", e.session)?;
            }
            buf.push(b'\t');
            copy_field(&mut buf, link.as_deref());
            for i in 0..3 {
                buf.push(b'\t');
                copy_field(&mut buf, utm.map(|(s, m, c)| [s, m, c][i]));
            }
            buf.push(b'\t');
            if e.kind == YKind::Conversion {
                let w = e.webinar.then(|| format!("w-{}", e.entry % WEBINARS + 1));
                copy_field(&mut buf, w.as_deref());
            } else {
                buf.push(if e.kind == YKind::Crawler { b't' } else { b'f' });
            }
            writeln!(buf, "\t{}", e.ts)?;
            if buf.len() >= 8 << 20 {
                copy.send(std::mem::take(&mut buf)).await?;
                buf.reserve(8 << 20);
            }
        }
        if !buf.is_empty() {
            copy.send(buf).await?;
        }
        copy.finish().await?;
    }
    drop(conn);
    pool.execute(
        "CREATE INDEX ON visits (client_id, ts); CREATE INDEX ON conversions (client_id, ts)",
    )
    .await?;
    pool.execute("VACUUM ANALYZE visits").await?;
    pool.execute("VACUUM ANALYZE conversions").await?;
    Ok(started.elapsed().as_secs_f64())
}

fn bounds((from, to): (i64, i64)) -> (i64, i64) {
    (YEAR_START + from * DAY_MS, YEAR_START + (to + 1) * DAY_MS)
}

/// The summary by SQL: conversions by their own UTM (no attribution), by
/// source, medium, campaign and the three together, and the total.
/// Returns the total.
async fn sql_summary(pool: &PgPool, range: (i64, i64)) -> anyhow::Result<i64> {
    let (from, to) = bounds(range);
    let rows = sqlx::query(
        "SELECT s, m, c, GROUPING(s, m, c) AS g, COUNT(DISTINCT entry_id) AS n FROM ( \
           SELECT COALESCE(utm_source, '(none)') AS s, COALESCE(utm_medium, '(none)') AS m, \
                  COALESCE(utm_campaign, '(none)') AS c, entry_id \
           FROM conversions WHERE client_id = $1 AND ts >= $2 AND ts < $3) x \
         GROUP BY GROUPING SETS ((), (s), (m), (c), (s, m, c)) ORDER BY g, n DESC",
    )
    .bind(CLIENT)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let total = rows
        .iter()
        .find(|r| r.get::<i32, _>("g") == 7)
        .map_or(0, |r| r.get::<i64, _>("n"));
    Ok(total)
}

/// The overview's numbers by SQL: (visits, campaigns with a visit,
/// active links, sessions through a link, conversions, registrations).
async fn sql_overview(pool: &PgPool, range: (i64, i64)) -> anyhow::Result<[i64; 6]> {
    let (from, to) = bounds(range);
    let (visits, campaigns): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(DISTINCT session_id), COUNT(DISTINCT campaign_id) FROM visits \
         WHERE client_id = $1 AND ts >= $2 AND ts < $3 AND NOT is_bot",
    )
    .bind(CLIENT)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let (links, link_sessions): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(DISTINCT link_id), COUNT(DISTINCT session_id) FROM visits \
         WHERE client_id = $1 AND ts >= $2 AND ts < $3 AND NOT is_bot AND link_id IS NOT NULL",
    )
    .bind(CLIENT)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let (conversions, registrations): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(DISTINCT entry_id), COUNT(DISTINCT entry_id) FILTER (WHERE webinar_id IS NOT NULL) \
         FROM conversions WHERE client_id = $1 AND ts >= $2 AND ts < $3",
    )
    .bind(CLIENT)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok([
        visits,
        campaigns,
        links,
        link_sessions,
        conversions,
        registrations,
    ])
}

/// SQL latencies `[Ask][kind]`, each kind for at most `budget` (at least 3
/// queries, at most as many as the ranges), every answer checked against
/// the engine's; returns them and how many ranges were checked.
async fn sql_latencies(
    pool: &PgPool,
    engine: &Engine,
    ranges: &[Vec<(i64, i64)>],
    budget: Duration,
) -> anyhow::Result<([[Lat; 4]; 2], usize)> {
    let mut out: [[Lat; 4]; 2] = Default::default();
    let mut checked = 0;
    for (k, list) in ranges.iter().enumerate() {
        for (a, what) in [Ask::Summary, Ask::Overview].into_iter().enumerate() {
            let started = Instant::now();
            for r in list {
                if out[a][k].len() >= 3 && started.elapsed() >= budget {
                    break;
                }
                let ours = ask(engine, what, *r);
                match what {
                    Ask::Summary => {
                        let t = Instant::now();
                        let total = sql_summary(pool, *r).await?;
                        out[a][k].push(t.elapsed());
                        let want = ours["total_conversions"].as_i64();
                        if want != Some(total) {
                            bail!(
                                "summary {r:?}: SQL counts {total} conversions, EventFlow {want:?}"
                            );
                        }
                    }
                    Ask::Overview => {
                        let t = Instant::now();
                        let got = sql_overview(pool, *r).await?;
                        out[a][k].push(t.elapsed());
                        let want = [
                            &ours["campaigns"]["visits"],
                            &ours["links"]["active"],
                            &ours["links"]["total_visits"],
                            &ours["campaigns"]["conversions"],
                            &ours["webinars"]["registrations"],
                        ]
                        .map(|v| v.as_i64().unwrap_or(-1));
                        let sql = [got[0], got[2], got[3], got[4], got[5]];
                        if want != sql {
                            bail!(
                                "overview {r:?}: SQL (visits, active links, link sessions, \
                                 conversions, registrations) = {sql:?}, EventFlow {want:?}"
                            );
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    Ok((out, checked))
}

// ---------------------------------------------------------------------------

fn row(name: &str, value: String, target: &str) {
    println!("| {name:<62} | {value:>28} | {target:>14} |");
}

fn main() -> anyhow::Result<()> {
    // The crawler list is the engine's; the workload relies on it.
    ensure!(CRAWLERS.iter().all(|ua| is_bot(Some(ua))));
    ensure!(BROWSERS.iter().all(|ua| !is_bot(Some(ua))));
    let records: usize = env_or("EVENTFLOW_BENCH_RECORDS", 2_000_000);
    let secs: f64 = env_or("EVENTFLOW_BENCH_SECS", 10.0);
    let year_scale: f64 = std::env::var("EVENTFLOW_BENCH_YEAR_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or_else(common::scale);
    let pg_url: String = env_or(
        "EVENTFLOW_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test".into(),
    );
    let smoke = records < 100_000;
    let rounds = if smoke { 1 } else { 3 };

    println!("campaigns benchmark");
    println!(
        "| {:<62} | {:>28} | {:>14} |",
        "measure", "result", "target"
    );
    println!("|{:-<64}|{:-<30}|{:-<16}|", "", "", "");

    // 1. One core.
    let (decode_apply, apply) = one_core(records, rounds)?;
    row(
        &format!("campaign records/s decoded + applied, one core ({records} records)"),
        format!("{decode_apply:.0}"),
        ">= 1 000 000",
    );
    row(
        "campaign records/s applied pre-decoded, one core",
        format!("{apply:.0}"),
        "",
    );
    summary(
        "campaign_decode_apply_rate",
        format!("{decode_apply:.0}"),
        "records/s",
    );
    summary("campaign_apply_rate", format!("{apply:.0}"), "records/s");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // 2. HTTP.
    let http = rt.block_on(http_part(secs, if smoke { 2 } else { 40 }))?;
    row(
        "campaign events/s through 10 000-event HTTP batches, accepted",
        format!("{:.0}", http.accepted),
        ">= 500 000",
    );
    row(
        "  ... applied by the engine, events/s",
        format!("{:.0}", http.applied),
        "",
    );
    row(
        "HTTP GET summary / overview (30 days) p50 ms",
        format!("{} / {}", ms(http.summary.p(0.5)), ms(http.overview.p(0.5))),
        "",
    );
    row(
        "HTTP GET summary / overview (30 days) p99 ms",
        format!(
            "{} / {}",
            ms(http.summary.p(0.99)),
            ms(http.overview.p(0.99))
        ),
        "",
    );
    summary(
        "campaign_http_batch_rate",
        format!("{:.0}", http.accepted),
        "records/s",
    );
    summary(
        "campaign_http_batch_applied_rate",
        format!("{:.0}", http.applied),
        "records/s",
    );
    for (name, lat) in [("summary", &http.summary), ("overview", &http.overview)] {
        summary(
            &format!("campaign_http_{name}_p50_ms"),
            ms(lat.p(0.5)),
            "ms",
        );
        summary(
            &format!("campaign_http_{name}_p99_ms"),
            ms(lat.p(0.99)),
            "ms",
        );
    }

    // 3. A year.
    let spec = YearSpec {
        scale: year_scale,
        sessions: ((3_000_000.0 * year_scale) as u32).max(100),
        conversions: ((500_000.0 * year_scale) as u32).max(20),
    };
    let started = Instant::now();
    let year = generate_year(&spec);
    println!(
        "year (scale {}): {} visits ({} crawler) from {} sessions, {} conversions (+{} repeats), \
         {YEAR_LINKS} links, {YEAR_CAMPAIGNS} campaigns, 365 days; generated in {:.1} s",
        spec.scale,
        year.visits + year.crawler_visits,
        year.crawler_visits,
        spec.sessions,
        year.conversions,
        year.repeats,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let (mut engine, batches) = build_year(&year)?;
    let build_s = started.elapsed().as_secs_f64();
    let ticks = DAYS * 24;
    let build_rate = (year.events.len() as f64 + ticks as f64) / build_s;
    row(
        "year built: records decoded + applied in time order, s",
        format!("{build_s:.1} ({build_rate:.0}/s)"),
        "",
    );
    summary("campaign_year_scale", spec.scale, "x");
    summary(
        "campaign_year_visits",
        year.visits + year.crawler_visits,
        "visits",
    );
    summary("campaign_year_sessions", spec.sessions, "sessions");
    summary("campaign_year_conversions", year.conversions, "conversions");
    summary("campaign_year_build_s", format!("{build_s:.1}"), "s");

    let per = 200;
    let ranges = ranges(per);
    let warm = warm_latencies(&engine, &ranges);
    for (a, name) in ["summary", "overview"].iter().enumerate() {
        for (k, (kind, _)) in KINDS.iter().enumerate() {
            let l = &warm[a][k];
            row(
                &format!(
                    "{name} warm over a {kind}: p50 / p99 / max ms ({} queries)",
                    l.len()
                ),
                format!("{} / {} / {}", ms(l.p(0.5)), ms(l.p(0.99)), ms(l.max())),
                "p99 <= 50 ms",
            );
            for (q, v) in [("p50", l.p(0.5)), ("p99", l.p(0.99)), ("max", l.max())] {
                summary(&format!("campaign_{name}_{kind}_{q}_ms"), ms(v), "ms");
            }
        }
    }

    // Cold: the checkpoint, then a restarted engine.
    let started = Instant::now();
    let checkpoint = engine.save();
    let save_s = started.elapsed().as_secs_f64();
    // 5. Memory: sessions added inside the window, then the whole engine.
    let extra = ((100_000.0 * year_scale) as u32).max(1_000);
    let per_session = bytes_per_session(&mut engine, extra)?;
    let extra_bytes = per_session * f64::from(extra);
    let before_drop = live_bytes();
    drop(engine);
    let engine_bytes = (before_drop - live_bytes()) as f64 - extra_bytes;
    let before_restore = live_bytes();
    let started = Instant::now();
    let engine = Engine::restore(engine_config(), &checkpoint)?;
    let restore_s = started.elapsed().as_secs_f64();
    let restored_bytes = live_bytes() - before_restore;
    let year_range = (0, DAYS - 1);
    let first_summary = timed_ask(&engine, Ask::Summary, year_range);
    let first_overview = timed_ask(&engine, Ask::Overview, year_range);
    let (mut cold_summary, mut cold_overview) = (Lat::default(), Lat::default());
    for list in &ranges {
        for r in list.iter().take(per / 4) {
            cold_summary.push(timed_ask(&engine, Ask::Summary, *r));
            cold_overview.push(timed_ask(&engine, Ask::Overview, *r));
        }
    }
    let mib = checkpoint.len() as f64 / MIB;
    row(
        "checkpoint: save s / size MiB",
        format!("{save_s:.2} / {mib:.1}"),
        "",
    );
    row("cold: Engine::restore s", format!("{restore_s:.2}"), "");
    row(
        "cold: first summary / overview over the year, ms",
        format!(
            "{} / {}",
            ms(first_summary.as_secs_f64() * 1e3),
            ms(first_overview.as_secs_f64() * 1e3)
        ),
        "<= 50 ms",
    );
    row(
        &format!(
            "cold: summary / overview p99 after ({} each, all ranges) ms",
            cold_summary.len()
        ),
        format!(
            "{} / {}",
            ms(cold_summary.p(0.99)),
            ms(cold_overview.p(0.99))
        ),
        "<= 50 ms",
    );
    summary("campaign_save_s", format!("{save_s:.2}"), "s");
    summary("campaign_checkpoint_mib", format!("{mib:.1}"), "MiB");
    summary("campaign_cold_restore_s", format!("{restore_s:.2}"), "s");
    summary(
        "campaign_cold_first_summary_ms",
        ms(first_summary.as_secs_f64() * 1e3),
        "ms",
    );
    summary(
        "campaign_cold_first_overview_ms",
        ms(first_overview.as_secs_f64() * 1e3),
        "ms",
    );
    summary(
        "campaign_cold_summary_p99_ms",
        ms(cold_summary.p(0.99)),
        "ms",
    );
    summary(
        "campaign_cold_overview_p99_ms",
        ms(cold_overview.p(0.99)),
        "ms",
    );
    row(
        &format!("engine bytes per session in the window ({extra} added after the year)"),
        format!("{per_session:.1}"),
        "<= 128",
    );
    row(
        "engine MiB after the year (built / restored from checkpoint)",
        format!(
            "{:.1} / {:.1}",
            engine_bytes / MIB,
            restored_bytes as f64 / MIB
        ),
        "",
    );
    summary(
        "campaign_bytes_per_session",
        format!("{per_session:.1}"),
        "bytes",
    );
    summary(
        "campaign_engine_year_mib",
        format!("{:.1}", engine_bytes / MIB),
        "MiB",
    );
    summary(
        "campaign_engine_restored_mib",
        format!("{:.1}", restored_bytes as f64 / MIB),
        "MiB",
    );

    // Stores, and the review's design.
    let rows: usize = batches.iter().map(|b| b.rows()).sum();
    let pid = std::process::id();
    let rows_db = format!("efb_campaign_rows_{pid}");
    let raw_db = format!("efb_campaign_raw_{pid}");
    let budget = Duration::from_secs_f64(secs * 1.5);
    let store_budget = Duration::from_secs_f64(env_or("EVENTFLOW_BENCH_STORE_SECS", 90.0));
    let outcome = rt.block_on(async {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&pg_url)
            .await
            .with_context(|| format!("connecting to Postgres at {pg_url}"))?;
        let result = async {
            let dir = tempfile::tempdir()?;
            let sqlite = Store::embedded(dir.path()).await?;
            let sqlite_s = write_rows(&sqlite, &batches, store_budget).await?;
            sqlite.close().await;
            create_db(&admin, &rows_db).await?;
            let pg = Store::connect(&db_url(&pg_url, &rows_db)).await?;
            let pg_s = write_rows(&pg, &batches, store_budget).await?;
            pg.close().await;
            drop_db(&admin, &rows_db).await;

            create_db(&admin, &raw_db).await?;
            let raw = PgPoolOptions::new()
                .max_connections(1)
                .connect(&db_url(&pg_url, &raw_db))
                .await?;
            let load_s = load_raw(&raw, &year).await?;
            let (sql, checked) = sql_latencies(&raw, &engine, &ranges, budget).await?;
            raw.close().await;
            anyhow::Ok((sqlite_s, pg_s, load_s, sql, checked))
        }
        .await;
        drop_db(&admin, &rows_db).await;
        drop_db(&admin, &raw_db).await;
        admin.close().await;
        result
    })?;
    let (sqlite_s, pg_s, load_s, sql, checked) = outcome;
    for (name, key, w) in [
        ("SQLite", "sqlite", &sqlite_s),
        ("Postgres", "postgres", &pg_s),
    ] {
        let projected = w.batches < batches.len();
        row(
            &format!(
                "year's rows via Store::write into {name}, s ({} rows/s)",
                (w.rows as f64 / w.secs).round()
            ),
            if projected {
                format!(
                    "{:.0} projected ({} of {rows} rows in {:.0} s)",
                    w.year_secs, w.rows, w.secs
                )
            } else {
                format!("{:.1} ({rows} rows)", w.secs)
            },
            "",
        );
        summary(
            &format!("campaign_store_{key}_s"),
            format!("{:.1}", w.year_secs),
            "s",
        );
        summary(
            &format!("campaign_store_{key}_projected"),
            u8::from(projected),
            "(1: the budget ran out, time projected)",
        );
        summary(
            &format!("campaign_store_{key}_rate"),
            format!("{:.0}", w.rows as f64 / w.secs),
            "rows/s",
        );
    }
    summary("campaign_store_rows", rows, "rows");
    row(
        &format!(
            "SQL design: raw rows ({}) COPY + index + analyze, s",
            year.events.len()
        ),
        format!("{load_s:.1}"),
        "",
    );
    summary("campaign_sql_load_s", format!("{load_s:.1}"), "s");
    for (a, name) in ["summary", "overview"].iter().enumerate() {
        for (k, (kind, _)) in KINDS.iter().enumerate() {
            let (ours, theirs) = (&warm[a][k], &sql[a][k]);
            let (r50, r99) = (
                theirs.p(0.5) / ours.p(0.5).max(1e-6),
                theirs.p(0.99) / ours.p(0.99).max(1e-6),
            );
            row(
                &format!(
                    "SQL {name} over a {kind}: p50 / p99 ms ({} queries)",
                    theirs.len()
                ),
                format!("{} / {}", ms(theirs.p(0.5)), ms(theirs.p(0.99))),
                "",
            );
            row(
                &format!("  EventFlow faster than SQL, {name} over a {kind}: p50 / p99"),
                format!("{r50:.0} x / {r99:.0} x"),
                ">= 100 x",
            );
            for (q, v) in [("p50", theirs.p(0.5)), ("p99", theirs.p(0.99))] {
                summary(&format!("campaign_sql_{name}_{kind}_{q}_ms"), ms(v), "ms");
            }
            summary(
                &format!("campaign_sql_{name}_{kind}_n"),
                theirs.len(),
                "queries",
            );
        }
    }
    row(
        "ranges where SQL and EventFlow agree (visits, links, conversions)",
        format!("{checked}"),
        "all",
    );
    summary("campaign_sql_checked", checked, "ranges");
    Ok(())
}
