//! Bytes the engine holds per live viewer, measured by a counting global
//! allocator: allocated bytes before `Engine::new` are subtracted from those
//! after feeding it (the workload itself is generated beforehand).
//!
//! Scenarios, all over 10 000 webinars with the skewed audience of
//! `common::webinar_sizes`:
//! - one ping each for 100 000, 540 000 (just past 2^19, the worst case
//!   for a slab that grows by doubling) and 1 000 000 distinct viewers, within
//!   100 s (less than the ttl, one bucket), so all are live;
//! - turnover within an hour: 1 M viewers join and leave, then 1 M others
//!   join (the open bucket, hour and day keep the first cohort's records);
//! - the same with the second cohort 2 h later (only the day counts the
//!   first cohort, as fingerprints);
//! - the engine benchmark's 9 simulated minutes (joins, pings, leaves,
//!   silent drops, rejoins, a bucket boundary), measured at its end.
//!
//! Live bytes are also broken down by allocation size class, which shows
//! what dominates (the viewer slab is one large block, each webinar's hash
//! index one small one). Target: ≤ 64 bytes per live viewer.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use common::{Spec, Workload, all_live_pings, scale};
use eventflow::engine::presence::{Viewer, Webinar};
use eventflow::engine::{Engine, EngineConfig};
use eventflow::event::Event;

/// Wraps the system allocator, counting live bytes and blocks, the peak, and
/// live bytes per power-of-two size class.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);
const CLASSES: usize = usize::BITS as usize;
static BY_CLASS: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

/// Size class `k` holds blocks of `[2^k, 2^(k+1))` bytes.
fn class(size: usize) -> usize {
    (usize::BITS - 1 - size.max(1).leading_zeros()) as usize
}

fn added(size: usize) {
    let now = CURRENT.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(now, Relaxed);
    BY_CLASS[class(size)].fetch_add(size, Relaxed);
}

fn removed(size: usize) {
    CURRENT.fetch_sub(size, Relaxed);
    BY_CLASS[class(size)].fetch_sub(size, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            added(layout.size());
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            added(layout.size());
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        removed(layout.size());
        BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as alloc-then-free: a moving realloc briefly holds both.
            added(new_size);
            removed(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocator state at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    bytes: usize,
    blocks: usize,
    classes: [usize; CLASSES],
}

fn snapshot() -> Snapshot {
    Snapshot {
        bytes: CURRENT.load(Relaxed),
        blocks: BLOCKS.load(Relaxed),
        classes: std::array::from_fn(|k| BY_CLASS[k].load(Relaxed)),
    }
}

fn human(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn size_class_name(k: usize) -> String {
    let unit = |b: usize| match b {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    };
    format!("[{}, {})", unit(1 << k), unit(1 << (k + 1)))
}

/// Runs `feed` on a fresh engine and reports what the engine holds.
fn measure(title: &str, feed: impl FnOnce(&mut Engine)) -> f64 {
    let before = snapshot();
    PEAK.store(before.bytes, Relaxed);
    let mut engine = Engine::new(EngineConfig::default()).expect("default config is valid");
    feed(&mut engine);
    engine.drain().for_each(drop);
    let after = snapshot();
    let peak = PEAK.load(Relaxed) - before.bytes;
    let live = engine.live_total();
    let bytes = after.bytes - before.bytes;
    let per = bytes as f64 / live as f64;
    println!("== {title}");
    println!("  live viewers           {live}");
    println!(
        "  viewer slab            {} B ({:.1} per live viewer)",
        engine.viewer_bytes(),
        engine.viewer_bytes() as f64 / live as f64
    );
    println!(
        "  webinar records        {} B ({:.1} per live viewer, {} B each)",
        engine.webinar_bytes(),
        engine.webinar_bytes() as f64 / live as f64,
        std::mem::size_of::<Webinar>()
    );
    println!("  webinars held          {}", engine.webinar_count());
    println!("  engine bytes           {bytes} ({})", human(bytes));
    println!(
        "  bytes per live viewer  {per:.1}   (target <= 64: {})",
        if per <= 64.0 { "met" } else { "MISSED" }
    );
    println!(
        "  peak engine bytes      {peak} ({}), {:.1} per live viewer",
        human(peak),
        peak as f64 / live as f64
    );
    println!(
        "  engine allocations     {} live blocks",
        after.blocks - before.blocks
    );
    println!("  live bytes by block size (share of engine bytes, bytes per live viewer):");
    for k in (0..CLASSES).rev() {
        let d = after.classes[k] as isize - before.classes[k] as isize;
        if d != 0 {
            println!(
                "    {:>20} {:>12} B {:>5.1} % {:>6.1}",
                size_class_name(k),
                d,
                d as f64 * 100.0 / bytes as f64,
                d as f64 / live as f64
            );
        }
    }
    drop(engine);
    per
}

/// hashbrown's bucket count for `n` items (load factor 7/8, powers of two).
fn hash_buckets(n: usize) -> usize {
    match n {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        n => (n * 8 / 7).next_power_of_two(),
    }
}

/// What the parts should weigh for `n` viewers, all live: the records
/// themselves (the slab as actually held is printed above), each webinar's
/// hash index, and the per-webinar records (capacity of the webinar `Vec`
/// included).
fn estimate(webinars: u32, viewers: u32) {
    let sizes = common::webinar_sizes(webinars, viewers);
    let v = std::mem::size_of::<Viewer>();
    // Per webinar: buckets × (u32 + control byte) + 16 trailing control bytes.
    let index: usize = sizes
        .iter()
        .map(|&n| hash_buckets(n as usize) * 5 + 16)
        .sum();
    let w = std::mem::size_of::<Webinar>();
    // The webinar Vec grows by an eighth (at least 64 slots) when full.
    let mut slots = 0usize;
    while slots < webinars as usize {
        slots += (slots / 8).max(64);
    }
    let n = f64::from(viewers);
    println!(
        "  estimate: records {v} B/viewer; hash indexes {:.1} B/viewer; \
         webinar records ({w} B x {slots} slots) {:.1} B/viewer",
        index as f64 / n,
        (slots * w) as f64 / n,
    );
}

fn feed_events(engine: &mut Engine, events: &[Event<'static>]) {
    for e in events {
        engine.apply(e, None).expect("ts is set");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let s = scale();
    let webinars = ((10_000.0 * s) as u32).max(1);
    let mut results = Vec::new();
    let mut all_live = Vec::new();
    // 540 000 is just past 2^19: the worst case for a slab that doubles.
    for base in [100_000u32, 540_000, 1_000_000] {
        let viewers = ((f64::from(base) * s) as u32).max(webinars);
        let events = all_live_pings(webinars, viewers, 100_000, 7);
        let title = format!(
            "{viewers} distinct viewers, one ping each within 100 s, {webinars} webinars (all live)"
        );
        let per = measure(&title, |engine| feed_events(engine, &events));
        estimate(webinars, viewers);
        results.push((format!("all live, {viewers} viewers"), per));
        all_live.push((base, per));
    }

    let events = common::turnover(webinars, ((1_000_000.0 * s) as u32).max(webinars), 11, 0);
    let per = measure(
        "turnover within one hour: 1 M viewers joined and left, then 1 M others joined \
         (the open bucket, hour and day still count the first cohort)",
        |engine| feed_events(engine, &events),
    );
    results.push(("turnover, 1 M live + 1 M left this hour".into(), per));
    drop(events);
    let events = common::turnover(
        webinars,
        ((1_000_000.0 * s) as u32).max(webinars),
        11,
        7_200_000,
    );
    let per = measure(
        "turnover across hours: 1 M viewers joined and left, 2 h later 1 M others joined \
         (only the day counts the first cohort: fingerprints)",
        |engine| feed_events(engine, &events),
    );
    results.push((
        "turnover, 1 M live + 1 M left 2 h earlier today".into(),
        per,
    ));
    drop(events);

    // Events are built on the fly from compact records: that allocates
    // nothing, and it keeps 9 M decoded events (400 B each) out of memory.
    let workload = Workload::generate(Spec::standard());
    let feed = |engine: &mut Engine, recs: &[common::Rec]| {
        for r in recs {
            engine.apply(&workload.event(r), None).expect("ts is set");
        }
    };
    let per = measure(
        "steady state after the 4 min warm-up of the engine benchmark",
        |engine| feed(engine, &workload.warm),
    );
    results.push(("workload after warm-up (4 min)".into(), per));
    let per = measure(
        "end of the engine benchmark's 9 simulated minutes (churn, one bucket closed)",
        |engine| {
            feed(engine, &workload.warm);
            feed(engine, &workload.measured);
        },
    );
    results.push(("workload at end (9 min)".into(), per));

    println!();
    for (name, per) in &results {
        println!("SUMMARY {name}: {per:.1} bytes per live viewer");
    }
    // Machine-readable figures for `scripts/bench`.
    for (base, per) in all_live {
        if let Some(key) = size_key(base) {
            println!("SUMMARY engine_bytes_per_viewer_{key} {per:.1} bytes");
        }
    }

    // The whole service: its peak RSS with that many viewers live.
    for base in [100_000u32, 1_000_000] {
        let viewers = ((f64::from(base) * s) as u32).max(webinars);
        let (peak, now) = service_rss(webinars, viewers);
        let mb = |b: u64| b as f64 / 1_048_576.0;
        println!(
            "service process with {viewers} live viewers: peak RSS {:.1} MiB, RSS {:.1} MiB ({:.0} bytes per viewer)",
            mb(peak),
            mb(now),
            now as f64 / f64::from(viewers)
        );
        if let Some(key) = size_key(base) {
            println!("SUMMARY service_peak_rss_{key} {:.1} MiB", mb(peak));
        }
    }
}

/// The summary key of an audience size (at scale 1).
fn size_key(viewers: u32) -> Option<&'static str> {
    match viewers {
        100_000 => Some("100k"),
        1_000_000 => Some("1m"),
        _ => None,
    }
}

/// Starts the release `eventflow` binary (embedded mode), makes `viewers`
/// viewers live through `POST /api/events` batches, waits until the engine
/// holds them all, and reads the process's peak and current RSS (bytes)
/// from `/proc`.
fn service_rss(webinars: u32, viewers: u32) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_eventflow"))
        .env("EVENTFLOW__DATA__DIR", dir.path())
        .env("EVENTFLOW__HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("EVENTFLOW__HTTP__RATE_LIMIT_PER_SEC", "0")
        .env("EVENTFLOW__LIMITS__NEW_ENTITIES_PER_MINUTE", "0")
        .env(
            "EVENTFLOW__AUTH__SECRET",
            "bench-signing-key-0f3e5d7c9b1a2f4e6d8c0b2a",
        )
        // Ticks stay ten years behind the workload's times: nobody expires.
        .env("EVENTFLOW__WINDOW__IDLE_LAG_MS", "315360000000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the eventflow binary starts");
    // Killed however this function ends, a failed assertion included.
    struct Service(std::process::Child);
    impl Drop for Service {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Service(child);
    let token = eventflow::auth::Signer::new(b"bench-signing-key-0f3e5d7c9b1a2f4e6d8c0b2a").mint(
        eventflow::auth::Scope::Admin,
        jiff::Timestamp::now().as_millisecond() + 3_600_000,
    );
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while client.get(format!("{base}/readyz")).send().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "the service starts");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let events = all_live_pings(webinars, viewers, 100_000, 7);
        for chunk in events.chunks(10_000) {
            let mut body = String::with_capacity(chunk.len() * 100);
            for e in chunk {
                body.push_str(&e.to_json());
                body.push('\n');
            }
            let r = client
                .post(format!("{base}/api/events"))
                .bearer_auth(&token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        let want = format!("eventflow_live_viewers {viewers}");
        loop {
            let m = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if m.lines().any(|l| l == want) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline + std::time::Duration::from_secs(60),
                "all viewers live"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id())).unwrap();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}
