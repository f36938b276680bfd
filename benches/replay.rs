//! `eventflow replay` throughput: MB/s of JSON Lines through
//! [`eventflow::replay::replay`] on one core.
//!
//! The log is the engine benchmark's workload from its start (10 000
//! webinars, 1 M viewers, 9 simulated minutes with the service's tick every
//! second; ~5.5 M lines, ~0.6 GB), serialised exactly as the service's
//! event log holds it. It is replayed from memory (the parsing, the engine
//! and the sorted output, not the disk) into a sink, three times; the
//! median run gives the `SUMMARY` line. The process's peak RSS before and
//! after shows what the replay itself added (the log's bytes are held
//! before it starts).
//!
//! `EVENTFLOW_BENCH_SCALE=0.1` replays a tenth of the audience;
//! `EVENTFLOW_BENCH_RUNS` sets the number of runs (3).

mod common;

use std::time::{Duration, Instant};

use common::{Spec, Workload};
use eventflow::replay::{self, ReplayOptions};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    // `Spec::standard` follows EVENTFLOW_BENCH_SCALE.
    let spec = Spec {
        ticks: true,
        ..Spec::standard()
    };
    let t = Instant::now();
    let workload = Workload::generate(spec);
    let mut log = workload.json_lines(&workload.warm).bytes;
    log.extend_from_slice(&workload.json_lines(&workload.measured).bytes);
    let lines = workload.warm.len() + workload.measured.len();
    drop(workload);
    println!(
        "replay benchmark: {lines} lines, {} bytes ({:.1} bytes/line), generated in {:.1} s",
        log.len(),
        log.len() as f64 / lines as f64,
        t.elapsed().as_secs_f64()
    );
    let runs: usize = std::env::var("EVENTFLOW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let rss_before = peak_rss_kib();
    let mut times = Vec::new();
    for run in 1..=runs {
        let start = Instant::now();
        let summary = replay::replay(&log[..], std::io::sink(), &ReplayOptions::default())
            .expect("replay from memory");
        let elapsed = start.elapsed();
        assert_eq!(summary.invalid, 0, "the generated log is valid");
        assert_eq!(summary.read, lines as u64, "every line is read");
        println!(
            "run {run}: {:.3} s = {:.0} MB/s, {:.2} M lines/s; {} applied, {} buckets",
            elapsed.as_secs_f64(),
            log.len() as f64 / elapsed.as_secs_f64() / 1e6,
            lines as f64 / elapsed.as_secs_f64() / 1e6,
            summary.applied,
            summary.buckets
        );
        times.push(elapsed);
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    let rss_after = peak_rss_kib();
    println!(
        "peak RSS: {:.1} MiB with the log in memory, {:.1} MiB after the replays (+{:.1} MiB)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    println!(
        "SUMMARY replay_mb_per_s {:.0} MB/s",
        log.len() as f64 / median.as_secs_f64() / 1e6
    );
    println!(
        "SUMMARY replay_lines_per_s {:.0} lines/s",
        lines as f64 / median.as_secs_f64()
    );
}
