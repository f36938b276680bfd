//! `eventflow replay`: runs the engine over a JSON Lines log and writes the
//! final presence buckets in the "Replay output" format of DESIGN §6,
//! ordered by `webinar_id`, then `bucket_start`.
//!
//! Memory stays bounded however long the log: lines are read into one
//! reused buffer (a line over the event size limit is skipped, not kept),
//! the engine holds only live state, and output rows are sorted in memory up
//! to a limit, beyond which sorted runs spill to temporary files and are
//! merged at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::sync::Arc;

use crate::engine::{Engine, EngineConfig, Output, PresenceBucket};
use crate::event::{self, MAX_EVENT_BYTES};

/// How many invalid lines the summary describes one by one.
pub const INVALID_SHOWN: usize = 10;

/// Output rows sorted in memory before spilling a run to disk
/// (about 100 bytes each).
pub const DEFAULT_SORT_BUFFER_ROWS: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub engine: EngineConfig,
    pub sort_buffer_rows: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            engine: EngineConfig::default(),
            sort_buffer_rows: DEFAULT_SORT_BUFFER_ROWS,
        }
    }
}

/// What a replay read and did, printed on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    pub applied: u64,
    pub invalid: u64,
    pub late: u64,
    pub clamped: u64,
    /// Records whose `id` repeated one within the dedupe window.
    pub duplicates: u64,
    pub buckets: u64,
    /// The first [`INVALID_SHOWN`] invalid lines: line number and reason.
    pub first_invalid: Vec<(u64, String)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay: {} records read, {} applied, {} invalid, {} late, {} clamped",
            self.read, self.applied, self.invalid, self.late, self.clamped
        )?;
        if self.duplicates > 0 {
            write!(f, ", {} duplicates", self.duplicates)?;
        }
        writeln!(f, "; {} buckets written", self.buckets)?;
        for (line, reason) in &self.first_invalid {
            writeln!(f, "  line {line}: {reason}")?;
        }
        let more = self.invalid - self.first_invalid.len() as u64;
        if more > 0 {
            writeln!(f, "  ... and {more} more invalid lines")?;
        }
        Ok(())
    }
}

/// Replays `input` and writes the final presence buckets to `output`.
pub fn replay(
    input: impl Read,
    output: impl Write,
    opts: &ReplayOptions,
) -> anyhow::Result<Summary> {
    let mut engine = Engine::new(opts.engine.clone())?;
    let mut sorter = Sorter::new(opts.sort_buffer_rows);
    let mut summary = Summary::default();
    let mut blocks = Blocks::new(input);
    let mut line_no = 0u64;
    while let Some(block) = blocks.next_block()? {
        // The block's events, borrowing its text, and their line numbers.
        let mut events = Vec::with_capacity(block.text.len() / 64);
        let mut numbers = Vec::with_capacity(block.text.len() / 64);
        for line in block.lines() {
            line_no += 1;
            let bytes = match line {
                Line::Text(bytes) => bytes,
                Line::TooLong(len) => {
                    summary.read += 1;
                    summary.record_invalid(line_no, event::too_large(len).to_string());
                    continue;
                }
            };
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            summary.read += 1;
            match event::decode(bytes) {
                Ok(ev) => {
                    events.push(ev);
                    numbers.push(line_no);
                }
                Err(e) => summary.record_invalid(line_no, e.to_string()),
            }
        }
        engine.apply_all(
            &events,
            |_| None,
            |i, result| match result {
                Ok(a) if a.duplicate => summary.duplicates += 1,
                Ok(_) => summary.applied += 1,
                Err(e) => summary.record_invalid(numbers[i], e.to_string()),
            },
        );
        for out in engine.drain() {
            if let Output::Presence(bucket) = out {
                sorter.push(bucket)?;
            }
        }
    }
    engine.finish();
    for out in engine.drain() {
        if let Output::Presence(bucket) = out {
            sorter.push(bucket)?;
        }
    }
    summary.late = engine.counters().late;
    summary.clamped = engine.counters().clamped;
    summary.buckets = sorter.finish(output)?;
    Ok(summary)
}

impl Summary {
    fn record_invalid(&mut self, line: u64, reason: String) {
        if self.first_invalid.len() < INVALID_SHOWN {
            self.first_invalid.push((line, reason));
        }
        self.invalid += 1;
    }
}

pub(crate) enum Line<'a> {
    Text(&'a [u8]),
    /// A line over the size limit, skipped without being kept; its length.
    TooLong(usize),
}

/// Newline-separated lines, each at most one event long in memory.
pub(crate) struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Lines {
            reader,
            buf: Vec::with_capacity(MAX_EVENT_BYTES + 2),
        }
    }

    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut len = 0usize;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            len += part.len();
            if self.buf.len() <= MAX_EVENT_BYTES + 1 {
                let room = (MAX_EVENT_BYTES + 2).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&part[..part.len().min(room)]);
            }
            let consumed = done.unwrap_or(chunk.len());
            self.reader.consume(consumed);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\r') && len <= MAX_EVENT_BYTES + 1 {
            self.buf.pop();
            len -= 1;
        }
        if len > MAX_EVENT_BYTES {
            return Ok(Some(Line::TooLong(len)));
        }
        Ok(Some(Line::Text(&self.buf)))
    }
}

/// Bytes read from a replay's input at a time.
const BLOCK: usize = 1 << 20;

/// A replay's input in blocks of whole lines, read into one buffer of
/// [`BLOCK`] bytes and handed out without copying each line. A line longer
/// than the buffer is skipped as it is read, never held.
struct Blocks<R> {
    reader: R,
    buf: Box<[u8]>,
    /// Bytes of `buf` read and not yet handed out start at `from`, end at `len`.
    from: usize,
    len: usize,
    eof: bool,
}

/// Whole lines of the input, after a line too long to hold if one came
/// before them.
struct Block<'a> {
    skipped: Option<usize>,
    text: &'a [u8],
}

impl<R: Read> Blocks<R> {
    fn new(reader: R) -> Self {
        Blocks {
            reader,
            buf: vec![0; BLOCK.max(2 * MAX_EVENT_BYTES + 2)].into_boxed_slice(),
            from: 0,
            len: 0,
            eof: false,
        }
    }

    fn next_block(&mut self) -> io::Result<Option<Block<'_>>> {
        self.buf.copy_within(self.from..self.len, 0);
        self.len -= self.from;
        self.from = 0;
        let mut skipped: Option<usize> = None;
        // Where the search for a newline goes on from.
        let mut searched = 0;
        loop {
            if let Some(last) = memchr::memrchr(b'\n', &self.buf[searched..self.len]) {
                let end = searched + last + 1;
                self.from = end;
                return Ok(Some(Block {
                    skipped,
                    text: &self.buf[..end],
                }));
            }
            searched = self.len;
            if self.eof {
                if self.len == 0 && skipped.is_none() {
                    return Ok(None);
                }
                self.from = self.len;
                return Ok(Some(Block {
                    skipped,
                    text: &self.buf[..self.len],
                }));
            }
            if self.len == self.buf.len() {
                // One line fills the buffer: far over the limit. Count it
                // and drop what was read of it.
                *skipped.get_or_insert(0) += self.len;
                self.len = 0;
                searched = 0;
                if let Some(end) = self.skip_rest(&mut skipped)? {
                    return Ok(Some(Block {
                        skipped,
                        text: &self.buf[..end],
                    }));
                }
                continue;
            }
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads past the rest of a skipped line; once its newline came, the
    /// bytes after it are kept and the end of the lines among them, if any
    /// whole one, is returned.
    fn skip_rest(&mut self, skipped: &mut Option<usize>) -> io::Result<Option<usize>> {
        loop {
            let n = match self.reader.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(None);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match memchr::memchr(b'\n', &self.buf[..n]) {
                None => *skipped.get_or_insert(0) += n,
                Some(i) => {
                    *skipped.get_or_insert(0) += i;
                    self.buf.copy_within(i + 1..n, 0);
                    self.len = n - i - 1;
                    return Ok(memchr::memrchr(b'\n', &self.buf[..self.len]).map(|j| {
                        self.from = j + 1;
                        j + 1
                    }));
                }
            }
        }
    }
}

impl<'a> Block<'a> {
    /// The block's lines in order, without their newlines (or a carriage
    /// return before one).
    fn lines(&self) -> impl Iterator<Item = Line<'a>> + 'a {
        let text = self.text;
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let whole = (!self.text.is_empty()).then(|| text.split(|&b| b == b'\n'));
        self.skipped
            .map(Line::TooLong)
            .into_iter()
            .chain(whole.into_iter().flatten().map(|line| {
                let line = match line.strip_suffix(b"\r") {
                    Some(l) if line.len() <= MAX_EVENT_BYTES + 1 => l,
                    _ => line,
                };
                if line.len() > MAX_EVENT_BYTES {
                    Line::TooLong(line.len())
                } else {
                    Line::Text(line)
                }
            }))
    }
}

/// Orders output rows by (webinar, bucket start) in bounded memory.
struct Sorter {
    limit: usize,
    rows: Vec<PresenceBucket>,
    runs: Vec<std::fs::File>,
}

impl Sorter {
    fn new(limit: usize) -> Self {
        Sorter {
            limit: limit.max(1),
            rows: Vec::new(),
            runs: Vec::new(),
        }
    }

    fn push(&mut self, row: PresenceBucket) -> io::Result<()> {
        self.rows.push(row);
        if self.rows.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn sort(&mut self) {
        self.rows.sort_unstable_by(|a, b| {
            (&a.webinar_id, a.stats.bucket_start).cmp(&(&b.webinar_id, b.stats.bucket_start))
        });
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort();
        let mut file = BufWriter::new(tempfile::tempfile()?);
        let mut line = String::new();
        for row in self.rows.drain(..) {
            line.clear();
            row.write_json_line(&mut line);
            file.write_all(line.as_bytes())?;
        }
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.runs.push(file);
        Ok(())
    }

    /// Writes every row in order; returns how many.
    fn finish(mut self, output: impl Write) -> io::Result<u64> {
        let mut out = BufWriter::with_capacity(1 << 16, output);
        let mut written = 0u64;
        let mut line = String::new();
        if self.runs.is_empty() {
            self.sort();
            for row in &self.rows {
                line.clear();
                row.write_json_line(&mut line);
                out.write_all(line.as_bytes())?;
                written += 1;
            }
        } else {
            if !self.rows.is_empty() {
                self.spill()?;
            }
            let mut readers: Vec<_> = self.runs.into_iter().map(BufReader::new).collect();
            let mut heap = BinaryHeap::new();
            for (i, r) in readers.iter_mut().enumerate() {
                if let Some(head) = RunHead::read(r)? {
                    heap.push(Reverse((head, i)));
                }
            }
            while let Some(Reverse((head, i))) = heap.pop() {
                out.write_all(head.line.as_bytes())?;
                written += 1;
                if let Some(next) = RunHead::read(&mut readers[i])? {
                    heap.push(Reverse((next, i)));
                }
            }
        }
        out.flush()?;
        Ok(written)
    }
}

/// The next line of a sorted run, with its sort key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct RunHead {
    webinar_id: Arc<str>,
    bucket_start: i64,
    line: String,
}

impl RunHead {
    fn read(r: &mut impl BufRead) -> io::Result<Option<RunHead>> {
        #[derive(serde::Deserialize)]
        struct Key<'a> {
            webinar_id: &'a str,
            bucket_start: i64,
        }
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let key: Key<'_> = serde_json::from_str(&line).map_err(io::Error::other)?;
        Ok(Some(RunHead {
            webinar_id: key.webinar_id.into(),
            bucket_start: key.bucket_start,
            line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, opts: &ReplayOptions) -> (String, Summary) {
        let mut out = Vec::new();
        let summary = replay(input.as_bytes(), &mut out, opts).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    fn small() -> ReplayOptions {
        ReplayOptions {
            engine: EngineConfig {
                bucket_ms: 100,
                ttl_ms: 150,
                ..EngineConfig::default()
            },
            ..ReplayOptions::default()
        }
    }

    fn ping(w: &str, v: &str, ts: i64) -> String {
        format!(
            r#"{{"type":"presence","webinar_id":"{w}","viewer_id":"{v}","action":"ping","ts":{ts}}}"#
        )
    }

    #[test]
    fn invalid_lines_are_counted_and_described_without_stopping() {
        let input = [
            ping("w", "a", 0),
            "not json".into(),
            String::new(),
            r#"{"type":"presence","webinar_id":"w","viewer_id":"b","action":"ping"}"#.into(),
            ping("w", "b", 10),
        ]
        .join("\n");
        let (out, s) = run(&input, &small());
        assert_eq!((s.read, s.applied, s.invalid), (4, 2, 2));
        assert_eq!(s.first_invalid[0].0, 2);
        assert!(s.first_invalid[0].1.starts_with("event: is not valid JSON"));
        assert_eq!(
            s.first_invalid[1],
            (
                4,
                "ts: is required (stamp events on arrival before applying them)".into()
            )
        );
        assert_eq!(out.lines().count(), 2);
        assert!(s.to_string().contains("line 4: ts: is required"));
    }

    #[test]
    fn redelivered_ids_are_counted_apart() {
        let line = r#"{"type":"presence","id":"e1","webinar_id":"w","viewer_id":"a","action":"ping","ts":5}"#;
        let (out, s) = run(&[line, line].join("\n"), &small());
        assert_eq!((s.read, s.applied, s.duplicates), (2, 1, 1));
        assert!(s.to_string().contains("0 clamped, 1 duplicates; "));
        assert!(out.contains("\"pings\":1,"));
    }

    #[test]
    fn a_checkpoint_resumes_exactly() {
        let log = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/realistic.jsonl"
        ))
        .unwrap();
        let lines: Vec<&str> = log.lines().collect();
        let rows = |e: &mut Engine, out: &mut Vec<Output>| out.extend(e.drain());
        let apply = |e: &mut Engine, l: &str| {
            e.apply(&event::decode(l.as_bytes()).unwrap(), None)
                .unwrap();
        };
        let mut whole = Engine::new(EngineConfig::default()).unwrap();
        let mut expected = Vec::new();
        for l in &lines {
            apply(&mut whole, l);
            rows(&mut whole, &mut expected);
        }
        whole.finish();
        rows(&mut whole, &mut expected);
        for cut in [1, lines.len() / 3, lines.len() / 2, lines.len() - 1] {
            let mut first = Engine::new(EngineConfig::default()).unwrap();
            let mut got = Vec::new();
            for l in &lines[..cut] {
                apply(&mut first, l);
                rows(&mut first, &mut got);
            }
            let mut second = Engine::restore(EngineConfig::default(), &first.save()).unwrap();
            for l in &lines[cut..] {
                apply(&mut second, l);
                rows(&mut second, &mut got);
            }
            second.finish();
            rows(&mut second, &mut got);
            assert_eq!(got, expected, "resumed after line {cut}");
            assert_eq!(second.counters(), whole.counters());
        }
        let other = EngineConfig {
            bucket_ms: 60_000,
            ..EngineConfig::default()
        };
        let err = Engine::restore(other, &whole.save())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bucket_ms=300000") && err.contains("bucket_ms=60000"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_line_is_skipped_in_bounded_memory() {
        let huge = format!(
            r#"{{"type":"tick","ts":1,"pad":"{}"}}"#,
            "x".repeat(5 * MAX_EVENT_BYTES)
        );
        let input = format!("{}\r\n{huge}\n{}", ping("w", "a", 0), ping("w", "a", 20));
        let (_, s) = run(&input, &small());
        assert_eq!((s.read, s.applied, s.invalid), (3, 2, 1));
        assert!(
            s.first_invalid[0].1.contains("at most 16384 bytes"),
            "{:?}",
            s.first_invalid
        );
    }

    /// Hands out at most a few bytes per read, so lines straddle every
    /// possible boundary between reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_read_in_pieces_and_lines_longer_than_a_block_replay_alike() {
        let longer_than_a_block = format!(
            r#"{{"type":"tick","ts":1,"pad":"{}"}}"#,
            "x".repeat(BLOCK + 3)
        );
        let long = longer_than_a_block.len();
        let mut lines = vec![ping("w", "a", 0), String::new(), "not json".into()];
        lines.push(longer_than_a_block.clone());
        lines.push(ping("w", "b", 10) + "\r");
        lines.push("x".repeat(MAX_EVENT_BYTES + 1));
        lines.push(longer_than_a_block);
        lines.push(ping("w", "a", 20));
        let input = lines.join("\n");
        let whole = run(&input, &small());
        let mut out = Vec::new();
        let trickled = replay(Trickle(input.as_bytes(), 0), &mut out, &small()).unwrap();
        assert_eq!((String::from_utf8(out).unwrap(), trickled), whole);
        let s = whole.1;
        assert_eq!((s.read, s.applied, s.invalid), (7, 3, 4), "{s:?}");
        let numbers: Vec<u64> = s.first_invalid.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [3, 4, 6, 7]);
        assert!(
            s.first_invalid[1].1.contains(&format!("is {long} bytes")),
            "{:?}",
            s.first_invalid
        );
        // Ending on a skipped line, with no newline after it.
        let input = format!("{}\n{}", ping("w", "a", 0), "y".repeat(2 * BLOCK));
        let (_, s) = run(&input, &small());
        assert_eq!((s.read, s.applied, s.invalid), (2, 1, 1));
    }

    #[test]
    fn output_is_ordered_by_webinar_then_bucket_even_when_spilled() {
        let mut lines = Vec::new();
        for t in (0..2_000).step_by(50) {
            for w in ["w-c", "w-a", "w-b"] {
                lines.push(ping(w, "v", t));
            }
        }
        let input = lines.join("\n");
        let (in_memory, s1) = run(&input, &small());
        let (spilled, s2) = run(
            &input,
            &ReplayOptions {
                sort_buffer_rows: 7,
                ..small()
            },
        );
        assert_eq!(in_memory, spilled);
        assert_eq!(s1, s2);
        let keys: Vec<(String, i64)> = in_memory
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["webinar_id"].as_str().unwrap().to_owned(),
                    v["bucket_start"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // Pings every 50 ms up to 1950 keep one viewer live until 2100, where
        // the expiry falls in bucket 2100: buckets 0..=2100 for each webinar.
        assert_eq!(keys.len(), 3 * 22);
        assert_eq!(s1.buckets, 66);
    }
}
