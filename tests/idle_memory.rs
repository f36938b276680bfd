//! What an idle webinar costs: once nobody is live and its buckets and hour
//! are final, a webinar keeps only what its open day still needs (its
//! clock, the day's window and the fingerprints of the day's viewers), in
//! the engine and in the live hub, until the day closes and it goes
//! entirely. Measured by a counting global allocator, so the figures are
//! exact and repeatable.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use eventflow::engine::presence::Webinar;
use eventflow::engine::{Engine, EngineConfig};
use eventflow::event::{Event, Presence, PresenceAction, Tick};
use eventflow::sink::live::{LiveHub, LiveState};

struct Counting;

static CURRENT: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size() as isize, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size() as isize, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const WEBINARS: usize = 4_000;
const VIEWERS: usize = 30;
/// 2026-11-30T00:10:00Z: the day (UTC) has ~24 h to run.
const T0: i64 = 1_795_997_400_000;
const MINUTE: i64 = 60_000;

fn ping(w: &str, v: &str, ts: i64) -> Event<'static> {
    Event::Presence(Presence {
        id: None,
        webinar_id: Cow::Owned(w.to_owned()),
        viewer_id: Cow::Owned(v.to_owned()),
        action: PresenceAction::Ping,
        ts: Some(ts),
    })
}

/// Publishes the changed webinars' states to the hub, as the pipeline does.
fn publish(engine: &mut Engine, hub: &LiveHub) {
    engine.drain().for_each(drop);
    let tick = engine.tick_clock().unwrap_or(0);
    engine.take_changed(|id, snapshot| match snapshot {
        Some(s) => {
            hub.publish(id, LiveState::from(s));
        }
        None => hub.forget(id, tick),
    });
}

fn held() -> isize {
    CURRENT.load(Relaxed)
}

#[test]
fn an_idle_webinar_keeps_only_what_its_open_day_needs() {
    let ids: Vec<String> = (0..WEBINARS).map(|w| format!("webinar-{w:05}")).collect();
    let viewers: Vec<String> = (0..VIEWERS).map(|v| format!("viewer-{v:03}")).collect();
    let base = held();
    let hub = LiveHub::new();
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    engine.apply(&Event::Tick(Tick { ts: T0 }), None).unwrap();
    // Everyone watches for 40 minutes, pinging every minute.
    for minute in 0..40 {
        let ts = T0 + minute * MINUTE;
        for w in &ids {
            for v in &viewers {
                engine.apply(&ping(w, v, ts), None).unwrap();
            }
        }
        engine.apply(&Event::Tick(Tick { ts }), None).unwrap();
        publish(&mut engine, &hub);
    }
    let busy = held() - base;
    // Two hours later nobody is live, every bucket and the hour are final;
    // the day (UTC) is still open and counts all 30 viewers of each.
    for ts in [T0 + 160 * MINUTE, T0 + 160 * MINUTE + 1_000] {
        engine.apply(&Event::Tick(Tick { ts }), None).unwrap();
        publish(&mut engine, &hub);
    }
    assert_eq!(engine.live_total(), 0);
    assert_eq!(engine.webinar_count(), WEBINARS, "the open day is kept");
    let idle = held() - base;
    let per_busy = busy as f64 / WEBINARS as f64;
    let per_idle = idle as f64 / WEBINARS as f64;
    println!(
        "bytes per webinar: {per_busy:.0} with {VIEWERS} live viewers, {per_idle:.0} idle \
         (engine and live hub)"
    );
    let v = VIEWERS as f64;
    // What stays once the webinar is gone: the viewer slab's room, kept for
    // reuse (bounded by the peak of live viewers: 40-byte records in 16 Ki
    // pages), and the overview's history of who watched on which day (a
    // fingerprint, an index slot and a bitmap entry per viewer-day).
    let kept_anyway = v * 44.0 + v * 26.0 + 160.0;
    // What the open day needs: the webinar's record and index slot, its
    // viewers' 16-byte fingerprints (in a hash set: at most ~2.3× room and a
    // control byte each), and its latest state in the live hub.
    let record = (std::mem::size_of::<Webinar>() + 64) as f64;
    let day_needs = record + v * 2.3 * 17.0 + 384.0;
    assert!(
        per_idle <= kept_anyway + day_needs,
        "an idle webinar holds {per_idle:.0} bytes; its open day needs ≤ {day_needs:.0} \
         beside {kept_anyway:.0} kept anyway"
    );
    // When the day closes it goes entirely.
    engine
        .apply(
            &Event::Tick(Tick {
                ts: T0 + 25 * 60 * MINUTE,
            }),
            None,
        )
        .unwrap();
    publish(&mut engine, &hub);
    assert_eq!(engine.webinar_count(), 0);
    let after_day = held() - base;
    let per_after = after_day as f64 / WEBINARS as f64;
    println!("bytes per webinar after its day closed: {per_after:.0}");
    assert!(
        per_after <= kept_anyway,
        "{per_after:.0} bytes per webinar remain after every day closed (≤ {kept_anyway:.0} expected)"
    );
}
