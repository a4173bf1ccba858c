//! The latest trustworthy time seen, and what a clock behind it means: the status says the
//! clock moved back, and nothing is sent (profile §8: "a clock moved back is detected and
//! reported").
//!
//! Trustworthy times: the ServerTime of every accepted answer (signed by the server, and
//! within its 30 s of this clock when accepted), a record's (the grants rebuilt from the
//! signed records carry it), and the engine's own clock at each activation's state write
//! (kept in the state itself rather than read from the file's mtime, which the system clock
//! stamps and copies and backups change). The mark only rises, except when a clock check
//! confirms the clock right: then the mark was set by a clock that ran ahead, and is lowered.

use crate::apply::{Attempted, Outcome};
use crate::cause::Cause;
use crate::state::State;

/// A clock this far behind the latest time seen has been moved back. Five minutes: an
/// accepted ServerTime may lead this clock by up to the server's 30 s, and network time
/// stepping back a clock that ran fast, or two processes' reads a little apart, must not stop
/// activations; a clock moved back on purpose (to stretch an evaluation) is off by hours or
/// days.
pub const CLOCK_BACK_TOLERANCE: u64 = 300;

/// The latest trustworthy time the state knows.
pub fn latest_seen(state: &State) -> u64 {
    state
        .products
        .values()
        .filter_map(|p| p.grant.as_ref())
        .map(|g| g.server_time)
        .fold(state.highest_time_seen, u64::max)
}

/// How far `now` is behind the latest time seen, when that is more than a slip.
pub fn moved_back_by(state: &State, now: u64) -> Option<u64> {
    let latest = latest_seen(state);
    (latest > now.saturating_add(CLOCK_BACK_TOLERANCE)).then(|| latest - now)
}

/// What one batch of activations does about the mark: refuse to send (the clock moved
/// back), or lower the mark (a check confirmed the clock, so the mark was wrong).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockGuard {
    /// Nothing is sent: the clock is this far behind the mark.
    pub moved_back_by: Option<u64>,
    /// The clock was confirmed right although behind the mark: the mark goes back to now.
    pub lower_mark: bool,
    /// A check after silence measured the clock off: this batch's time is not a time seen
    /// (a clock jumped ahead must not leave a mark that later refuses the right time).
    pub measured_off: bool,
}

impl ClockGuard {
    /// The attempt a product records when the clock moved back: nothing sent, and why.
    pub(crate) fn refusal(&self, at: u64) -> Option<Attempted> {
        self.moved_back_by.map(|by_secs| Attempted {
            at,
            evaluation_started: None,
            outcome: Outcome::NotSent(Cause::ClockMovedBack { by_secs }),
            pending: None,
        })
    }

    /// Records this write's time in the state: every activation's commit is a time seen,
    /// unless the clock was measured off meanwhile.
    pub fn mark(&self, state: &mut State, now: u64) {
        if self.measured_off {
            return;
        }
        if self.lower_mark {
            state.highest_time_seen = now;
        } else {
            state.highest_time_seen = state.highest_time_seen.max(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Grant, ProductState};
    use lap_proto::Uuid;

    const NOW: u64 = 1_795_000_000;

    fn with_grant(server_time: u64, highest: u64) -> State {
        let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        product.grant = Some(Grant {
            license_id: Uuid::from_u128(2),
            server_time,
            received_at: server_time,
            not_after: None,
            renew_after: None,
            kind: None,
            in_compliance: None,
            features: vec![],
            notice: None,
            server: None,
            without_key: false,
        });
        let mut state = State {
            highest_time_seen: highest,
            ..State::default()
        };
        state.products.insert("acme".into(), product);
        state
    }

    #[test]
    fn the_latest_of_the_mark_and_every_server_time_counts() {
        assert_eq!(latest_seen(&with_grant(NOW, NOW - 10)), NOW);
        assert_eq!(latest_seen(&with_grant(NOW - 10, NOW)), NOW);
        assert_eq!(latest_seen(&State::default()), 0);
    }

    #[test]
    fn only_more_than_a_slip_behind_is_moved_back() {
        let state = with_grant(NOW, 0);
        assert_eq!(moved_back_by(&state, NOW - CLOCK_BACK_TOLERANCE), None);
        assert_eq!(
            moved_back_by(&state, NOW - CLOCK_BACK_TOLERANCE - 1),
            Some(CLOCK_BACK_TOLERANCE + 1)
        );
        assert_eq!(
            moved_back_by(&state, NOW + 3_600),
            None,
            "ahead is no move back"
        );
    }

    #[test]
    fn the_mark_rises_with_each_write_unless_measured_off_and_falls_only_when_confirmed() {
        let mut state = State {
            highest_time_seen: NOW,
            ..State::default()
        };
        ClockGuard::default().mark(&mut state, NOW - 3_600);
        assert_eq!(
            state.highest_time_seen, NOW,
            "an earlier clock lowers nothing"
        );
        ClockGuard::default().mark(&mut state, NOW + 60);
        assert_eq!(state.highest_time_seen, NOW + 60);
        let off = ClockGuard {
            measured_off: true,
            ..ClockGuard::default()
        };
        off.mark(&mut state, NOW + 3 * 86_400);
        assert_eq!(
            state.highest_time_seen,
            NOW + 60,
            "a clock measured off marks nothing"
        );
        let confirmed = ClockGuard {
            lower_mark: true,
            ..ClockGuard::default()
        };
        confirmed.mark(&mut state, NOW - 3_600);
        assert_eq!(state.highest_time_seen, NOW - 3_600);
    }
}
