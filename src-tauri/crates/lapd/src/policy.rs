//! The license rules: given an opened request and the time, answer or stay silent.
//!
//! Pure apart from the store, so every rule is tested with a fixed `now`.

use lap_proto::{LicenseKind, Request, SeedV1, ServerData, Uuid};

use crate::catalog::{Catalog, Term, evaluation_reference};
use crate::store::{Store, StoreError};

/// The clock difference the server tolerates (draft §3.4 check 5).
pub const CLOCK_WINDOW_SECS: u64 = 30;
const DAY: u64 = 86_400;

/// Why a request got no answer. Counted and logged; never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not 137..=1200 bytes.
    Length,
    /// Over the per-source rate.
    RateLimited,
    /// Tag, zero DH: not for this server, or damaged.
    Authentication,
    /// Version, Size, Reserved, nil ids.
    Malformed,
    ClockSkew,
    UnknownSku,
    /// A base SKU with an add-on id, or an add-on SKU without one.
    AddonMismatch,
    BadSeed,
    NoEvaluation,
    EvaluationOver,
    UnknownKey,
    NoSeat,
    Expired,
    ResponseTooLarge,
    Store,
}

impl DropReason {
    pub const ALL: [Self; 15] = [
        Self::Length,
        Self::RateLimited,
        Self::Authentication,
        Self::Malformed,
        Self::ClockSkew,
        Self::UnknownSku,
        Self::AddonMismatch,
        Self::BadSeed,
        Self::NoEvaluation,
        Self::EvaluationOver,
        Self::UnknownKey,
        Self::NoSeat,
        Self::Expired,
        Self::ResponseTooLarge,
        Self::Store,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::RateLimited => "rate-limited",
            Self::Authentication => "authentication",
            Self::Malformed => "malformed",
            Self::ClockSkew => "clock-skew",
            Self::UnknownSku => "unknown-sku",
            Self::AddonMismatch => "addon-mismatch",
            Self::BadSeed => "bad-seed",
            Self::NoEvaluation => "no-evaluation",
            Self::EvaluationOver => "evaluation-over",
            Self::UnknownKey => "unknown-key",
            Self::NoSeat => "no-seat",
            Self::Expired => "expired",
            Self::ResponseTooLarge => "response-too-large",
            Self::Store => "store-error",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub license_id: Uuid,
    pub server_data: ServerData,
    /// The encoded ServerData, already fitted to the request's room.
    pub server_data_bytes: Vec<u8>,
    /// The license's non-secret reference, for the log.
    pub license_ref: String,
}

/// Applies every rule of draft §3.4 (checks 5–9) and the profile to an opened request.
pub fn decide(
    catalog: &Catalog,
    store: &mut Store,
    request: &Request,
    now: u64,
    max_server_data_len: usize,
    new_license_id: impl FnOnce() -> Uuid,
) -> Result<Grant, DropReason> {
    if request.client_time.abs_diff(now) > CLOCK_WINDOW_SECS {
        return Err(DropReason::ClockSkew);
    }
    let sku = catalog.sku(&request.sku_id).ok_or(DropReason::UnknownSku)?;
    if sku.base.is_some() == request.client_addon_id.is_nil() {
        return Err(DropReason::AddonMismatch);
    }
    let seed = SeedV1::decode(&request.client_seed).map_err(|_| DropReason::BadSeed)?;

    let mut data = ServerData::default();
    let (reference, not_after) = if seed.is_evaluation() {
        let days = sku.evaluation_days.ok_or(DropReason::NoEvaluation)?;
        let reference = evaluation_reference(sku.id);
        let assignment = match store.get(&reference, &seed.machine_hash) {
            Some(a) => a,
            None => store
                .assign(&reference, &seed.machine_hash, new_license_id(), now)
                .map_err(store_failed)?,
        };
        let end = assignment.first_seen + u64::from(days) * DAY;
        if now >= end {
            return Err(DropReason::EvaluationOver);
        }
        data.kind = Some(LicenseKind::Evaluation);
        data.features.clone_from(&sku.evaluation_features);
        data.in_compliance = Some(true);
        (assignment.license_id, Some(end))
    } else {
        let license = catalog
            .license(sku.id, &seed.decoded_key)
            .ok_or(DropReason::UnknownKey)?;
        let assignment = match store.get(&license.reference, &seed.machine_hash) {
            Some(a) => a,
            None => {
                if store.seats_used(&license.reference) >= license.seats && !license.allow_overuse {
                    return Err(DropReason::NoSeat);
                }
                store
                    .assign(
                        &license.reference,
                        &seed.machine_hash,
                        new_license_id(),
                        now,
                    )
                    .map_err(store_failed)?
            }
        };
        let end = match license.term {
            Term::Unlimited => None,
            Term::Until(t) => Some(t),
            Term::Days(d) => {
                let start = store.first_use(&license.reference).unwrap_or(now);
                Some(start + u64::from(d) * DAY)
            }
        };
        if end.is_some_and(|end| now >= end) {
            return Err(DropReason::Expired);
        }
        data.kind = Some(license.kind);
        data.features.clone_from(&license.features);
        data.notice.clone_from(&license.notice);
        data.in_compliance = Some(store.seats_used(&license.reference) <= license.seats);
        (assignment.license_id, end)
    };
    data.not_after = not_after;
    if let Some(days) = catalog.renew_after_days {
        let renew = now + u64::from(days) * DAY;
        data.renew_after = Some(not_after.map_or(renew, |end| renew.min(end)));
    }
    let server_data_bytes = fit(&mut data, max_server_data_len)?;
    let license_ref = if seed.is_evaluation() {
        evaluation_reference(sku.id)
    } else {
        crate::catalog::license_reference(&lap_proto::LicenseKey::from_bytes(seed.decoded_key))
    };
    Ok(Grant {
        license_id: reference,
        server_data: data,
        server_data_bytes,
        license_ref,
    })
}

fn store_failed(error: StoreError) -> DropReason {
    tracing::error!(%error, "cannot record a seat assignment; request dropped");
    DropReason::Store
}

/// Encodes ServerData within the room the client left; the Notice is the first to go.
fn fit(data: &mut ServerData, max: usize) -> Result<Vec<u8>, DropReason> {
    let encoded = data.encode().map_err(|_| DropReason::ResponseTooLarge)?;
    if encoded.len() <= max {
        return Ok(encoded);
    }
    if data.notice.take().is_some() {
        let encoded = data.encode().map_err(|_| DropReason::ResponseTooLarge)?;
        if encoded.len() <= max {
            return Ok(encoded);
        }
    }
    Err(DropReason::ResponseTooLarge)
}
