//! Guards `get_admin_token`: a failed attempt is logged with the client's address, and an address
//! with too many recent failures is refused (even with the right secret) until its window ends,
//! so the secret cannot be guessed online.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Failed attempts an address may make per window.
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; beyond this, unknown addresses share one bucket.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct AdminGuard {
    failures: Mutex<HashMap<Option<IpAddr>, (u32, Instant)>>,
}

impl AdminGuard {
    /// `Err(seconds to wait)` when `addr` has used up its failures.
    pub fn check(&self, addr: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let map = self.failures.lock();
        match map.get(&addr) {
            Some((n, since)) if *n >= MAX_FAILURES && now.duration_since(*since) < WINDOW => {
                Err((WINDOW - now.duration_since(*since)).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `addr`.
    pub fn failed(&self, addr: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&addr) {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        }
        let key = if map.len() >= MAX_TRACKED && !map.contains_key(&addr) { None } else { addr };
        let entry = map.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// A success forgets `addr`'s failures.
    pub fn succeeded(&self, addr: Option<IpAddr>) {
        self.failures.lock().remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_failures_and_others_are_not() {
        let g = AdminGuard::default();
        let a: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let b: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(g.check(a).is_ok());
            g.failed(a);
        }
        let wait = g.check(a).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(g.check(b).is_ok());
    }
}
