//! Per-source token buckets, checked before any X25519 work (a flood costs a hash lookup).
//!
//! Sources are keyed by IPv4 address, and by /64 prefix for IPv6: one IPv6 host is usually
//! given a whole /64, so keying by address would hand it 2^64 buckets. The table is bounded;
//! when it is full the least recently used source makes room, so a spoofed flood evicts idle
//! sources one at a time instead of wiping every bucket (which gave heavy senders a fresh
//! burst whenever the table filled).

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use hashlink::LruCache;

/// How many sources are tracked by default; beyond it the least recently used is forgotten.
pub const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// What a bucket belongs to: an IPv4 address (IPv4-mapped IPv6 included, as dual-stack
/// sockets report IPv4 clients) or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    V4(u32),
    V6Prefix(u64),
}

impl SourceKey {
    fn of(source: IpAddr) -> Self {
        match source {
            IpAddr::V4(v4) => Self::V4(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.to_bits()),
                None => Self::V6Prefix(u64::try_from(v6.to_bits() >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

/// Allows each source `rate` requests per second with bursts of `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<LruCache<SourceKey, Bucket>>,
}

impl RateLimiter {
    /// `rate == 0` disables limiting.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self::with_capacity(rate, burst, MAX_SOURCES)
    }

    /// As [`Self::new`], tracking at most `max_sources` sources.
    pub fn with_capacity(rate: u32, burst: u32, max_sources: usize) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(rate).max(1)),
            buckets: Mutex::new(LruCache::new(max_sources.max(1))),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// How many sources are tracked now (never more than the capacity).
    pub fn tracked_sources(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// The most sources it tracks at once.
    pub fn capacity(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .capacity()
    }

    /// Takes one token for `source` at time `now`; false means drop.
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        if !self.is_enabled() {
            return true;
        }
        let key = SourceKey::of(source);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = if let Some(bucket) = buckets.get_mut(&key) {
            bucket
        } else {
            // At capacity, `insert` drops the least recently used entry; its node is reused.
            buckets.insert(
                key,
                Bucket {
                    tokens: self.burst,
                    updated: now,
                },
            );
            match buckets.get_mut(&key) {
                Some(bucket) => bucket,
                None => return false,
            }
        };
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

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(10, 20);
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
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
        let a = ip("192.0.2.1");
        assert!((0..10_000).all(|_| limiter.allow(a, Instant::now())));
    }

    #[test]
    fn table_stays_bounded_under_spoofed_sources() {
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        for i in 0..u32::try_from(MAX_SOURCES + 10).expect("fits") {
            limiter.allow(IpAddr::from(i.to_be_bytes()), now);
        }
        assert_eq!(limiter.tracked_sources(), MAX_SOURCES);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let limiter = RateLimiter::new(1, 2);
        let now = Instant::now();
        assert!(limiter.allow(ip("2001:db8:0:1::1"), now));
        assert!(limiter.allow(ip("2001:db8:0:1:ffff:ffff:ffff:fffe"), now));
        assert!(
            !limiter.allow(ip("2001:db8:0:1::3"), now),
            "a third address of the same /64 draws on the same bucket"
        );
        assert!(
            limiter.allow(ip("2001:db8:0:2::1"), now),
            "the next /64 is another source"
        );
        assert_eq!(limiter.tracked_sources(), 2);
    }

    #[test]
    fn ipv4_mapped_sources_are_keyed_by_their_ipv4_address() {
        // A dual-stack socket reports every IPv4 client inside ::ffff:0:0/96, one /64: keyed
        // by prefix they would all share one bucket.
        let limiter = RateLimiter::new(1, 1);
        let now = Instant::now();
        assert!(limiter.allow(ip("::ffff:192.0.2.1"), now));
        assert!(limiter.allow(ip("::ffff:192.0.2.2"), now));
        assert!(
            !limiter.allow(ip("192.0.2.1"), now),
            "the mapped and the plain form are one source"
        );
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_used_source_only() {
        let limiter = RateLimiter::with_capacity(1, 1, 2);
        let now = Instant::now();
        let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        assert!(limiter.allow(a, now));
        assert!(limiter.allow(b, now));
        assert!(
            !limiter.allow(a, now),
            "a has spent its burst (and is now the most recent)"
        );
        assert!(
            limiter.allow(c, now),
            "c takes b's place, b being the least recently used"
        );
        assert_eq!(limiter.tracked_sources(), 2);
        assert!(
            !limiter.allow(a, now),
            "a is still remembered and still limited: the table was not wiped"
        );
        assert!(
            limiter.allow(b, now),
            "b was forgotten, so it starts afresh"
        );
    }
}
