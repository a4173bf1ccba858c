//! Where a product stands, as the tray and `lapctl` show it, and how that is worded: the
//! status record built from the manifest, the state and the clock, and its headline.

use lap_proto::Uuid;
use serde::Serialize;

use crate::cause::Cause;
use crate::manifest::Manifest;
use crate::state::{Attempt, Grant, PendingKey, ProductState, ServerUsed, State};
use crate::status::{Phase, Standing, standing};

pub use crate::time_mark::CLOCK_BACK_TOLERANCE;

/// One product's status, as the tray and `lapctl status --json` show it.
/// `Default`: an unlicensed product of which nothing is known yet (no key, no grant, no
/// attempt); what tests and callers fill in from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductStatus {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub sku: Uuid,
    pub addon_of: Option<String>,
    pub state: Phase,
    pub not_after: Option<u64>,
    pub ends_at: Option<u64>,
    pub days_left: Option<u64>,
    pub license_id: Option<Uuid>,
    pub kind: Option<lap_proto::LicenseKind>,
    pub in_compliance: Option<bool>,
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub has_key: bool,
    pub server: Option<ServerUsed>,
    pub last_attempt: Option<Attempt>,
    pub next_attempt_at: Option<u64>,
    /// Set when this machine's clock is behind a time it has already seen.
    pub clock_moved_back_by: Option<u64>,
    /// A new license key entered but not accepted yet, and how its latest try ended (never
    /// the key itself): the grant and key above are still the previous ones.
    pub pending_key: Option<PendingKey>,
    /// The server kept this seat's LicenseId after PreviousMachineHash was sent: the license
    /// moved to this computer's new hardware (cleared by the next accepted answer).
    pub moved_from_previous_hardware: bool,
    /// The last accepted answer said Duplicate: this installation looks cloned or restored
    /// from a snapshot (kept until an answer without it).
    pub duplicate: bool,
    /// When the product was deactivated on this computer (phase `deactivated`).
    pub deactivated_at: Option<u64>,
    /// When the vendor issued the final release this product runs on (phase `sunset`).
    pub sunset_issued: Option<u64>,
}

impl ProductStatus {
    /// Where the product stands in a few words, worded alike in the tray and in `lapctl`:
    /// "Activated until <date>", "Activated until <date> (renewal due)", "Expired on <date>",
    /// "Evaluation: 3 days left", "Evaluation over: enter a license key", "Not activated";
    /// then " (out of compliance)" when the server says so. `date` writes UNIX seconds in the
    /// caller's style (ISO for scripts, "12 Mar 2027" in the tray). Why an attempt failed is
    /// the caller's to add: the room for it differs.
    pub fn headline(&self, date: impl Fn(u64) -> String) -> String {
        let until = |prefix: &str| match self.not_after {
            Some(end) => format!("{prefix} until {}", date(end)),
            None => prefix.to_owned(),
        };
        let mut text = match self.state {
            Phase::Activated => until("Activated"),
            Phase::RenewalDue => format!("{} (renewal due)", until("Activated")),
            Phase::Expired => match self.not_after {
                Some(end) => format!("Expired on {}", date(end)),
                None => "Expired".to_owned(),
            },
            Phase::Evaluation => match self.days_left {
                Some(1) => "Evaluation: 1 day left".to_owned(),
                Some(n) => format!("Evaluation: {n} days left"),
                None => "Evaluation".to_owned(),
            },
            Phase::EvaluationExpired => "Evaluation over: enter a license key".to_owned(),
            Phase::Unlicensed => "Not activated".to_owned(),
            Phase::Deactivated => "Deactivated on this computer".to_owned(),
            Phase::Sunset => "Activated for good (the vendor's final release)".to_owned(),
        };
        if self.in_compliance == Some(false) {
            text.push_str(" (out of compliance)");
        }
        if self.duplicate && self.state != Phase::Sunset {
            text.push_str(" (looks cloned or restored from a snapshot)");
        }
        text
    }

    /// What the lifecycle of the license says beyond the headline (profile 1.1, §9), worded
    /// alike in the tray, `lapctl` and `doctor`; none when there is nothing to add.
    pub fn lifecycle_note(&self) -> Option<String> {
        if self.state == Phase::Sunset {
            return None;
        }
        if self.duplicate {
            return Some(DUPLICATE_NOTE.to_owned());
        }
        if self.moved_from_previous_hardware {
            return Some(
                "Moved to new hardware: the server moved this computer's seat from its previous hardware"
                    .to_owned(),
            );
        }
        None
    }

    /// What became of a new key not accepted yet, in one sentence worded alike in the tray
    /// and in `lapctl`; none without one. The headline stays the previous key's: it is what
    /// is in effect.
    pub fn pending_key_note(&self) -> Option<String> {
        let pending = self.pending_key.as_ref()?;
        let why = match pending.last_try.as_ref().and_then(|t| t.diagnosis.first()) {
            None => "it was not tried yet".to_owned(),
            Some(Cause::KeyMayBeRefused) => {
                "the server did not accept it: this key may belong to another product, or have no free seat"
                    .to_owned()
            }
            Some(cause) => cause.short().into_owned(),
        };
        Some(format!(
            "The new key was not accepted yet ({why}); the previous key stays in effect"
        ))
    }
}

/// What Duplicate means and what to do, in the words every surface uses.
pub const DUPLICATE_NOTE: &str = "This installation looks cloned or restored from a snapshot (the server saw a later one): a cloned virtual machine needs its own SMBIOS UUID and machine id (/etc/machine-id); then deactivate the clone and activate it again";

/// Items (statuses, manifests) in the order a person reads them: each add-on right after its
/// base product, otherwise in the given order. An add-on whose base is not among them stands
/// where it is. The tray, the windows and `lapctl` all list products so.
pub fn base_first<T: Clone>(
    items: &[T],
    id: impl Fn(&T) -> &str,
    addon_of: impl Fn(&T) -> Option<&str>,
) -> Vec<T> {
    let is_base = |wanted: &str| {
        items
            .iter()
            .any(|s| id(s) == wanted && addon_of(s).is_none())
    };
    let mut out = Vec::with_capacity(items.len());
    for s in items {
        if addon_of(s).is_some_and(is_base) {
            continue;
        }
        out.push(s.clone());
        if addon_of(s).is_none() {
            out.extend(items.iter().filter(|a| addon_of(a) == Some(id(s))).cloned());
        }
    }
    out
}

/// Statuses with each add-on right after its base (see [`base_first`]).
pub fn statuses_base_first(statuses: &[ProductStatus]) -> Vec<ProductStatus> {
    base_first(statuses, |s| &s.id, |s| s.addon_of.as_deref())
}

/// The status of one product at `now`. With evaluations forbidden by the machine policy,
/// the product stands as if its manifest offered none.
pub fn product_status(
    manifest: &Manifest,
    state: &State,
    now: u64,
    evaluation_allowed: bool,
) -> ProductStatus {
    let fresh = ProductState::new(Uuid::nil(), Uuid::nil());
    let product = state.products.get(&manifest.id).unwrap_or(&fresh);
    // Evaluations forbidden by the machine policy: the product stands as if it offered none
    // (unlicensed without a key); the last attempt names the administrator's reason.
    let without_evaluation;
    let offered = if evaluation_allowed {
        manifest
    } else {
        without_evaluation = Manifest {
            evaluation_days: 0,
            ..manifest.clone()
        };
        &without_evaluation
    };
    let Standing {
        phase,
        ends_at,
        days_left,
    } = standing(offered, product, product.has_key, now);
    // A sunset's terms replace the grant's; a deactivated product has no grant.
    let grant: Option<&Grant> = product.grant.as_ref().filter(|_| product.sunset.is_none());
    let sunset = product.sunset.as_ref();
    let quiet = matches!(phase, Phase::Sunset | Phase::Deactivated);
    ProductStatus {
        id: manifest.id.clone(),
        name: manifest.name.clone(),
        vendor: manifest.vendor.clone(),
        sku: manifest.sku,
        addon_of: manifest.addon_of.clone(),
        state: phase,
        not_after: grant.and_then(|g| g.not_after),
        ends_at,
        days_left,
        license_id: grant.map(|g| g.license_id),
        kind: sunset.map_or_else(|| grant.and_then(|g| g.kind), |s| s.kind),
        in_compliance: grant.and_then(|g| g.in_compliance),
        features: sunset.map_or_else(
            || grant.map(|g| g.features.clone()).unwrap_or_default(),
            |s| s.features.clone(),
        ),
        notice: sunset.map_or_else(
            || grant.and_then(|g| g.notice.clone()),
            |s| s.notice.clone(),
        ),
        has_key: product.has_key,
        server: grant
            .and_then(|g| g.server.clone())
            .or_else(|| product.last_attempt.as_ref().and_then(|a| a.server.clone())),
        last_attempt: product.last_attempt.clone(),
        next_attempt_at: product
            .backoff
            .map(|b| b.next_at)
            .or_else(|| grant.map(crate::timing::renew_at))
            .filter(|_| !quiet),
        clock_moved_back_by: crate::time_mark::moved_back_by(state, now),
        pending_key: product.pending_key.clone(),
        moved_from_previous_hardware: product.moved_from_previous_hardware,
        duplicate: product.duplicate,
        deactivated_at: product.deactivated_at,
        sunset_issued: product.sunset.as_ref().map(|s| s.issued),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::time::DAY;

    fn status(state: Phase) -> ProductStatus {
        ProductStatus {
            id: "p".into(),
            name: "P".into(),
            vendor: "V".into(),
            state,
            not_after: Some(20 * DAY),
            ends_at: Some(20 * DAY),
            days_left: Some(3),
            has_key: true,
            ..ProductStatus::default()
        }
    }

    #[test]
    fn the_headline_names_each_phase_with_the_callers_dates() {
        let day = |unix: u64| format!("day {}", unix / DAY);
        let cases = [
            (status(Phase::Activated), "Activated until day 20"),
            (
                status(Phase::RenewalDue),
                "Activated until day 20 (renewal due)",
            ),
            (status(Phase::Expired), "Expired on day 20"),
            (status(Phase::Evaluation), "Evaluation: 3 days left"),
            (
                ProductStatus {
                    days_left: Some(1),
                    ..status(Phase::Evaluation)
                },
                "Evaluation: 1 day left",
            ),
            (
                status(Phase::EvaluationExpired),
                "Evaluation over: enter a license key",
            ),
            (status(Phase::Unlicensed), "Not activated"),
            (
                ProductStatus {
                    not_after: None,
                    ..status(Phase::Activated)
                },
                "Activated",
            ),
            (
                ProductStatus {
                    in_compliance: Some(false),
                    ..status(Phase::Activated)
                },
                "Activated until day 20 (out of compliance)",
            ),
            (
                ProductStatus {
                    duplicate: true,
                    ..status(Phase::Activated)
                },
                "Activated until day 20 (looks cloned or restored from a snapshot)",
            ),
            (status(Phase::Deactivated), "Deactivated on this computer"),
            (
                ProductStatus {
                    duplicate: true,
                    ..status(Phase::Sunset)
                },
                "Activated for good (the vendor's final release)",
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(status.headline(day), expected, "{:?}", status.state);
        }
    }
}
