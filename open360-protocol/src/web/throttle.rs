//! Log-in throttling: after `MAX_FAILURES` wrong passwords for one username within `WINDOW`,
//! further attempts on that name are refused until the window has passed, whoever makes them.
//! Held in memory, bounded (the oldest entries go first).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Wrong passwords allowed per username per window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long failures are remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Usernames tracked at once.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// Whether `username` may try a password now.
    pub(crate) fn allows(&self, username: &str, now: Instant) -> bool {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(&username.to_ascii_lowercase()) {
            Some((count, since)) => *count < MAX_FAILURES || now.duration_since(*since) >= WINDOW,
            None => true,
        }
    }

    /// Counts a wrong password for `username`.
    pub(crate) fn failed(&self, username: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        let entry = failures
            .entry(username.to_ascii_lowercase())
            .or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets `username`'s failures (it logged in).
    pub(crate) fn succeeded(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(&username.to_ascii_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_after_its_failures_until_the_window_passes() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(throttle.allows("Ada", start));
            throttle.failed("Ada", start);
        }
        assert!(!throttle.allows("ada", start), "locked, ignoring case");
        assert!(throttle.allows("grace", start), "others are not");
        assert!(throttle.allows("ada", start + WINDOW));
        throttle.failed("ada", start + WINDOW);
        assert!(throttle.allows("ada", start + WINDOW), "a new window");
        throttle.succeeded("ADA");
        assert!(throttle.allows("ada", start + WINDOW));
    }
}
