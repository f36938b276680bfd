//! The designs users build today, on EventFlow's presence workload.
//!
//! The same records as `benches/nats.rs` (2 000 webinars, 100 000 viewers;
//! pings and leaves in arrival order) go through:
//!
//! 1. **Redis sorted sets**, one per webinar, scored by last-seen time: per
//!    record a `ZADD` (ping) or `ZREM` (leave), then `ZREMRANGEBYSCORE` of
//!    everyone older than the ttl and `ZCARD` — the webinar's live count
//!    after every record — pipelined 1 000 records per round trip.
//! 2. **Postgres, one upsert per ping**: `INSERT … ON CONFLICT DO UPDATE SET
//!    last_seen_at` (a `DELETE` per leave), each its own transaction; live
//!    counts by `count(*) … WHERE last_seen_at > now - ttl`.
//! 3. **Postgres, batched**: the same, 1 000 records per transaction (one
//!    upsert of every pinged viewer's latest time and one delete of those
//!    whose latest record is a leave, through `UNNEST`).
//!
//! Each design's live counts are checked equal to EventFlow's at sample
//! instants: the engine (DESIGN §3) runs over the same records first,
//! with a tick at each sample instant, and gives every webinar's live count
//! there; the designs are fed the times the engine applied (DESIGN §2:
//! an event older than its webinar's clock is applied at the clock), and
//! at the same record index their counts at that instant must be the
//! engine's, for every webinar. A mismatch fails the benchmark.
//!
//! `EVENTFLOW_BENCH_RECORDS` sets how many records (default 1 000 000);
//! `EVENTFLOW_BENCH_SECS` caps each design's run (default 20 s: Postgres
//! one-by-one would take many minutes for all of them), except that a
//! design always goes on to its first sample instant, so every design is
//! checked at least once however slow its store is that day; the rate is
//! records done / time, and samples past the records done are skipped. Redis on
//! `EVENTFLOW_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`), Postgres
//! on `EVENTFLOW_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); everything created is
//! removed at the end.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{Kind, Spec, T0, Workload};
use eventflow::engine::{Engine, EngineConfig};
use eventflow::event::{Event, Tick};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

const WEBINARS: u32 = 2_000;
const VIEWERS: u32 = 100_000;
/// Records per pipeline (Redis) or transaction (batched Postgres).
const BATCH: usize = 1_000;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One record as the designs see it: webinar and viewer indices, the
/// time EventFlow applied it, and whether it is a leave.
#[derive(Clone, Copy)]
struct Rec {
    webinar: u32,
    viewer: u32,
    ts: i64,
    leave: bool,
}

/// EventFlow's live counts at an instant, after the first `after` records.
struct Sample {
    after: usize,
    at: i64,
    live: Vec<u32>,
}

struct Prepared {
    recs: Vec<Rec>,
    samples: Vec<Sample>,
    webinar_ids: Vec<&'static str>,
    viewer_ids: Vec<&'static str>,
    ttl: i64,
    /// EventFlow's engine alone over the same records, records/s.
    engine_rate: f64,
}

/// Generates the records and runs the engine over them, with a tick at
/// each sample instant (record counts that are multiples of [`BATCH`]).
fn prepare(n: usize) -> anyhow::Result<Prepared> {
    let mut duration_ms = 180_000 + ((n as u64).div_ceil(u64::from(VIEWERS)) + 1) * 78_000;
    let workload = loop {
        let w = Workload::generate(Spec {
            webinars: WEBINARS,
            viewers: VIEWERS,
            warm_ms: 0,
            duration_ms: u32::try_from(duration_ms)?,
            ticks: false,
            ..Spec::standard()
        });
        if w.measured.len() >= n {
            break w;
        }
        duration_ms *= 2;
    };
    let raw = &workload.measured[..n];
    let sample_at: Vec<usize> = [1, 2, 5, 10, 20, 35, 50, 75, 100]
        .iter()
        .map(|pct| (n * pct / 100 / BATCH * BATCH).max(BATCH.min(n)))
        .collect();
    let config = EngineConfig::default();
    let ttl = config.ttl_ms;
    let mut engine = Engine::new(config)?;
    let mut recs = Vec::with_capacity(n);
    let mut samples = Vec::new();
    let mut now = i64::MIN;
    let started = Instant::now();
    for (i, r) in raw.iter().enumerate() {
        let applied = engine
            .apply(&workload.event(r), None)
            .map_err(|_| anyhow::anyhow!("a record without ts"))?;
        now = now.max(applied.ts);
        recs.push(Rec {
            webinar: workload.webinar_of[r.viewer as usize],
            viewer: r.viewer,
            ts: applied.ts,
            leave: r.kind == Kind::Leave,
        });
        if sample_at.contains(&(i + 1)) && samples.last().is_none_or(|s: &Sample| s.after != i + 1)
        {
            engine
                .apply(&Event::Tick(Tick { ts: now }), None)
                .map_err(|_| anyhow::anyhow!("a tick without ts"))?;
            let live = workload
                .ids
                .webinar
                .iter()
                .map(|w| engine.live(w).map_or(0, |s| s.live))
                .collect();
            samples.push(Sample {
                after: i + 1,
                at: now,
                live,
            });
        }
    }
    let engine_rate = n as f64 / started.elapsed().as_secs_f64();
    assert!(raw.iter().all(|r| r.kind != Kind::Tick) && now >= T0);
    Ok(Prepared {
        recs,
        samples,
        webinar_ids: workload.ids.webinar.clone(),
        viewer_ids: workload.ids.viewer.clone(),
        ttl,
        engine_rate,
    })
}

/// What one design did.
struct Outcome {
    done: usize,
    elapsed: Duration,
    samples_checked: usize,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
}

fn check(design: &str, p: &Prepared, sample: &Sample, got: &[u32]) -> anyhow::Result<()> {
    let wrong: Vec<_> = (0..p.webinar_ids.len())
        .filter(|&w| got[w] != sample.live[w])
        .take(5)
        .map(|w| {
            format!(
                "{}: {} (EventFlow {})",
                p.webinar_ids[w], got[w], sample.live[w]
            )
        })
        .collect();
    if !wrong.is_empty() {
        bail!(
            "{design}: live counts after {} records at {} differ from EventFlow's: {}",
            sample.after,
            sample.at,
            wrong.join(", ")
        );
    }
    Ok(())
}

/// Design 1: a sorted set per webinar.
async fn redis_design(url: &str, p: &Prepared, budget: Duration) -> anyhow::Result<Outcome> {
    let run = std::process::id();
    let key = |w: u32| format!("efb:{run}:zs:{}", p.webinar_ids[w as usize]);
    let keys: Vec<String> = (0..p.webinar_ids.len() as u32).map(key).collect();
    let client = redis::Client::open(url)?;
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at {url}"))?;
    let mut samples = p.samples.iter().peekable();
    let mut checked = 0;
    let mut measured = Duration::ZERO;
    let mut done = 0;
    while done < p.recs.len() && (measured < budget || checked == 0) {
        let chunk = &p.recs[done..(done + BATCH).min(p.recs.len())];
        let started = Instant::now();
        let mut pipe = redis::pipe();
        for r in chunk {
            let k = &keys[r.webinar as usize];
            let v = p.viewer_ids[r.viewer as usize];
            if r.leave {
                pipe.zrem(k, v).ignore();
            } else {
                pipe.zadd(k, v, r.ts).ignore();
            }
            pipe.zrembyscore(k, "-inf", r.ts - p.ttl).ignore();
            pipe.zcard(k);
        }
        let counts: Vec<u64> = pipe.query_async(&mut c).await?;
        std::hint::black_box(counts);
        measured += started.elapsed();
        done += chunk.len();
        if let Some(s) = samples.next_if(|s| s.after == done) {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.zrembyscore(k, "-inf", s.at - p.ttl).ignore().zcard(k);
            }
            let got: Vec<u32> = pipe.query_async(&mut c).await?;
            check("Redis sorted sets", p, s, &got)?;
            checked += 1;
        }
    }
    for chunk in keys.chunks(500) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut c)
            .await?;
    }
    Ok(Outcome {
        done,
        elapsed: measured,
        samples_checked: checked,
    })
}

async fn pg_table(pool: &PgPool, table: &str) -> anyhow::Result<()> {
    pool.execute(format!("DROP TABLE IF EXISTS {table}").as_str())
        .await?;
    pool.execute(
        format!(
            "CREATE TABLE {table} (webinar_id text NOT NULL, viewer_id text NOT NULL, \
             last_seen_at bigint NOT NULL, PRIMARY KEY (webinar_id, viewer_id))"
        )
        .as_str(),
    )
    .await?;
    pool.execute(format!("CREATE INDEX ON {table} (webinar_id, last_seen_at)").as_str())
        .await?;
    Ok(())
}

async fn pg_counts(pool: &PgPool, table: &str, p: &Prepared, at: i64) -> anyhow::Result<Vec<u32>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT webinar_id, count(*) FROM {table} WHERE last_seen_at > $1 GROUP BY webinar_id"
    ))
    .bind(at - p.ttl)
    .fetch_all(pool)
    .await?;
    let index: HashMap<&str, usize> = p
        .webinar_ids
        .iter()
        .enumerate()
        .map(|(i, w)| (*w, i))
        .collect();
    let mut got = vec![0; p.webinar_ids.len()];
    for (w, n) in rows {
        got[index[w.as_str()]] = u32::try_from(n)?;
    }
    Ok(got)
}

/// Design 2: one statement (and transaction) per record.
async fn pg_per_ping(pool: &PgPool, p: &Prepared, budget: Duration) -> anyhow::Result<Outcome> {
    let table = format!("efb_presence_one_{}", std::process::id());
    pg_table(pool, &table).await?;
    let upsert = format!(
        "INSERT INTO {table} (webinar_id, viewer_id, last_seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (webinar_id, viewer_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at"
    );
    let delete = format!("DELETE FROM {table} WHERE webinar_id = $1 AND viewer_id = $2");
    let mut samples = p.samples.iter().peekable();
    let (mut checked, mut done) = (0, 0);
    let started = Instant::now();
    let mut paused = Duration::ZERO;
    while done < p.recs.len() && (started.elapsed() - paused < budget || checked == 0) {
        let r = p.recs[done];
        let (w, v) = (
            p.webinar_ids[r.webinar as usize],
            p.viewer_ids[r.viewer as usize],
        );
        if r.leave {
            sqlx::query(&delete).bind(w).bind(v).execute(pool).await?;
        } else {
            sqlx::query(&upsert)
                .bind(w)
                .bind(v)
                .bind(r.ts)
                .execute(pool)
                .await?;
        }
        done += 1;
        if let Some(s) = samples.next_if(|s| s.after == done) {
            let pause = Instant::now();
            check(
                "Postgres per ping",
                p,
                s,
                &pg_counts(pool, &table, p, s.at).await?,
            )?;
            checked += 1;
            paused += pause.elapsed();
        }
    }
    let elapsed = started.elapsed() - paused;
    pool.execute(format!("DROP TABLE {table}").as_str()).await?;
    Ok(Outcome {
        done,
        elapsed,
        samples_checked: checked,
    })
}

/// Design 3: [`BATCH`] records per transaction.
async fn pg_batched(pool: &PgPool, p: &Prepared, budget: Duration) -> anyhow::Result<Outcome> {
    let table = format!("efb_presence_batch_{}", std::process::id());
    pg_table(pool, &table).await?;
    let upsert = format!(
        "INSERT INTO {table} (webinar_id, viewer_id, last_seen_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT (webinar_id, viewer_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at"
    );
    let delete = format!(
        "DELETE FROM {table} t USING UNNEST($1::text[], $2::text[]) AS d(w, v) \
         WHERE t.webinar_id = d.w AND t.viewer_id = d.v"
    );
    let mut samples = p.samples.iter().peekable();
    let (mut checked, mut done) = (0, 0);
    let mut measured = Duration::ZERO;
    while done < p.recs.len() && (measured < budget || checked == 0) {
        let chunk = &p.recs[done..(done + BATCH).min(p.recs.len())];
        let started = Instant::now();
        // A viewer's last record in the batch decides: one row per key.
        let mut last: HashMap<(u32, u32), Rec> = HashMap::with_capacity(chunk.len());
        for r in chunk {
            last.insert((r.webinar, r.viewer), *r);
        }
        let (mut uw, mut uv, mut ut, mut dw, mut dv) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in last.values() {
            let (w, v) = (
                p.webinar_ids[r.webinar as usize],
                p.viewer_ids[r.viewer as usize],
            );
            if r.leave {
                dw.push(w);
                dv.push(v);
            } else {
                uw.push(w);
                uv.push(v);
                ut.push(r.ts);
            }
        }
        let mut tx = pool.begin().await?;
        sqlx::query(&upsert)
            .bind(&uw)
            .bind(&uv)
            .bind(&ut)
            .execute(&mut *tx)
            .await?;
        if !dw.is_empty() {
            sqlx::query(&delete)
                .bind(&dw)
                .bind(&dv)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        measured += started.elapsed();
        done += chunk.len();
        if let Some(s) = samples.next_if(|s| s.after == done) {
            check(
                "Postgres batched",
                p,
                s,
                &pg_counts(pool, &table, p, s.at).await?,
            )?;
            checked += 1;
        }
    }
    pool.execute(format!("DROP TABLE {table}").as_str()).await?;
    Ok(Outcome {
        done,
        elapsed: measured,
        samples_checked: checked,
    })
}

fn summary(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("SUMMARY {name} {value} {unit}");
}

fn main() -> anyhow::Result<()> {
    let n: usize = env_or("EVENTFLOW_BENCH_RECORDS", 1_000_000);
    let budget = Duration::from_secs_f64(env_or("EVENTFLOW_BENCH_SECS", 20.0));
    let redis_url: String = env_or("EVENTFLOW_BENCH_REDIS_URL", "redis://127.0.0.1:6379".into());
    let pg_url: String = env_or(
        "EVENTFLOW_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test".into(),
    );
    let p = prepare(n)?;
    println!(
        "designs benchmark: {n} presence records ({WEBINARS} webinars, {VIEWERS} viewers), \
         live counts compared with EventFlow's at {} instants; at most {:.0} s per design",
        p.samples.len(),
        budget.as_secs_f64()
    );
    summary(
        "designs_engine_rate",
        format!("{:.0}", p.engine_rate),
        "records/s",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let redis = redis_design(&redis_url, &p, budget).await?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&pg_url)
            .await
            .with_context(|| format!("connecting to Postgres at {pg_url}"))?;
        let one = pg_per_ping(&pool, &p, budget).await?;
        let batched = pg_batched(&pool, &p, budget).await?;
        println!();
        println!("| design | records | records/s | live counts checked equal at |");
        println!("|---|---:|---:|---:|");
        for (name, key, o) in [
            ("Redis sorted sets, pipelined", "redis_zset", &redis),
            ("Postgres upsert per ping", "postgres_per_ping", &one),
            (
                "Postgres upserts, 1 000 per transaction",
                "postgres_batched",
                &batched,
            ),
        ] {
            println!(
                "| {name} | {} | {:.0} | {} instants |",
                o.done,
                o.rate(),
                o.samples_checked
            );
            summary(
                &format!("{key}_rate"),
                format!("{:.0}", o.rate()),
                "records/s",
            );
            summary(&format!("{key}_checked"), o.samples_checked, "instants");
            if o.samples_checked == 0 {
                bail!("{name}: no sample instant was reached; raise EVENTFLOW_BENCH_SECS");
            }
        }
        Ok(())
    })
}
