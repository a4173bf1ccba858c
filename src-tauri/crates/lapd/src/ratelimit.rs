//! Per-source token buckets, checked before any X25519 work (a flood costs a hash lookup).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Beyond this many tracked sources the table is pruned, so spoofed floods stay bounded.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Allows each source address `rate` requests per second with bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `rate == 0` disables limiting.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(rate).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token for `source` at time `now`; false means drop.
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        if !self.is_enabled() {
            return true;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&source) {
            let burst_window = self.burst / self.rate;
            buckets.retain(|_, b| now.duration_since(b.updated).as_secs_f64() < burst_window);
            if buckets.len() >= MAX_SOURCES {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(10, 20);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let t0 = Instant::now();
        let allowed = (0..100).filter(|_| limiter.allow(a, t0)).count();
        assert_eq!(allowed, 20, "the burst, then nothing");
        assert!(limiter.allow(b, t0), "other sources are not affected");
        let later = t0 + Duration::from_millis(500);
        let refilled = (0..100).filter(|_| limiter.allow(a, later)).count();
        assert_eq!(refilled, 5, "10/s for half a second");
    }

    #[test]
    fn zero_rate_disables() {
        let limiter = RateLimiter::new(0, 0);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!((0..10_000).all(|_| limiter.allow(a, Instant::now())));
    }

    #[test]
    fn table_stays_bounded_under_spoofed_sources() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        for i in 0..u32::try_from(MAX_SOURCES + 10).expect("fits") {
            limiter.allow(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(limiter.buckets.lock().expect("lock").len() <= MAX_SOURCES);
    }
}
