//! One process per data directory: `data.dir/LOCK` holds an exclusive lock
//! (`flock`) and the holder's pid for as long as the process runs, so a
//! second service (or a restore into the embedded store) started on the
//! same directory stops at once with an error naming the holder, instead
//! of appending to the same log.
//!
//! A holder that is going away is waited for, up to [`HOLDER_GRACE`]: a
//! lock is held by every descriptor of its open file, so a process that is
//! exiting, or a child that another thread of the same process forked and
//! that has not yet reached its `exec` (where the descriptor, opened
//! close-on-exec, is closed), keeps the directory locked for a moment
//! after its owner let go.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a held lock is waited for before the directory is called in use.
pub const HOLDER_GRACE: Duration = Duration::from_secs(3);

/// How often a held lock is tried again while it is waited for.
const RETRY_EVERY: Duration = Duration::from_millis(10);

use anyhow::Context;

/// The lock on a data directory; released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the lock on `dir` (which must exist), waiting up to
/// [`HOLDER_GRACE`] for a holder to let go.
pub fn lock(dir: &Path) -> anyhow::Result<DirLock> {
    lock_within(dir, HOLDER_GRACE)
}

/// Takes the lock on `dir`, waiting up to `patience` for a holder to let go.
pub fn lock_within(dir: &Path, patience: Duration) -> anyhow::Result<DirLock> {
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = Instant::now() + patience;
    let locked = loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(RETRY_EVERY);
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("another eventflow process (pid {holder})")
            };
            anyhow::bail!(
                "data.dir {}: in use by {holder}; stop it, or give this one another data.dir",
                dir.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_all()?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let err = lock_within(dir.path(), Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.starts_with("data.dir "), "{err}");
        let waited = Instant::now();
        let err = lock_within(dir.path(), Duration::from_millis(200)).unwrap_err();
        assert!(waited.elapsed() >= Duration::from_millis(200), "{err}");
        drop(first);
        lock_within(dir.path(), Duration::ZERO).expect("free again");
    }

    /// A child holding a copy of the descriptor (as one forked by another
    /// thread does until its `exec`) keeps the lock after its owner let
    /// go; the next owner waits for the child instead of refusing.
    #[test]
    fn a_holder_that_lingers_after_its_owner_let_go_is_waited_for() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let copy = first._file.try_clone().unwrap();
        // `cat` holds the copy as its standard output until its input ends.
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(copy))
            .spawn()
            .unwrap();
        drop(first);
        assert!(
            lock_within(dir.path(), Duration::ZERO).is_err(),
            "the child still holds the lock"
        );
        let path = dir.path().to_owned();
        let next = std::thread::spawn(move || lock_within(&path, Duration::from_secs(30)));
        drop(child.stdin.take());
        child.wait().unwrap();
        next.join().unwrap().expect("taken once the child is gone");
    }
}
