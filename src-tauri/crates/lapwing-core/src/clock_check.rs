//! Checking this machine's clock (profile §8: the server allows 30 s; when an attempt goes
//! unanswered, compare the clock and say so if it is off). Two checks: the system's word on
//! its own synchronization (nothing sent), and, where the machine policy or the system names a
//! time server, exactly one SNTP query that measures the offset. The clock is blamed only
//! when that measurement found it off; what the checks found goes into the diagnosis as a
//! typed cause and into `doctor`.

use std::sync::Arc;
use std::time::Duration;

use crate::apply::{Attempted, Outcome};
use crate::cause::Cause;
use crate::engine::{Engine, EngineError};
use crate::manifest::Manifest;
use crate::policy::Policy;
use crate::state::State;
use crate::time_mark::{ClockGuard, moved_back_by};
use crate::time_sources::TimeSources;

/// A measured offset beyond this is named as the cause. The server allows 30 s; a
/// measurement in whole seconds at both ends (this clock's, the time server's) can come out up
/// to 2 s short of the true offset, so anything over 28 s may already be past the server's
/// window. A larger threshold (minutes) would call a clock 1 minute off "not the cause" while
/// the server ignores every request it sends.
pub const CLOCK_BLAME_SECS: u64 = 28;

/// How long each check may take: the system bus, the name lookup and the time server's answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockReport {
    /// The system's word: synchronized or not, or why it could not be asked.
    pub synchronized: Result<bool, String>,
    /// The time server asked, and this clock minus its time, or why that failed. `None`
    /// when no time server is named.
    pub measured: Option<(String, Result<i64, String>)>,
}

impl ClockReport {
    /// The finding as a cause: measured off, measured right, synchronized, or not checked.
    pub fn cause(&self) -> Cause {
        match (&self.measured, &self.synchronized) {
            (Some((server, Ok(offset))), _) if offset.unsigned_abs() > CLOCK_BLAME_SECS => {
                Cause::ClockOff {
                    offset_secs: *offset,
                    server: server.clone(),
                }
            }
            (Some((server, Ok(offset))), _) => Cause::ClockRight {
                offset_secs: *offset,
                server: server.clone(),
            },
            (_, Ok(true)) => Cause::ClockSynchronized,
            _ => Cause::ClockNotChecked {
                reason: self.why_unchecked(),
            },
        }
    }

    /// Whether a check vouches for the clock (measured right, or synchronized by the system
    /// with nothing measured against it).
    pub fn confirms_clock(&self) -> bool {
        matches!(
            self.cause(),
            Cause::ClockRight { .. } | Cause::ClockSynchronized
        )
    }

    /// Why neither check could settle it, both parts named.
    fn why_unchecked(&self) -> String {
        let system = match &self.synchronized {
            Ok(true) => "the system says it is synchronized".to_owned(),
            Ok(false) => "the system says it is not synchronized".to_owned(),
            Err(e) => e.clone(),
        };
        let server = match &self.measured {
            None => "no time server is named".to_owned(),
            Some((_, Err(e))) => e.clone(),
            Some((server, Ok(_))) => format!("measured against {server}"),
        };
        format!("{system}; {server}")
    }
}

impl Engine {
    /// Gives the engine the parts clock checks ask (the system's in `engine_from_environment`).
    /// Without them every check says it could not be made, and nothing is sent.
    #[must_use]
    pub fn with_time_sources(mut self, sources: Arc<dyn TimeSources>) -> Self {
        self.time_sources = sources;
        self
    }

    /// Checks the clock: the system's word, and one SNTP query to `server`, else the
    /// policy's time server, else the system's first. Both at once, each bounded by
    /// [`CHECK_TIMEOUT`].
    pub async fn check_clock(&self, policy: &Policy, server: Option<String>) -> ClockReport {
        let sources = self.time_sources.as_ref();
        let synchronized = async {
            tokio::time::timeout(CHECK_TIMEOUT, sources.synchronized())
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the system bus did not answer within {} s",
                        CHECK_TIMEOUT.as_secs()
                    ))
                })
        };
        let measured = async {
            let server = match server.or_else(|| policy.clock.time_server.clone()) {
                Some(server) => server,
                None => sources.system_servers().await.into_iter().next()?,
            };
            let time = sources.query(&server, CHECK_TIMEOUT).await;
            // This clock read when the answer is in: the round trip (bounded above) makes the
            // offset at most that much too large.
            let ours = self.config().clock.now();
            let offset = time.map(|theirs| {
                i64::try_from(ours).unwrap_or(i64::MAX) - i64::try_from(theirs).unwrap_or(i64::MAX)
            });
            Some((server, offset))
        };
        let (synchronized, measured) = futures::join!(synchronized, measured);
        ClockReport {
            synchronized,
            measured,
        }
    }

    /// After attempts that went unanswered, one clock check for the whole batch, its finding
    /// added to each such attempt's diagnosis ([`crate::ranking::place_clock`]). A clock measured off
    /// is noted in the guard: this batch's time is then no time seen.
    pub(crate) async fn diagnose_silence<'m>(
        &self,
        policy: &Policy,
        mut attempted: Vec<Result<(&'m Manifest, Attempted), EngineError>>,
        mut guard: ClockGuard,
    ) -> (
        Vec<Result<(&'m Manifest, Attempted), EngineError>>,
        ClockGuard,
    ) {
        let unanswered = |result: &Result<(&Manifest, Attempted), EngineError>| {
            matches!(
                result,
                Ok((
                    _,
                    Attempted {
                        outcome: Outcome::Failed { .. },
                        ..
                    }
                ))
            )
        };
        if !attempted.iter().any(unanswered) {
            return (attempted, guard);
        }
        let clock = self.check_clock(policy, None).await.cause();
        guard.measured_off = matches!(clock, Cause::ClockOff { .. });
        for result in &mut attempted {
            if let Ok((
                _,
                Attempted {
                    outcome: Outcome::Failed { diagnosis, .. },
                    ..
                },
            )) = result
            {
                crate::ranking::place_clock(diagnosis, clock.clone());
            }
        }
        (attempted, guard)
    }

    /// Before a batch sends anything: whether the clock moved back behind the latest
    /// trustworthy time seen. If so the clock is checked; confirmed right, the mark was set by
    /// a clock that ran ahead and is lowered; otherwise nothing is sent.
    pub(crate) async fn guard_clock(&self, state: &State, policy: &Policy, now: u64) -> ClockGuard {
        let Some(by) = moved_back_by(state, now) else {
            return ClockGuard::default();
        };
        let report = self.check_clock(policy, None).await;
        if report.confirms_clock() {
            tracing::warn!(
                behind_secs = by,
                "the clock is behind the latest time seen but checked right: the mark is lowered"
            );
            return ClockGuard {
                lower_mark: true,
                ..ClockGuard::default()
            };
        }
        tracing::warn!(behind_secs = by, "the clock moved back: nothing is sent");
        ClockGuard {
            moved_back_by: Some(by),
            ..ClockGuard::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        synchronized: Result<bool, String>,
        measured: Option<Result<i64, String>>,
    ) -> ClockReport {
        ClockReport {
            synchronized,
            measured: measured.map(|m| ("ntp.test:123".to_owned(), m)),
        }
    }

    #[test]
    fn only_a_measurement_blames_the_clock() {
        let off = report(Ok(true), Some(Ok(-(60 * 7))));
        assert_eq!(
            off.cause(),
            Cause::ClockOff {
                offset_secs: -420,
                server: "ntp.test:123".into()
            },
            "measured off beats the system's word"
        );
        assert!(!off.confirms_clock());
        let edge = i64::try_from(CLOCK_BLAME_SECS).expect("small");
        assert!(matches!(
            report(Ok(false), Some(Ok(edge))).cause(),
            Cause::ClockRight { .. }
        ));
        assert!(matches!(
            report(Ok(false), Some(Ok(edge + 1))).cause(),
            Cause::ClockOff { .. }
        ));
        assert_eq!(report(Ok(true), None).cause(), Cause::ClockSynchronized);
        assert_eq!(
            report(Ok(true), Some(Err("no answer".into()))).cause(),
            Cause::ClockSynchronized
        );
        assert!(report(Ok(true), None).confirms_clock());
    }

    #[test]
    fn an_unchecked_clock_says_why_of_both_checks() {
        let cause = report(Ok(false), Some(Err("no answer from ntp.test:123".into()))).cause();
        assert_eq!(
            cause,
            Cause::ClockNotChecked {
                reason: "the system says it is not synchronized; no answer from ntp.test:123"
                    .into()
            }
        );
        let cause = report(Err("cannot reach the system bus".into()), None).cause();
        assert_eq!(
            cause,
            Cause::ClockNotChecked {
                reason: "cannot reach the system bus; no time server is named".into()
            }
        );
        assert!(!report(Ok(false), None).confirms_clock());
    }
}
