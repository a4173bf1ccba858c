//! The timing rules of profile §8, as pure functions of the state and `now`, so each is
//! tested with plain numbers. The engine sleeps until the earliest deadline they return.

use lap_proto::time::{DAY, HOUR, MINUTE};

use crate::state::Grant;

/// Retry every 15 minutes for the first 2 hours of failures…
pub const RETRY_FAST: u64 = 15 * MINUTE;
pub const FAST_WINDOW: u64 = 2 * HOUR;
/// …then every 4 hours…
pub const RETRY_SLOW: u64 = 4 * HOUR;
/// …and hourly once NotAfter has passed.
pub const RETRY_EXPIRED: u64 = HOUR;
/// When to activate again after this grant: lap-proto's one renewal rule (profile §5, with
/// its clamps) on the stored records.
pub fn renew_at(grant: &Grant) -> u64 {
    lap_proto::server_data::renew_at(grant.server_time, grant.renew_after, grant.not_after)
}

/// When to try again after a failed attempt at `now`, failures having started at
/// `first_failure_at`. Never later than NotAfter, so the switch to hourly happens on time.
pub fn next_retry(first_failure_at: u64, now: u64, not_after: Option<u64>) -> u64 {
    if not_after.is_some_and(|end| now >= end) {
        return now + RETRY_EXPIRED;
    }
    let interval = if now < first_failure_at.saturating_add(FAST_WINDOW) {
        RETRY_FAST
    } else {
        RETRY_SLOW
    };
    let next = now + interval;
    match not_after {
        Some(end) if end > now && end < next => end,
        _ => next,
    }
}

/// The warning points before an end (NotAfter or the end of an evaluation), as offsets:
/// 60 and 30 days, weekly in the last 30 days, daily in the last week, hourly on the last day.
pub fn warning_offsets() -> Vec<(String, u64)> {
    let mut points = vec![("60d".to_owned(), 60 * DAY), ("30d".to_owned(), 30 * DAY)];
    points.extend([21, 14].map(|d| (format!("{d}d"), d * DAY)));
    points.extend((1..=7).rev().map(|d| (format!("{d}d"), d * DAY)));
    points.extend((1..=23).rev().map(|h| (format!("{h}h"), h * HOUR)));
    points
}

/// A warning to show now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The point's label, unique per end date: `<what>@<end>/<offset>`.
    pub label: String,
    pub end: u64,
    /// Every label this warning stands for (earlier points passed while the machine slept
    /// are not shown one by one: the latest says it all).
    pub covers: Vec<String>,
}

fn label(what: &str, end: u64, offset: &str) -> String {
    format!("{what}@{end}/{offset}")
}

/// The most urgent warning point passed and not yet shown, if any.
pub fn due_warning(what: &str, end: u64, now: u64, sent: &[String]) -> Option<Warning> {
    if now >= end {
        return None;
    }
    let passed: Vec<String> = warning_offsets()
        .into_iter()
        .filter(|(_, offset)| end.saturating_sub(*offset) <= now)
        .map(|(name, _)| label(what, end, &name))
        .collect();
    let latest = passed.last()?.clone();
    if sent.contains(&latest) {
        return None;
    }
    Some(Warning {
        label: latest,
        end,
        covers: passed.into_iter().filter(|l| !sent.contains(l)).collect(),
    })
}

/// When the next warning point comes, if any is left.
pub fn next_warning_at(what: &str, end: u64, now: u64, sent: &[String]) -> Option<u64> {
    warning_offsets()
        .into_iter()
        .map(|(name, offset)| (label(what, end, &name), end.saturating_sub(offset)))
        .filter(|(l, at)| *at > now && !sent.contains(l))
        .map(|(_, at)| at)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::Uuid;

    fn grant(server_time: u64, not_after: Option<u64>, renew_after: Option<u64>) -> Grant {
        Grant {
            license_id: Uuid::from_u128(1),
            server_time,
            received_at: server_time,
            not_after,
            renew_after,
            kind: None,
            in_compliance: None,
            features: vec![],
            notice: None,
            server: None,
            without_key: false,
        }
    }

    #[test]
    fn renewal_follows_the_profile() {
        let now = 1_795_000_000;
        let end = Some(now + 20 * DAY);
        assert_eq!(
            renew_at(&grant(now, end, Some(now + 7 * DAY))),
            now + 7 * DAY
        );
        assert_eq!(renew_at(&grant(now, end, None)), now + 10 * DAY);
        assert_eq!(renew_at(&grant(now, None, None)), now + 30 * DAY);
    }

    #[test]
    fn a_stored_grant_gets_the_clamped_renewal() {
        let now = 1_795_000_000;
        let end = now + 20 * DAY;
        assert_eq!(
            renew_at(&grant(now, Some(end), Some(now))),
            now + 15 * MINUTE,
            "RenewAfter = ServerTime (0 days) is not due at once"
        );
        assert_eq!(renew_at(&grant(now, Some(end), Some(end + DAY))), end);
    }

    #[test]
    fn retries_back_off_then_go_hourly_after_the_end() {
        let start = 1_000_000;
        assert_eq!(next_retry(start, start, None), start + 15 * MINUTE);
        assert_eq!(
            next_retry(start, start + 2 * HOUR - 1, None),
            start + 2 * HOUR - 1 + 15 * MINUTE
        );
        assert_eq!(next_retry(start, start + 2 * HOUR, None), start + 6 * HOUR);
        let end = start + 3 * HOUR;
        assert_eq!(
            next_retry(start, start + 2 * HOUR, Some(end)),
            end,
            "never sleep past NotAfter"
        );
        assert_eq!(next_retry(start, end, Some(end)), end + HOUR);
        assert_eq!(
            next_retry(start, end + 10 * DAY, Some(end)),
            end + 10 * DAY + HOUR
        );
    }

    #[test]
    fn warning_points_are_the_profiles() {
        let labels: Vec<String> = warning_offsets().into_iter().map(|(l, _)| l).collect();
        assert_eq!(
            &labels[..11],
            [
                "60d", "30d", "21d", "14d", "7d", "6d", "5d", "4d", "3d", "2d", "1d"
            ]
        );
        assert_eq!(labels[11], "23h");
        assert_eq!(labels.last().map(String::as_str), Some("1h"));
        let offsets: Vec<u64> = warning_offsets().into_iter().map(|(_, o)| o).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] > w[1]),
            "strictly approaching the end"
        );
    }

    #[test]
    fn each_warning_shows_once_and_a_long_sleep_shows_only_the_latest() {
        let end = 100 * DAY;
        assert_eq!(due_warning("not-after", end, end - 61 * DAY, &[]), None);
        let w = due_warning("not-after", end, end - 60 * DAY, &[]).expect("60 days before");
        assert_eq!(w.label, format!("not-after@{end}/60d"));
        let sent = w.covers.clone();
        assert_eq!(
            due_warning("not-after", end, end - 45 * DAY, &sent),
            None,
            "at most once"
        );
        assert_eq!(
            next_warning_at("not-after", end, end - 45 * DAY, &sent),
            Some(end - 30 * DAY)
        );
        // Asleep from 45 days to 3 days before: one warning, for 3 days, covering 30d..3d.
        let w = due_warning("not-after", end, end - 3 * DAY, &sent).expect("3 days before");
        assert!(w.label.ends_with("/3d"));
        assert_eq!(
            w.covers.len(),
            8,
            "30d, 21d, 14d and 7d to 3d: {:?}",
            w.covers
        );
        assert_eq!(
            due_warning("not-after", end, end, &[]),
            None,
            "no warning once it has ended"
        );
    }

    #[test]
    fn a_new_end_date_warns_afresh() {
        let sent = due_warning("not-after", 100 * DAY, 40 * DAY, &[])
            .expect("due")
            .covers;
        assert!(due_warning("not-after", 200 * DAY, 140 * DAY, &sent).is_some());
    }
}
