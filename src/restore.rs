//! `eventflow restore`: loads event logs, with their historical timestamps,
//! into the configured stores exactly as a replay computes them (DESIGN §9).
//!
//! Inputs are our JSON Lines logs (plain or gzip, as the service writes and
//! compresses them) and the web app middleware's page-view log
//! (`logs/pageviews/YYYY-MM-DD.jsonl`: an ISO `timestamp`, a `query` object,
//! nullable fields, no `type` and no `id`), each line turned into a
//! `pageview` event whose `id` is derived from the line's content, so a
//! page view logged twice is one page view. The files are read as one
//! stream merged by `ts`: each file in its own order, ties taken in argument
//! order. A fresh engine applies the stream without a wall clock (no future
//! clamp), closes everything at the end of the input, and its rows are
//! written with the same idempotent upserts as the service's: restoring the
//! same files twice changes nothing. Session numbers continue those already
//! in the store, so restored days and the service's days share one
//! numbering.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde_json::Value;

use crate::engine::{Engine, EngineConfig};
use crate::event::{self, MAX_EVENT_ID_LEN};
use crate::replay::{Line, Lines};
use crate::sink::store::{Batch, Store};

/// Records applied between two writes to the store.
const WRITE_EVERY: u64 = 50_000;
/// How many invalid lines the summary describes one by one.
const INVALID_SHOWN: usize = 20;

/// What a restore read and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// Rows written (the same row written twice counts twice).
    pub rows: u64,
    /// The first `INVALID_SHOWN` invalid lines: file, line number, reason.
    pub first_invalid: Vec<(String, u64, String)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "restore: {} records read, {} applied, {} duplicates, {} invalid; {} rows written",
            self.read, self.applied, self.duplicates, self.invalid, self.rows
        )?;
        for (file, line, reason) in &self.first_invalid {
            writeln!(f, "  {file}:{line}: {reason}")?;
        }
        let more = self.invalid - self.first_invalid.len() as u64;
        if more > 0 {
            writeln!(f, "  ... and {more} more invalid lines")?;
        }
        Ok(())
    }
}

impl Summary {
    fn invalid(&mut self, file: &str, line: u64, reason: String) {
        if self.first_invalid.len() < INVALID_SHOWN {
            self.first_invalid.push((file.to_owned(), line, reason));
        }
        self.invalid += 1;
    }
}

/// A line of the middleware's page-view log as a `pageview` event, or
/// `None` when the line is not one (it has a `type`, or no `timestamp`).
pub fn middleware_pageview(line: &[u8]) -> Option<Result<String, String>> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(line) else {
        return None;
    };
    if map.contains_key("type") || !map.contains_key("timestamp") {
        return None;
    }
    Some((|| {
        let stamp = map.remove("timestamp").expect("checked above");
        let ts = stamp
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .ok_or("timestamp: must be an RFC 3339 instant (2026-02-02T18:46:00.000Z)")?
            .as_millisecond();
        // The log's `status` is its own word ("logged"), not an HTTP status.
        if !map.get("status").is_some_and(Value::is_u64) {
            map.remove("status");
        }
        map.retain(|_, v| !v.is_null());
        let id = format!("mw:{:032x}", xxhash_rust::xxh3::xxh3_128(line.trim_ascii()));
        debug_assert!(id.len() <= MAX_EVENT_ID_LEN);
        map.insert("type".into(), "pageview".into());
        map.insert("id".into(), id.into());
        map.insert("ts".into(), ts.into());
        Ok(Value::Object(map).to_string())
    })())
}

/// One input file: its lines, and the next valid record.
struct Input {
    name: String,
    lines: Lines<BufReader<Box<dyn Read>>>,
    line_no: u64,
    /// The next record: its `ts` (records without one come first), line
    /// number, and the event's JSON.
    head: Option<(i64, u64, Vec<u8>)>,
}

/// A reader that counts the bytes it reads (of the file, before any gzip).
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path, read: Arc<AtomicU64>) -> anyhow::Result<Box<dyn Read>> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    use std::io::Seek;
    file.rewind()?;
    let file = Counted { inner: file, read };
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// The total size of the files (for a progress bar over the bytes read).
pub fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

impl Input {
    /// Moves to the next valid record; invalid lines go to the summary.
    fn advance(&mut self, summary: &mut Summary) -> anyhow::Result<()> {
        self.head = None;
        loop {
            let line = match self
                .lines
                .next_line()
                .with_context(|| format!("reading {}", self.name))?
            {
                None => return Ok(()),
                Some(l) => l,
            };
            self.line_no += 1;
            let bytes = match line {
                Line::Text(b) => b,
                Line::TooLong(len) => {
                    summary.read += 1;
                    summary.invalid(&self.name, self.line_no, event::too_large(len).to_string());
                    continue;
                }
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            summary.read += 1;
            let json = match middleware_pageview(bytes) {
                Some(Ok(json)) => json.into_bytes(),
                Some(Err(reason)) => {
                    summary.invalid(&self.name, self.line_no, reason);
                    continue;
                }
                None => bytes.to_vec(),
            };
            match event::decode(&json) {
                Ok(ev) => {
                    let ts = ev.ts().unwrap_or(i64::MIN);
                    self.head = Some((ts, self.line_no, json));
                    return Ok(());
                }
                Err(e) => summary.invalid(&self.name, self.line_no, e.to_string()),
            }
        }
    }
}

/// How often, in records, `restore` reports its progress.
const PROGRESS_EVERY: u64 = 4096;

/// Restores `files` into `store`; `progress` is told now and then how many
/// bytes of the files were read.
pub async fn restore(
    store: &Store,
    config: EngineConfig,
    files: &[PathBuf],
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut inputs = Vec::new();
    let bytes_read = Arc::new(AtomicU64::new(0));
    for path in files {
        let reader = open(path, bytes_read.clone())?;
        let mut input = Input {
            name: path.display().to_string(),
            lines: Lines::new(BufReader::with_capacity(1 << 20, reader)),
            line_no: 0,
            head: None,
        };
        input.advance(&mut summary)?;
        inputs.push(input);
    }
    let mut engine = Engine::new(config)?;
    // The next record of each file, smallest `ts` first, ties by argument order.
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = inputs
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.head.as_ref().map(|h| Reverse((h.0, i))))
        .collect();
    let mut seeded = hashbrown::HashSet::new();
    let mut since_write = 0u64;
    while let Some(Reverse((_, i))) = heads.pop() {
        let (_, line_no, json) = inputs[i].head.take().expect("a queued file has a head");
        let ev = event::decode(&json).expect("decoded when it was read");
        if let Some(client) = ev.client_id()
            && seeded.insert(client.to_owned())
        {
            let known = store
                .campaign_sessions(client)
                .await
                .context("reading the store's session numbers")?;
            engine
                .seed_campaign_sessions(client, known)
                .map_err(|e| anyhow::anyhow!("campaign_sessions of client {client:?}: {e}"))?;
        }
        match engine.apply(&ev, None) {
            Ok(a) if a.duplicate => summary.duplicates += 1,
            Ok(_) => summary.applied += 1,
            Err(e) => summary.invalid(&inputs[i].name, line_no, e.to_string()),
        }
        drop(ev);
        if summary.read % PROGRESS_EVERY == 0 {
            progress(bytes_read.load(Ordering::Relaxed));
        }
        since_write += 1;
        if since_write >= WRITE_EVERY {
            since_write = 0;
            summary.rows += write(store, &mut engine).await?;
        }
        inputs[i].advance(&mut summary)?;
        if let Some(h) = &inputs[i].head {
            heads.push(Reverse((h.0, i)));
        }
    }
    engine.finish();
    summary.rows += write(store, &mut engine).await?;
    store
        .record_campaign_restore(jiff::Timestamp::now().as_millisecond())
        .await
        .context("recording the restore")?;
    progress(bytes_read.load(Ordering::Relaxed));
    Ok(summary)
}

/// Writes what the engine has emitted and the changed campaign rows.
async fn write(store: &Store, engine: &mut Engine) -> anyhow::Result<u64> {
    let batch = Batch::drained_from(engine);
    let rows = batch.rows() as u64;
    if rows > 0 {
        store
            .write(&batch, jiff::Timestamp::now().as_millisecond())
            .await
            .context("writing to the store")?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middleware_lines_become_pageviews_with_a_stable_id() {
        let text = r#"{"timestamp":"2026-02-02T18:46:00.000Z","path":"/event/149403","method":"GET","query":{"utm_source":"email","cid":"ABC123"},"referrer":null,"ip":"1.2.3.0","session_id":"session-1","campaign_id":"3a88682e-1","webinar_id":null,"client_id":"55317496-1","status":"logged"}"#;
        let line = text.as_bytes();
        let json = middleware_pageview(line).unwrap().unwrap();
        let ev = event::decode(json.as_bytes()).unwrap();
        let event::Event::Pageview(p) = &ev else {
            panic!("a page view: {json}");
        };
        assert_eq!(p.ts, Some(1_770_057_960_000));
        assert_eq!(p.status, None);
        assert_eq!(p.webinar_id, None);
        assert_eq!(p.utm().source.as_deref(), Some("email"));
        assert_eq!(p.query.as_deref(), Some("utm_source=email&cid=ABC123"));
        let again = middleware_pageview(line).unwrap().unwrap();
        assert_eq!(json, again, "the same line, the same id");
        let other = middleware_pageview(text.replace("session-1", "session-2").as_bytes())
            .unwrap()
            .unwrap();
        assert_ne!(
            event::decode(other.as_bytes()).unwrap().id(),
            ev.id(),
            "another line, another id"
        );
        // Our own events are not middleware lines.
        assert!(middleware_pageview(br#"{"type":"tick","ts":1}"#).is_none());
        let bad = middleware_pageview(br#"{"timestamp":"yesterday","path":"/"}"#).unwrap();
        assert!(bad.unwrap_err().starts_with("timestamp: must be"));
    }

    #[test]
    fn a_lines_other_fields_keep_their_exact_values() {
        // Past u64, a number is a float: it must be read correctly rounded,
        // or writing it back and reading it again gives a neighbour.
        let line = br#"{"timestamp":"1970-12-31T23:59:59.999Z","path":"/x","stat0s":4337333333333733333333304,"ratio":0.30000000000000004}"#;
        let json = middleware_pageview(line).unwrap().unwrap();
        let before: Value = serde_json::from_slice(line).unwrap();
        let after: Value = serde_json::from_str(&json).unwrap();
        for k in ["stat0s", "ratio", "path"] {
            assert_eq!(after[k], before[k], "{k} in {json}");
        }
    }
}
