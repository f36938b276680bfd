//! Engine throughput at ~1 M live viewers over 10 000 webinars.
//!
//! Each measured iteration gets a fresh engine warmed up (untimed) with the
//! first 4 simulated minutes of the workload, which makes every viewer live,
//! then times the next 5 minutes (~5 M records, crossing a bucket boundary):
//!
//! - `presence/apply_predecoded`: `Engine::apply_all` over pre-decoded events
//!   (with its look-ahead);
//! - `presence/apply_predecoded_one_by_one`: `Engine::apply` per event, the
//!   same events (no look-ahead), for the ratio;
//! - `presence/decode_apply`: `event::decode` of each JSON line, then apply;
//! - `presence/decode_only`: `event::decode` alone, to split the cost;
//! - `presence/apply_predecoded_with_ticks`: as the first, with the service's
//!   one tick per second interleaved as in the log (DESIGN §2).
//!
//! "Pre-decoded" events are the JSON lines decoded once beforehand, so their
//! ids borrow from the line buffer in stream order exactly as `decode` hands
//! them over (interned ids would add a random memory access per record).
//! Final buckets are drained every 64 Ki records inside the timed section, as
//! a consumer would. A plain `SUMMARY` line per benchmark gives records/s.
//! One iteration takes seconds, so criterion's "unable to complete 10
//! samples" warning is expected: each sample is one iteration.
//!
//! `EVENTFLOW_BENCH_SCALE=0.1` runs a tenth of the audience;
//! `EVENTFLOW_BENCH_PROFILE=apply|apply_one_by_one|decode_apply|apply_interned` runs the
//! measured part once outside criterion, for profilers (see [`profile`]).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{JsonLines, Spec, Workload};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use eventflow::engine::{Engine, EngineConfig};
use eventflow::event::{self, Event};

const DRAIN_EVERY: usize = 1 << 16;

/// A fresh engine after the warm-up records.
fn warmed(w: &Workload) -> Engine {
    let mut engine = Engine::new(EngineConfig::default()).expect("default config is valid");
    for r in &w.warm {
        engine.apply(&w.event(r), None).expect("ts is set");
    }
    engine.drain().for_each(drop);
    engine
}

fn apply_all(engine: &mut Engine, events: &[Event<'_>]) -> u64 {
    let mut late = 0;
    for chunk in events.chunks(DRAIN_EVERY) {
        engine.apply_all(
            chunk,
            |_| None,
            |_, a| late += u64::from(a.expect("ts is set").late),
        );
        engine.drain().for_each(|o| drop(black_box(o)));
    }
    late
}

/// As [`apply_all`], one `Engine::apply` per record (no look-ahead).
fn apply_one_by_one(engine: &mut Engine, events: &[Event<'_>]) -> u64 {
    let mut late = 0;
    for chunk in events.chunks(DRAIN_EVERY) {
        for e in chunk {
            late += u64::from(engine.apply(e, None).expect("ts is set").late);
        }
        engine.drain().for_each(|o| drop(black_box(o)));
    }
    late
}

/// The lines decoded once, outside any timing: exactly what `decode` hands
/// the engine, ids borrowed from the line buffer in stream order.
fn decode_all(lines: &JsonLines) -> Vec<Event<'_>> {
    lines
        .iter()
        .map(|l| event::decode(l).expect("valid line"))
        .collect()
}

fn decode_apply_all(engine: &mut Engine, lines: &JsonLines) -> u64 {
    let mut late = 0;
    for chunk in lines.lines.chunks(DRAIN_EVERY) {
        for &(s, e) in chunk {
            let event = event::decode(&lines.bytes[s..e]).expect("valid line");
            late += u64::from(engine.apply(&event, None).expect("ts is set").late);
        }
        engine.drain().for_each(|o| drop(black_box(o)));
    }
    late
}

/// Per-iteration timings of one benchmark, for the plain summary line.
struct Timings {
    name: &'static str,
    records: usize,
    runs: Vec<Duration>,
}

impl Timings {
    fn new(name: &'static str, records: usize) -> Self {
        Timings {
            name,
            records,
            runs: Vec::new(),
        }
    }

    fn summary(&mut self) -> String {
        self.runs.sort();
        let median = self.runs[self.runs.len() / 2];
        let best = self.runs[0];
        let rate = |d: Duration| self.records as f64 / d.as_secs_f64() / 1e6;
        format!(
            "SUMMARY presence/{}: {} records/iteration, {} iterations, median {:.3} s = {:.2} M records/s (best {:.2} M/s, worst {:.2} M/s)",
            self.name,
            self.records,
            self.runs.len(),
            median.as_secs_f64(),
            rate(median),
            rate(best),
            rate(*self.runs.last().expect("ran")),
        )
    }
}

fn describe(w: &Workload) {
    let (wp, wl, wt) = Workload::census(&w.warm);
    let (mp, ml, mt) = Workload::census(&w.measured);
    let mut engine = warmed(w);
    let live_before = engine.live_total();
    let webinars = engine.webinar_count();
    let events = w.events(&w.measured);
    let late = apply_all(&mut engine, &events);
    println!(
        "workload: {} webinars, {} viewers; warm-up {} records ({wp} pings, {wl} leaves, {wt} ticks); \
         measured {} records ({mp} pings, {ml} leaves, {mt} ticks)",
        w.spec.webinars,
        w.spec.viewers,
        w.warm.len(),
        w.measured.len(),
    );
    println!(
        "  live viewers at start of measurement {live_before} in {webinars} webinars, at end {}; \
         late records {late}; records applied {}",
        engine.live_total(),
        engine.counters().applied_total(),
    );
}

/// Profiling mode, outside criterion: `EVENTFLOW_BENCH_PROFILE=apply` (or
/// `decode_apply`, `apply_interned`) warms one engine, then runs the measured records once.
/// With `EVENTFLOW_BENCH_PERF_CTL=<fifo>` it writes `enable`/`disable` to
/// that fifo around the measured part, for
/// `perf record -D -1 --control=fifo:<fifo> ...`, so only it is sampled.
fn profile(mode: &str) {
    use std::io::Write as _;
    let workload = Workload::generate(Spec::standard());
    let ctl = std::env::var_os("EVENTFLOW_BENCH_PERF_CTL").map(|path| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("perf control fifo")
    });
    let perf = |cmd: &str| {
        if let Some(mut f) = ctl.as_ref() {
            f.write_all(cmd.as_bytes()).expect("perf control fifo");
        }
    };
    let mut engine = warmed(&workload);
    let n = workload.measured.len();
    // Inputs are built before and dropped after the profiled section.
    let events;
    let interned;
    let lines;
    let start;
    match mode {
        "apply" => {
            lines = workload.json_lines(&workload.measured);
            events = decode_all(&lines);
            perf("enable\n");
            start = Instant::now();
            black_box(apply_all(&mut engine, &events));
        }
        "apply_one_by_one" => {
            lines = workload.json_lines(&workload.measured);
            events = decode_all(&lines);
            perf("enable\n");
            start = Instant::now();
            black_box(apply_one_by_one(&mut engine, &events));
        }
        "apply_interned" => {
            // Events borrowing interned ids: each id is a random access.
            interned = workload.events(&workload.measured);
            perf("enable\n");
            start = Instant::now();
            black_box(apply_all(&mut engine, &interned));
        }
        "decode_apply" => {
            lines = workload.json_lines(&workload.measured);
            perf("enable\n");
            start = Instant::now();
            black_box(decode_apply_all(&mut engine, &lines));
        }
        other => panic!("EVENTFLOW_BENCH_PROFILE: unknown mode {other:?}"),
    }
    let elapsed = start.elapsed();
    perf("disable\n");
    println!(
        "profile {mode}: {n} records in {:.3} s = {:.2} M records/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// One criterion benchmark timing `run` on a freshly warmed engine per
/// iteration (warm-up and teardown untimed); returns its summary line.
fn bench_engine(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &'static str,
    workload: &Workload,
    records: usize,
    mut run: impl FnMut(&mut Engine) -> u64,
) -> Option<String> {
    let mut timings = Timings::new(name, records);
    group.throughput(Throughput::Elements(records as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut engine = warmed(workload);
                let start = Instant::now();
                black_box(run(&mut engine));
                let elapsed = start.elapsed();
                black_box(&engine);
                timings.runs.push(elapsed);
                total += elapsed;
            }
            total
        })
    });
    (!timings.runs.is_empty()).then(|| timings.summary())
}

fn main() {
    if let Ok(mode) = std::env::var("EVENTFLOW_BENCH_PROFILE") {
        return profile(&mode);
    }
    let mut c = Criterion::default().configure_from_args();
    let mut summaries = Vec::new();

    let t = Instant::now();
    let workload = Workload::generate(Spec::standard());
    println!("generated workload in {:.1} s", t.elapsed().as_secs_f64());
    describe(&workload);
    let n = workload.measured.len();

    let mut group = c.benchmark_group("presence");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(10));

    {
        let lines = workload.json_lines(&workload.measured);
        println!(
            "JSON lines: {} lines, {} bytes ({:.1} bytes/line)",
            lines.len(),
            lines.bytes.len(),
            lines.bytes.len() as f64 / lines.len() as f64
        );
        let events = decode_all(&lines);
        summaries.extend(bench_engine(
            &mut group,
            "apply_predecoded",
            &workload,
            n,
            |engine| apply_all(engine, black_box(&events)),
        ));
        summaries.extend(bench_engine(
            &mut group,
            "apply_predecoded_one_by_one",
            &workload,
            n,
            |engine| apply_one_by_one(engine, black_box(&events)),
        ));
        drop(events);
        summaries.extend(bench_engine(
            &mut group,
            "decode_apply",
            &workload,
            n,
            |engine| decode_apply_all(engine, black_box(&lines)),
        ));

        let mut timings = Timings::new("decode_only", n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("decode_only", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    for line in lines.iter() {
                        black_box(event::decode(black_box(line)).expect("valid line"));
                    }
                    let elapsed = start.elapsed();
                    timings.runs.push(elapsed);
                    total += elapsed;
                }
                total
            })
        });
        if !timings.runs.is_empty() {
            summaries.push(timings.summary());
        }
    }
    drop(workload);

    {
        let workload = Workload::generate(Spec {
            ticks: true,
            ..Spec::standard()
        });
        let lines = workload.json_lines(&workload.measured);
        let events = decode_all(&lines);
        summaries.extend(bench_engine(
            &mut group,
            "apply_predecoded_with_ticks",
            &workload,
            workload.measured.len(),
            |engine| apply_all(engine, black_box(&events)),
        ));
    }
    group.finish();
    c.final_summary();

    for s in summaries {
        println!("{s}");
    }
}
