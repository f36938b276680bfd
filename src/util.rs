//! Small shared pieces: the wall clock as an injectable function, retry
//! backoff, and a cache prefetch hint.

use std::sync::Arc;
use std::time::Duration;

/// Wall time in milliseconds since the epoch. Injected so that tests can
/// control it; the engine itself never reads it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| jiff::Timestamp::now().as_millisecond())
}

/// Capped exponential backoff with full jitter: attempt 0 waits up to
/// `base`, each next attempt up to twice as long, never more than `cap`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let frac = u64::from_le_bytes(r) as f64 / u64::MAX as f64;
    ceiling.mul_f64(0.5 + frac / 2.0)
}

/// `url` with any user information replaced by `***`, for messages.
pub fn redact_credentials(url: &str) -> String {
    url.split(',')
        .map(|part| match (part.find("://"), part.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &part[..scheme + 3], &part[at..])
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks the CPU to bring the cache line at `p` closer without waiting for
/// it (a no-op off x86-64). Any address will do: a prefetch reads nothing
/// the program sees and never faults.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint; it does not dereference `p` in any
    // way the program can observe and cannot fault, whatever `p` is. SSE,
    // which it needs, is part of every x86-64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for attempt in 0..30 {
            let d = backoff(attempt, base, cap);
            let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
    }
}
