//! Where each product stands: a pure function of its manifest, its state, whether a key is
//! stored, and `now`.

use serde::Serialize;

use crate::manifest::Manifest;
use lap_proto::LicenseKind;
use lap_proto::time::DAY;

use crate::state::ProductState;
use crate::timing::renew_at;

/// The states `lapctl status --json` reports (kebab-case words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Unlicensed,
    Evaluation,
    EvaluationExpired,
    Activated,
    RenewalDue,
    Expired,
    /// Deactivated on this computer (profile 1.1, §9 release, or given up here): nothing is
    /// renewed until it is activated again.
    Deactivated,
    /// Activated for good by the vendor's final release (§9 sunset): never renewed.
    Sunset,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlicensed => "unlicensed",
            Self::Evaluation => "evaluation",
            Self::EvaluationExpired => "evaluation-expired",
            Self::Activated => "activated",
            Self::RenewalDue => "renewal-due",
            Self::Expired => "expired",
            Self::Deactivated => "deactivated",
            Self::Sunset => "sunset",
        }
    }
}

/// The phase and the end it counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub phase: Phase,
    /// NotAfter, or the end of the evaluation.
    pub ends_at: Option<u64>,
    /// Whole days left, rounded up; `None` without an end.
    pub days_left: Option<u64>,
}

/// When the evaluation ends: its local start plus its length, or the server's NotAfter for
/// it when that comes first.
pub fn evaluation_end(manifest: &Manifest, product: &ProductState) -> Option<u64> {
    if manifest.evaluation_days == 0 {
        return None;
    }
    let local = product
        .evaluation_started
        .map(|start| start + u64::from(manifest.evaluation_days) * DAY);
    let granted = product
        .grant
        .as_ref()
        .filter(|g| g.without_key)
        .and_then(|g| g.not_after);
    match (local, granted) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn days_until(end: u64, now: u64) -> u64 {
    end.saturating_sub(now).div_ceil(DAY)
}

/// Where the product stands at `now`.
pub fn standing(manifest: &Manifest, product: &ProductState, has_key: bool, now: u64) -> Standing {
    // The vendor's final release wins over everything else, and has no end.
    if product.sunset.is_some() {
        return Standing {
            phase: Phase::Sunset,
            ends_at: None,
            days_left: None,
        };
    }
    if product.deactivated_at.is_some() {
        return Standing {
            phase: Phase::Deactivated,
            ends_at: None,
            days_left: None,
        };
    }
    let keyed_grant = product
        .grant
        .as_ref()
        .filter(|g| !g.without_key && g.kind != Some(LicenseKind::Evaluation));
    if let Some(grant) = keyed_grant {
        let phase = match grant.not_after {
            Some(end) if now >= end => Phase::Expired,
            _ if now >= renew_at(grant) => Phase::RenewalDue,
            _ => Phase::Activated,
        };
        return Standing {
            phase,
            ends_at: grant.not_after,
            days_left: grant.not_after.map(|e| days_until(e, now)),
        };
    }
    if manifest.evaluation_days > 0 && (!has_key || product.grant.is_some()) {
        let end = evaluation_end(manifest, product);
        return match end {
            Some(end) if now >= end => Standing {
                phase: Phase::EvaluationExpired,
                ends_at: Some(end),
                days_left: Some(0),
            },
            Some(end) => Standing {
                phase: Phase::Evaluation,
                ends_at: Some(end),
                days_left: Some(days_until(end, now)),
            },
            // Not started yet: it starts at first use, with all its days.
            None => Standing {
                phase: Phase::Evaluation,
                ends_at: None,
                days_left: Some(u64::from(manifest.evaluation_days)),
            },
        };
    }
    Standing {
        phase: Phase::Unlicensed,
        ends_at: None,
        days_left: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Grant;
    use lap_proto::Uuid;
    use std::path::Path;

    const NOW: u64 = 1_795_000_000;

    fn manifest(evaluation_days: u32) -> Manifest {
        let text = format!(
            "schema = 1\nid = \"acme\"\nname = \"Acme\"\nvendor = \"Acme\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nevaluation_days = {evaluation_days}\n[server]\nx25519 = \"4954728102f02d2917df9aabf24634d4a3a3b83312273e818e40da0cf2755623\"\ned25519 = \"a72f4e02db405c0582a48e79f4830538bccc150e4ccda0404e03f4a190e12356\"\n"
        );
        Manifest::parse(&text, Path::new("acme.toml")).expect("valid")
    }

    fn grant(not_after: Option<u64>, without_key: bool) -> Grant {
        Grant {
            license_id: Uuid::from_u128(1),
            server_time: NOW,
            received_at: NOW,
            not_after,
            renew_after: Some(NOW + 7 * DAY),
            kind: Some(if without_key {
                LicenseKind::Evaluation
            } else {
                LicenseKind::Term
            }),
            in_compliance: Some(true),
            features: vec![],
            notice: None,
            server: None,
            without_key,
        }
    }

    fn product(grant: Option<Grant>, evaluation_started: Option<u64>) -> ProductState {
        let mut p = ProductState::new(Uuid::from_u128(2), Uuid::nil());
        p.grant = grant;
        p.evaluation_started = evaluation_started;
        p
    }

    #[test]
    fn a_keyed_grant_moves_from_activated_to_renewal_due_to_expired() {
        let m = manifest(0);
        let p = product(Some(grant(Some(NOW + 30 * DAY), false)), None);
        let s = standing(&m, &p, true, NOW);
        assert_eq!((s.phase, s.days_left), (Phase::Activated, Some(30)));
        assert_eq!(
            standing(&m, &p, true, NOW + 7 * DAY).phase,
            Phase::RenewalDue
        );
        assert_eq!(
            standing(&m, &p, true, NOW + 30 * DAY - 1).days_left,
            Some(1)
        );
        let s = standing(&m, &p, true, NOW + 30 * DAY);
        assert_eq!((s.phase, s.days_left), (Phase::Expired, Some(0)));
    }

    #[test]
    fn a_perpetual_grant_has_no_days_left() {
        let p = product(Some(grant(None, false)), None);
        let s = standing(&manifest(0), &p, true, NOW);
        assert_eq!((s.phase, s.days_left), (Phase::Activated, None));
    }

    #[test]
    fn evaluations_count_down_and_end() {
        let m = manifest(30);
        let fresh = standing(&m, &product(None, None), false, NOW);
        assert_eq!(
            (fresh.phase, fresh.days_left),
            (Phase::Evaluation, Some(30))
        );
        let started = product(None, Some(NOW - 20 * DAY));
        assert_eq!(standing(&m, &started, false, NOW).days_left, Some(10));
        assert_eq!(
            standing(&m, &started, false, NOW + 10 * DAY).phase,
            Phase::EvaluationExpired
        );
        // The server's end wins when it comes first.
        let granted = product(Some(grant(Some(NOW + 2 * DAY), true)), Some(NOW - 20 * DAY));
        assert_eq!(standing(&m, &granted, false, NOW).days_left, Some(2));
    }

    #[test]
    fn a_key_without_an_activation_is_unlicensed_until_activated() {
        assert_eq!(
            standing(&manifest(0), &product(None, None), true, NOW).phase,
            Phase::Unlicensed
        );
        assert_eq!(
            standing(&manifest(0), &product(None, None), false, NOW).phase,
            Phase::Unlicensed
        );
        assert_eq!(
            standing(&manifest(30), &product(None, None), true, NOW).phase,
            Phase::Unlicensed
        );
        // An evaluation keeps running while a newly entered key awaits its activation.
        let evaluating = product(Some(grant(Some(NOW + 5 * DAY), true)), Some(NOW));
        assert_eq!(
            standing(&manifest(30), &evaluating, true, NOW).phase,
            Phase::Evaluation
        );
    }

    #[test]
    fn a_sunset_wins_over_a_deactivation_and_a_grant_and_has_no_end() {
        let mut p = product(Some(grant(Some(NOW + DAY), false)), None);
        p.deactivated_at = Some(NOW);
        assert_eq!(
            standing(&manifest(0), &p, true, NOW).phase,
            Phase::Deactivated
        );
        p.sunset = Some(crate::state::Sunset {
            issued: NOW,
            signature: "c2ln".into(),
            kind: Some(LicenseKind::Perpetual),
            features: vec![],
            notice: None,
            source: "test".into(),
        });
        let s = standing(&manifest(0), &p, true, NOW + 400 * DAY);
        assert_eq!(
            (s.phase, s.ends_at, s.days_left),
            (Phase::Sunset, None, None)
        );
    }

    #[test]
    fn phases_have_the_documented_words() {
        let words: Vec<String> = [
            Phase::Unlicensed,
            Phase::Evaluation,
            Phase::EvaluationExpired,
            Phase::Activated,
            Phase::RenewalDue,
            Phase::Expired,
            Phase::Deactivated,
            Phase::Sunset,
        ]
        .iter()
        .map(|p| serde_json::to_string(p).expect("serializes"))
        .collect();
        assert_eq!(
            words,
            [
                "\"unlicensed\"",
                "\"evaluation\"",
                "\"evaluation-expired\"",
                "\"activated\"",
                "\"renewal-due\"",
                "\"expired\"",
                "\"deactivated\"",
                "\"sunset\""
            ]
        );
    }
}
