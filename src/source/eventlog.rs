//! The local event log (DESIGN §7): the source of truth in embedded mode.
//!
//! One JSON Lines file per UTC day, `data/log/YYYY-MM-DD.jsonl`, each line one
//! masked, stamped event exactly as the engine will read it. The
//! [`LogWriter`] appends with a group commit: every append waiting while a
//! write is in flight joins the next batch, and the whole batch shares one
//! `fdatasync`, after which each caller learns the position its lines end
//! at. Nothing is acknowledged before it is on disk.
//!
//! The committed position is published on a `watch` channel; the engine's
//! [`LogReader`] follows it, so recovery after a restart and live operation
//! read the log the same way. Old files are compressed and deleted by
//! [`housekeeping`], never while a checkpoint still needs them.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::MAX_EVENT_BYTES;

/// A place in the log: the day's file and a byte offset in it (uncompressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub day: Date,
    pub offset: u64,
}

impl Position {
    /// The beginning of the log.
    pub const START: Position = Position {
        day: Date::constant(1970, 1, 1),
        offset: 0,
    };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.day, self.offset)
    }
}

impl FromStr for Position {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (day, offset) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?} is not DAY:OFFSET"))?;
        Ok(Position {
            day: day.parse().map_err(|e| format!("{s:?}: {e}"))?,
            offset: offset.parse().map_err(|e| format!("{s:?}: {e}"))?,
        })
    }
}

/// The UTC day of a time in milliseconds since the epoch.
pub fn utc_day(ms: i64) -> Date {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn file_name(day: Date) -> String {
    format!("{day}.jsonl")
}

/// The log's files, oldest first: `(day, path, compressed)`.
pub fn list_files(dir: &Path) -> io::Result<Vec<(Date, PathBuf, bool)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (stem, compressed) = if let Some(s) = name.strip_suffix(".jsonl.gz") {
            (s, true)
        } else if let Some(s) = name.strip_suffix(".jsonl") {
            (s, false)
        } else {
            continue;
        };
        if let Ok(day) = stem.parse::<Date>() {
            files.push((day, path, compressed));
        }
    }
    // A day compressed while also present plain (an interrupted compression)
    // is read from its plain file.
    files.sort_by_key(|(day, _, compressed)| (*day, *compressed));
    files.dedup_by_key(|(day, _, _)| *day);
    Ok(files)
}

/// What the writer measured, for metrics.
pub trait LogObserver: Send + Sync + 'static {
    fn fsync(&self, _latency: Duration, _lines: usize) {}
}

impl LogObserver for () {}

impl LogObserver for crate::metrics::Metrics {
    fn fsync(&self, latency: Duration, _lines: usize) {
        self.log_fsync.observe(latency.as_secs_f64());
    }
}

struct Append {
    data: Vec<u8>,
    done: oneshot::Sender<Result<Position, String>>,
}

/// Appends lines to the log with group commit. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Append>,
    committed: watch::Receiver<Position>,
}

/// The log was not written; nothing was acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("event log: {0}")]
pub struct LogError(pub String);

impl LogWriter {
    /// Opens the log in `dir` (creating it), repairs a torn last line, and
    /// starts the writer thread. `now_ms` gives wall time for file rotation.
    pub fn open(
        dir: &Path,
        now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
        observer: Arc<dyn LogObserver>,
    ) -> io::Result<LogWriter> {
        fs::create_dir_all(dir)?;
        let end = repair_tail(dir)?;
        let (tx, rx) = mpsc::channel::<Append>(16_384);
        let (committed_tx, committed) = watch::channel(end);
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("eventflow-log".into())
            .spawn(move || writer_thread(dir, end, rx, committed_tx, now_ms, observer))?;
        Ok(LogWriter { tx, committed })
    }

    /// Appends complete lines (each ending in `\n`) and returns once they are
    /// on disk, with the position right after them.
    pub async fn append(&self, data: Vec<u8>) -> Result<Position, LogError> {
        debug_assert!(data.ends_with(b"\n"));
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Append { data, done })
            .await
            .map_err(|_| LogError("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| LogError("the writer has stopped".into()))?
            .map_err(LogError)
    }

    /// The position up to which the log is durable.
    pub fn committed(&self) -> watch::Receiver<Position> {
        self.committed.clone()
    }
}

/// Cuts a partial last line left by a crash (it was never acknowledged) and
/// returns the end of the log.
fn repair_tail(dir: &Path) -> io::Result<Position> {
    let Some((day, path, compressed)) = list_files(dir)?.pop() else {
        return Ok(Position::START);
    };
    if compressed {
        return Ok(Position {
            day,
            offset: uncompressed_len(&path)?,
        });
    }
    let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end != len {
        tracing::warn!(file = %path.display(), cut = len - end, "removed a partial last line left by a crash");
        file.set_len(end)?;
        file.sync_all()?;
    }
    Ok(Position { day, offset: end })
}

fn uncompressed_len(path: &Path) -> io::Result<u64> {
    io::copy(
        &mut flate2::read::MultiGzDecoder::new(File::open(path)?),
        &mut io::sink(),
    )
}

const DAMAGED: &str = "the event log is damaged";

/// Most bytes one group commit writes.
const MAX_BATCH_BYTES: usize = 8 << 20;

fn writer_thread(
    dir: PathBuf,
    mut end: Position,
    mut rx: mpsc::Receiver<Append>,
    committed: watch::Sender<Position>,
    now_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
    observer: Arc<dyn LogObserver>,
) {
    let mut file: Option<File> = None;
    let mut batch: Vec<Append> = Vec::new();
    // Set when a failed batch could not be cut off again: appending after
    // its remains would corrupt the log, so nothing more is acknowledged.
    let mut damaged: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.data.len();
        batch.push(first);
        while bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(a) => {
                    bytes += a.data.len();
                    batch.push(a);
                }
                Err(_) => break,
            }
        }
        if let Some(why) = &damaged {
            for a in batch.drain(..) {
                let _ = a.done.send(Err(why.clone()));
            }
            continue;
        }
        let day = utc_day(now_ms()).max(end.day);
        let result = write_batch(&dir, &mut file, &mut end, day, &batch, observer.as_ref());
        match result {
            Ok(()) => {
                committed.send_replace(end);
                for a in batch.drain(..) {
                    let _ = a.done.send(Ok(end));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "event log write failed; the batch was refused");
                if e.kind() == io::ErrorKind::Other && e.to_string().starts_with(DAMAGED) {
                    damaged = Some(e.to_string());
                }
                file = None;
                for a in batch.drain(..) {
                    let _ = a.done.send(Err(e.to_string()));
                }
            }
        }
    }
}

fn write_batch(
    dir: &Path,
    file: &mut Option<File>,
    end: &mut Position,
    day: Date,
    batch: &[Append],
    observer: &dyn LogObserver,
) -> io::Result<()> {
    if file.is_none() || day != end.day {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file_name(day)))?;
        let len = f.metadata()?.len();
        if day != end.day {
            // A new file: make its directory entry durable too.
            File::open(dir)?.sync_all()?;
        }
        *end = Position { day, offset: len };
        *file = Some(f);
    }
    let f = file.as_mut().expect("opened above");
    let mut written = 0u64;
    let outcome = (|| {
        for a in batch {
            f.write_all(&a.data)?;
            written += a.data.len() as u64;
        }
        let started = Instant::now();
        f.sync_data()?;
        observer.fsync(started.elapsed(), batch.len());
        Ok(())
    })();
    match outcome {
        Ok(()) => {
            end.offset += written;
            Ok(())
        }
        Err(e) => {
            // Leave no partial batch behind: none of it is acknowledged.
            match f.set_len(end.offset).and_then(|()| f.sync_data()) {
                Ok(()) => Err(e),
                Err(cut) => Err(io::Error::other(format!(
                    "{DAMAGED}: a failed write ({e}) could not be cut off ({cut}); restart the service to repair the log"
                ))),
            }
        }
    }
}

/// Reads the log from a position, line by line, never past a limit.
pub struct LogReader {
    dir: PathBuf,
    pos: Position,
    open: Option<Box<dyn BufRead + Send>>,
    line: Vec<u8>,
}

impl LogReader {
    pub fn new(dir: &Path, from: Position) -> LogReader {
        LogReader {
            dir: dir.to_owned(),
            pos: from,
            open: None,
            line: Vec::with_capacity(MAX_EVENT_BYTES + 2),
        }
    }

    /// The position of the next line to read.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Calls `f` with each complete line (without its newline) from the
    /// current position up to `limit`, at most `max_lines` of them; returns
    /// how many were read.
    pub fn read_until(
        &mut self,
        limit: Position,
        max_lines: usize,
        f: impl FnMut(&[u8], Position),
    ) -> io::Result<usize> {
        let result = self.read_lines(limit, max_lines, f);
        // Bytes buffered past the committed position may belong to a batch
        // that fails and is cut off: never keep them for the next read.
        if result.is_err() || self.pos >= limit {
            self.open = None;
        }
        result
    }

    fn read_lines(
        &mut self,
        limit: Position,
        max_lines: usize,
        mut f: impl FnMut(&[u8], Position),
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < max_lines && self.pos < limit {
            if self.open.is_none() && !self.open_next(limit)? {
                break;
            }
            let reader = self.open.as_mut().expect("opened above");
            self.line.clear();
            let read = reader.read_until(b'\n', &mut self.line)?;
            if read == 0 || !self.line.ends_with(b"\n") {
                // End of this day's file: only complete lines count.
                if read > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("partial line at {}", self.pos),
                    ));
                }
                self.open = None;
                if self.pos.day >= limit.day {
                    break;
                }
                self.pos = Position {
                    day: self.pos.day.tomorrow().map_err(io::Error::other)?,
                    offset: 0,
                };
                continue;
            }
            self.pos.offset += read as u64;
            f(&self.line[..read - 1], self.pos);
            n += 1;
        }
        Ok(n)
    }

    /// Opens the file holding the current position, or the next one that
    /// exists. Returns false when there is none up to `limit`.
    fn open_next(&mut self, limit: Position) -> io::Result<bool> {
        let files = list_files(&self.dir)?;
        let Some((day, path, compressed)) =
            files.into_iter().find(|(day, _, _)| *day >= self.pos.day)
        else {
            return Ok(false);
        };
        if day > limit.day {
            return Ok(false);
        }
        if day > self.pos.day {
            self.pos = Position { day, offset: 0 };
        }
        let mut reader: Box<dyn BufRead + Send> = if compressed {
            let mut r = BufReader::new(flate2::read::MultiGzDecoder::new(File::open(&path)?));
            io::copy(&mut (&mut r).take(self.pos.offset), &mut io::sink())?;
            Box::new(r)
        } else {
            let mut f = File::open(&path)?;
            f.seek(SeekFrom::Start(self.pos.offset))?;
            Box::new(BufReader::with_capacity(1 << 20, f))
        };
        // Re-opened at a position: nothing buffered from before.
        let _ = reader.fill_buf()?;
        self.open = Some(reader);
        Ok(true)
    }
}

/// Compresses day files older than `compress_after_days` and deletes those
/// older than `retain_days`, sparing every file at or after `needed` (the
/// oldest position a restart would read from) and today's.
pub fn housekeeping(
    dir: &Path,
    today: Date,
    compress_after_days: u32,
    retain_days: u32,
    needed: Position,
) -> io::Result<()> {
    for (day, path, compressed) in list_files(dir)? {
        if day >= needed.day || day >= today {
            continue;
        }
        let age = (today - day).get_days();
        if age >= retain_days as i32 {
            fs::remove_file(&path)?;
            tracing::info!(file = %path.display(), "deleted an expired log file");
        } else if !compressed && age >= compress_after_days as i32 {
            let gz = path.with_extension("jsonl.gz");
            let tmp = path.with_extension("jsonl.gz.tmp");
            {
                let mut out = flate2::write::GzEncoder::new(
                    File::create(&tmp)?,
                    flate2::Compression::default(),
                );
                io::copy(&mut File::open(&path)?, &mut out)?;
                out.finish()?.sync_all()?;
            }
            fs::rename(&tmp, &gz)?;
            fs::remove_file(&path)?;
            tracing::info!(file = %gz.display(), "compressed a log file");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    const DAY_MS: i64 = 86_400_000;

    fn clock(ms: i64) -> (Arc<AtomicI64>, Arc<dyn Fn() -> i64 + Send + Sync>) {
        let now = Arc::new(AtomicI64::new(ms));
        let n = now.clone();
        (now, Arc::new(move || n.load(Ordering::SeqCst)))
    }

    fn read_all(dir: &Path, from: Position, limit: Position) -> Vec<String> {
        let mut r = LogReader::new(dir, from);
        let mut out = Vec::new();
        r.read_until(limit, usize::MAX, |l, _| {
            out.push(String::from_utf8(l.to_vec()).unwrap())
        })
        .unwrap();
        out
    }

    #[test]
    fn position_round_trips_as_text() {
        let p = Position {
            day: Date::constant(2026, 11, 26),
            offset: 42,
        };
        assert_eq!(p.to_string(), "2026-11-26:42");
        assert_eq!("2026-11-26:42".parse::<Position>().unwrap(), p);
        assert!("nonsense".parse::<Position>().is_err());
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits_and_all_land_in_order_per_caller() {
        let dir = tempfile::tempdir().unwrap();
        let (_, now) = clock(1_764_000_000_000);
        let w = LogWriter::open(dir.path(), now, Arc::new(())).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = Position::START;
                for i in 0..50 {
                    let p = w
                        .append(format!("{{\"t\":{t},\"i\":{i}}}\n").into_bytes())
                        .await
                        .unwrap();
                    assert!(p > last, "positions grow");
                    last = p;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let end = *w.committed().borrow();
        let lines = read_all(dir.path(), Position::START, end);
        assert_eq!(lines.len(), 400);
        for t in 0..8 {
            let mine: Vec<i64> = lines
                .iter()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["t"] == t)
                .map(|v| v["i"].as_i64().unwrap())
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn files_rotate_by_utc_day_and_the_reader_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (now, clock_fn) = clock(1_764_000_000_000);
        let w = LogWriter::open(dir.path(), clock_fn, Arc::new(())).unwrap();
        let first = w.append(b"a\n".to_vec()).await.unwrap();
        now.fetch_add(DAY_MS, Ordering::SeqCst);
        let second = w.append(b"b\nc\n".to_vec()).await.unwrap();
        assert_eq!(second.day, first.day.tomorrow().unwrap());
        assert_eq!(second.offset, 4);
        assert_eq!(list_files(dir.path()).unwrap().len(), 2);
        assert_eq!(
            read_all(dir.path(), Position::START, second),
            ["a", "b", "c"]
        );
        assert_eq!(read_all(dir.path(), first, second), ["b", "c"]);
        // The reader stops at its limit, mid-file.
        let mid = Position {
            day: second.day,
            offset: 2,
        };
        assert_eq!(read_all(dir.path(), Position::START, mid), ["a", "b"]);
    }

    #[test]
    fn the_reader_never_keeps_bytes_past_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        let day = utc_day(1_764_000_000_000);
        let path = dir.path().join(file_name(day));
        // "b" is written but not committed; its batch then fails and is cut.
        fs::write(&path, b"a\nb\n").unwrap();
        let mut r = LogReader::new(dir.path(), Position::START);
        let mut seen = Vec::new();
        let at = |offset| Position { day, offset };
        r.read_until(at(2), 10, |l, _| seen.push(l.to_vec()))
            .unwrap();
        fs::write(&path, b"a\nc\n").unwrap();
        r.read_until(at(4), 10, |l, _| seen.push(l.to_vec()))
            .unwrap();
        assert_eq!(seen, [b"a".to_vec(), b"c".to_vec()]);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (_, now) = clock(1_764_000_000_000);
        let day = utc_day(1_764_000_000_000);
        fs::write(dir.path().join(file_name(day)), b"{\"a\":1}\n{\"b\":").unwrap();
        let w = LogWriter::open(dir.path(), now, Arc::new(())).unwrap();
        assert_eq!(w.committed().borrow().offset, 8);
        let end = w.append(b"{\"c\":3}\n".to_vec()).await.unwrap();
        assert_eq!(
            read_all(dir.path(), Position::START, end),
            ["{\"a\":1}", "{\"c\":3}"]
        );
    }

    #[tokio::test]
    async fn old_files_are_compressed_then_deleted_but_never_while_needed() {
        let dir = tempfile::tempdir().unwrap();
        let (now, clock_fn) = clock(1_764_000_000_000);
        let w = LogWriter::open(dir.path(), clock_fn, Arc::new(())).unwrap();
        let mut ends = Vec::new();
        for i in 0..4 {
            ends.push(w.append(format!("line-{i}\n").into_bytes()).await.unwrap());
            now.fetch_add(DAY_MS, Ordering::SeqCst);
        }
        let today = utc_day(now.load(Ordering::SeqCst));
        // Everything needed from the start: nothing changes.
        housekeeping(dir.path(), today, 1, 4, Position::START).unwrap();
        assert!(list_files(dir.path()).unwrap().iter().all(|(_, _, c)| !c));
        // Needed from the last file: older ones are compressed or deleted.
        housekeeping(dir.path(), today, 1, 4, ends[3]).unwrap();
        let files = list_files(dir.path()).unwrap();
        let kinds: Vec<bool> = files.iter().map(|(_, _, c)| *c).collect();
        assert_eq!(
            kinds,
            [true, true, false],
            "4 days old: deleted; 2-3: compressed; 1: still needed"
        );
        // Compressed files read back the same, from any position.
        assert_eq!(
            read_all(dir.path(), Position::START, ends[3]),
            ["line-1", "line-2", "line-3"]
        );
        let in_compressed = Position {
            day: ends[1].day,
            offset: 0,
        };
        assert_eq!(
            read_all(dir.path(), in_compressed, ends[3]),
            ["line-1", "line-2", "line-3"]
        );
        assert_eq!(read_all(dir.path(), ends[1], ends[3]), ["line-2", "line-3"]);
    }
}
