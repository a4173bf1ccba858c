//! Time, injected: the engine asks a `Clock`, so every time rule is tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The wall clock as the engine sees it, in UNIX seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> u64;
}

/// The system clock, optionally shifted (`LAPWING_CLOCK_OFFSET`, for tests of a client whose
/// clock is off).
#[derive(Debug, Default)]
pub struct SystemClock {
    offset: AtomicI64,
}

impl SystemClock {
    pub fn with_offset(offset_secs: i64) -> Self {
        Self {
            offset: AtomicI64::new(offset_secs),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        lap_proto::time::unix_now().saturating_add_signed(self.offset.load(Ordering::Relaxed))
    }
}

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    pub fn at(now: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now)))
    }

    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
