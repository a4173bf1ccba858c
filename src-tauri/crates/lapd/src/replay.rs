//! Remembers which request ephemeral keys were answered, so that none is answered twice.
//!
//! The response key is derived from the request's ephemeral key, and every answer carries a
//! fresh ServerTime: answering the same datagram twice (the network duplicated it, or someone
//! replays it inside the clock window) would encrypt two different plaintexts under one key.
//! lapd answers the first arrival and drops every later datagram with that ephemeral key.
//! Dropping rather than re-sending a cached answer: a client opens one answer per exchange
//! and retries with a fresh datagram, so a second copy of an answer helps nobody, and
//! remembering 8 bytes per request is far cheaper than keeping whole responses.
//!
//! A request is accepted only while its ClientTime is within the clock window of the server's
//! time, so a key needs remembering only that long. Keys are kept in slots by ClientTime
//! (32-second slots; the 61-second window spans at most three, a fourth is being reused), each
//! slot holding at most `slot_capacity` fingerprints. When the slot a request needs is full the
//! request is dropped: forgetting a key still inside the window would let its replay through.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::rules::CLOCK_WINDOW_SECS;

/// Fingerprints one slot holds by default: 2^19 requests in 32 s (16,000 valid requests per
/// second, sustained) for at most 4 × 9.5 MB.
pub const DEFAULT_SLOT_CAPACITY: usize = 1 << 19;

const SLOT_SECS: u64 = 32;
const SLOTS: u64 = 4;

/// What to do with an opened request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its key was not seen in the window: go on (the key is now remembered).
    Fresh,
    /// Its key was already seen: drop it.
    Replayed,
    /// Its slot is full: drop it, as it could not be recognised if it came again.
    Full,
    /// Its ClientTime is outside the clock window: not remembered, the rules will drop it.
    OutsideWindow,
}

#[derive(Debug, Default)]
struct Slot {
    /// The ClientTime slot (ClientTime / 32) the fingerprints belong to.
    index: u64,
    fingerprints: HashSet<u64>,
}

/// The set of recently answered request keys, bounded.
#[derive(Debug)]
pub struct ReplayGuard {
    slots: [Slot; 4],
    slot_capacity: usize,
    /// Keyed per process: nobody can make two ephemeral keys share a fingerprint on purpose.
    fingerprint: std::collections::hash_map::RandomState,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(DEFAULT_SLOT_CAPACITY)
    }
}

impl ReplayGuard {
    pub fn new(slot_capacity: usize) -> Self {
        Self {
            slots: Default::default(),
            slot_capacity: slot_capacity.max(1),
            fingerprint: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Checks and remembers the ephemeral key of a request sent at `client_time`, at server
    /// time `now`.
    pub fn check(&mut self, ephemeral_key: &[u8], client_time: u64, now: u64) -> Verdict {
        if client_time.abs_diff(now) > CLOCK_WINDOW_SECS {
            return Verdict::OutsideWindow;
        }
        let fingerprint = self.fingerprint.hash_one(ephemeral_key);
        let index = client_time / SLOT_SECS;
        // A slot still serving an older ClientTime is reused once all its requests have left
        // the window; one holding a later ClientTime means the clock stepped back by minutes:
        // its keys are dropped, availability before a replay that needs the clock to return.
        let oldest_needed = now.saturating_sub(CLOCK_WINDOW_SECS) / SLOT_SECS;
        let capacity = self.slot_capacity;
        let slot = &mut self.slots[usize::try_from(index % SLOTS).unwrap_or(0)];
        if slot.index != index {
            if slot.index >= oldest_needed && slot.index < index && !slot.fingerprints.is_empty() {
                // Cannot happen with four slots and a window of three; kept for safety.
                return Verdict::Full;
            }
            slot.index = index;
            slot.fingerprints.clear();
        }
        if slot.fingerprints.contains(&fingerprint) {
            return Verdict::Replayed;
        }
        if slot.fingerprints.len() >= capacity {
            return Verdict::Full;
        }
        slot.fingerprints.insert(fingerprint);
        Verdict::Fresh
    }

    /// How many keys it remembers now.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|s| s.fingerprints.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys it ever remembers.
    pub fn capacity(&self) -> usize {
        self.slot_capacity * self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000;

    fn key(n: u32) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&n.to_be_bytes());
        key
    }

    #[test]
    fn a_key_is_fresh_once_inside_the_window() {
        let mut guard = ReplayGuard::new(16);
        assert_eq!(guard.check(&key(1), NOW, NOW), Verdict::Fresh);
        assert_eq!(guard.check(&key(1), NOW, NOW), Verdict::Replayed);
        assert_eq!(
            guard.check(&key(1), NOW, NOW + CLOCK_WINDOW_SECS),
            Verdict::Replayed,
            "until the last second the request is acceptable"
        );
        assert_eq!(guard.check(&key(2), NOW, NOW), Verdict::Fresh);
        assert_eq!(guard.check(&key(3), NOW + 31, NOW), Verdict::OutsideWindow);
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn remembered_keys_are_bounded_and_a_full_slot_refuses() {
        let mut guard = ReplayGuard::new(8);
        let fresh = (0..20)
            .filter(|&n| guard.check(&key(n), NOW, NOW) == Verdict::Fresh)
            .count();
        assert_eq!(fresh, 8);
        assert_eq!(guard.check(&key(100), NOW, NOW), Verdict::Full);
        assert_eq!(
            guard.check(&key(0), NOW, NOW),
            Verdict::Replayed,
            "a full slot still recognises what it holds"
        );
        // Requests of the following minutes reuse the slots; the total never grows past the
        // capacity.
        for second in 0..600 {
            for n in 0..10 {
                let now = NOW + second;
                guard.check(
                    &key(1000 * u32::try_from(second).expect("small") + n),
                    now,
                    now,
                );
            }
            assert!(guard.len() <= guard.capacity());
        }
        let later = NOW + 700;
        assert_eq!(
            guard.check(&key(200_000), later, later),
            Verdict::Fresh,
            "a slot whose requests have all left the window is reused"
        );
    }

    #[test]
    fn keys_are_forgotten_only_after_their_window() {
        let mut guard = ReplayGuard::new(1024);
        let sent = NOW + 5;
        assert_eq!(guard.check(&key(1), sent, NOW), Verdict::Fresh);
        // Traffic at every later second, so that slots get reused.
        for step in 1..=35 {
            let now = NOW + step;
            guard.check(&key(10 + u32::try_from(step).expect("small")), now, now);
            if sent.abs_diff(now) <= CLOCK_WINDOW_SECS {
                assert_eq!(
                    guard.check(&key(1), sent, now),
                    Verdict::Replayed,
                    "at +{step}"
                );
            }
        }
    }
}
