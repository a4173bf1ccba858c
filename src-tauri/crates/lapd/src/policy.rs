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
        let assignment = if let Some(a) = store.get(&license.reference, &seed.machine_hash) {
            a
        } else {
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

#[allow(clippy::needless_pass_by_value, reason = "used as a map_err adapter")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::LicenseKey;
    use std::path::Path;
    use zeroize::Zeroizing;

    const NOW: u64 = 1_795_000_000;
    const BASE: Uuid = Uuid::from_u128(0xba5e);
    const ADDON: Uuid = Uuid::from_u128(0xadd0);
    const ROOM: usize = 194;

    fn key(n: u8) -> LicenseKey {
        // A deterministic draw that moves on, as generate re-draws untypeable keys.
        let mut draw = [n; 16];
        LicenseKey::generate(move || {
            draw[15] = draw[15].wrapping_add(1);
            draw
        })
    }

    fn catalog(extra: &str) -> Catalog {
        let text = format!(
            "renew_after_days = 7\n\
             [[sku]]\nid = \"{BASE}\"\nname = \"Base\"\nevaluation_days = 30\nevaluation_features = [\"trial\"]\n\
             [[sku]]\nid = \"{ADDON}\"\nname = \"Addon\"\nbase = \"{BASE}\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 2\ndays = 365\nfeatures = [\"pro\"]\nnotice = \"Licensed to Example\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{ADDON}\"\nkind = \"perpetual\"\nseats = 1\n\
             [[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"subscription\"\nseats = 1\nnot_after = {}\nallow_overuse = true\n{extra}",
            key(1).to_display(),
            key(2).to_display(),
            key(3).to_display(),
            NOW + 1000,
        );
        Catalog::parse(&text, Path::new("test.toml")).expect("valid catalog")
    }

    fn request(
        sku: Uuid,
        addon: bool,
        key: Option<&LicenseKey>,
        machine: u8,
        time: u64,
    ) -> Request {
        let seed = SeedV1 {
            decoded_key: key.map_or([0; 16], |k| *k.as_bytes()),
            machine_hash: [machine; 32],
            num_cpus: 1,
            num_cores: 4,
            install_nonce: [machine; 16],
        };
        Request {
            client_time: time,
            client_base_id: Uuid::from_u128(u128::from(machine) + 1),
            client_addon_id: if addon {
                Uuid::from_u128(0xa0 + u128::from(machine))
            } else {
                Uuid::nil()
            },
            sku_id: sku,
            current_license_id: Uuid::nil(),
            client_seed: Zeroizing::new(seed.encode(ROOM - 66).expect("room").to_vec()),
        }
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(0x1000 + n)
        }
    }

    fn run(
        catalog: &Catalog,
        store: &mut Store,
        request: &Request,
        now: u64,
    ) -> Result<Grant, DropReason> {
        let mut next = ids();
        decide(catalog, store, request, now, ROOM, &mut next)
    }

    #[test]
    fn a_licensed_machine_gets_its_terms_and_keeps_its_license_id() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let grant = run(
            &catalog,
            &mut store,
            &request(BASE, false, Some(&key(1)), 1, NOW),
            NOW,
        )
        .expect("granted");
        assert_eq!(grant.server_data.kind, Some(LicenseKind::Term));
        assert_eq!(grant.server_data.not_after, Some(NOW + 365 * DAY));
        assert_eq!(grant.server_data.renew_after, Some(NOW + 7 * DAY));
        assert_eq!(grant.server_data.features, vec!["pro".to_owned()]);
        assert_eq!(
            grant.server_data.notice.as_deref(),
            Some("Licensed to Example")
        );
        assert_eq!(grant.server_data.in_compliance, Some(true));
        assert_eq!(
            ServerData::parse(&grant.server_data_bytes).expect("valid TLV"),
            grant.server_data
        );
        let later = NOW + 100 * DAY;
        let again = run(
            &catalog,
            &mut store,
            &request(BASE, false, Some(&key(1)), 1, later),
            later,
        )
        .expect("renewed");
        assert_eq!(
            again.license_id, grant.license_id,
            "a machine that comes back keeps its LicenseId"
        );
        assert_eq!(
            again.server_data.not_after, grant.server_data.not_after,
            "the term runs from first use"
        );
        assert_eq!(store.seats_used(&grant.license_ref), 1);
    }

    #[test]
    fn seats_are_counted_by_machine() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        for machine in [1, 2, 1, 2] {
            run(
                &catalog,
                &mut store,
                &request(BASE, false, Some(&key(1)), machine, NOW),
                NOW,
            )
            .expect("within seats");
        }
        assert_eq!(
            run(
                &catalog,
                &mut store,
                &request(BASE, false, Some(&key(1)), 3, NOW),
                NOW
            ),
            Err(DropReason::NoSeat)
        );
    }

    #[test]
    fn overuse_is_answered_but_marked_out_of_compliance() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let first = run(
            &catalog,
            &mut store,
            &request(BASE, false, Some(&key(3)), 1, NOW),
            NOW,
        )
        .expect("granted");
        assert_eq!(first.server_data.in_compliance, Some(true));
        let second = run(
            &catalog,
            &mut store,
            &request(BASE, false, Some(&key(3)), 2, NOW),
            NOW,
        )
        .expect("overuse");
        assert_eq!(second.server_data.in_compliance, Some(false));
        assert_eq!(second.server_data.kind, Some(LicenseKind::Subscription));
        assert_eq!(second.server_data.not_after, Some(NOW + 1000));
        assert_eq!(
            second.server_data.renew_after,
            Some(NOW + 1000),
            "RenewAfter is capped at NotAfter"
        );
    }

    #[test]
    fn evaluations_run_once_per_machine_from_first_use() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let grant = run(
            &catalog,
            &mut store,
            &request(BASE, false, None, 1, NOW),
            NOW,
        )
        .expect("evaluation");
        assert_eq!(grant.server_data.kind, Some(LicenseKind::Evaluation));
        assert_eq!(grant.server_data.not_after, Some(NOW + 30 * DAY));
        assert_eq!(grant.server_data.features, vec!["trial".to_owned()]);
        let later = NOW + 29 * DAY;
        let again = run(
            &catalog,
            &mut store,
            &request(BASE, false, None, 1, later),
            later,
        )
        .expect("still running");
        assert_eq!(
            again.server_data.not_after,
            Some(NOW + 30 * DAY),
            "a reinstall does not restart it"
        );
        let over = NOW + 30 * DAY;
        assert_eq!(
            run(
                &catalog,
                &mut store,
                &request(BASE, false, None, 1, over),
                over
            ),
            Err(DropReason::EvaluationOver)
        );
        assert_eq!(
            run(
                &catalog,
                &mut store,
                &request(ADDON, true, None, 1, NOW),
                NOW
            ),
            Err(DropReason::NoEvaluation),
            "the add-on offers no evaluation"
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let cases = [
            (
                request(BASE, false, Some(&key(1)), 1, NOW - 31),
                DropReason::ClockSkew,
            ),
            (
                request(BASE, false, Some(&key(1)), 1, NOW + 31),
                DropReason::ClockSkew,
            ),
            (
                request(Uuid::from_u128(9), false, Some(&key(1)), 1, NOW),
                DropReason::UnknownSku,
            ),
            (
                request(BASE, true, Some(&key(1)), 1, NOW),
                DropReason::AddonMismatch,
            ),
            (
                request(ADDON, false, Some(&key(2)), 1, NOW),
                DropReason::AddonMismatch,
            ),
            (
                request(BASE, false, Some(&key(9)), 1, NOW),
                DropReason::UnknownKey,
            ),
            (
                request(ADDON, true, Some(&key(1)), 1, NOW),
                DropReason::UnknownKey,
            ),
        ];
        for (request, reason) in cases {
            assert_eq!(
                run(&catalog, &mut store, &request, NOW),
                Err(reason),
                "{request:?}"
            );
        }
        let mut short_seed = request(BASE, false, Some(&key(1)), 1, NOW);
        short_seed.client_seed = Zeroizing::new(vec![1; 65]);
        assert_eq!(
            run(&catalog, &mut store, &short_seed, NOW),
            Err(DropReason::BadSeed)
        );
        assert!(
            run(
                &catalog,
                &mut store,
                &request(BASE, false, Some(&key(1)), 1, NOW + 30),
                NOW
            )
            .is_ok(),
            "30 s is allowed"
        );
        assert_eq!(
            store.seats_used(&crate::catalog::license_reference(&key(9))),
            0,
            "refusals take no seat"
        );
    }

    #[test]
    fn expired_licenses_stay_silent() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let end = NOW + 1000;
        assert_eq!(
            run(
                &catalog,
                &mut store,
                &request(BASE, false, Some(&key(3)), 1, end),
                end
            ),
            Err(DropReason::Expired)
        );
    }

    #[test]
    fn server_data_is_fitted_to_the_room_notice_first() {
        let catalog = catalog("");
        let mut store = Store::in_memory().expect("store");
        let req = request(BASE, false, Some(&key(1)), 1, NOW);
        let full = run(&catalog, &mut store, &req, NOW).expect("fits");
        let without_notice = full.server_data_bytes.len() - 3 - "Licensed to Example".len();
        let mut next = ids();
        let trimmed = decide(&catalog, &mut store, &req, NOW, without_notice, &mut next)
            .expect("fits without notice");
        assert_eq!(trimmed.server_data.notice, None);
        assert_eq!(trimmed.server_data.features, vec!["pro".to_owned()]);
        assert!(trimmed.server_data_bytes.len() <= without_notice);
        let mut next = ids();
        assert_eq!(
            decide(
                &catalog,
                &mut store,
                &req,
                NOW,
                without_notice - 1,
                &mut next
            ),
            Err(DropReason::ResponseTooLarge)
        );
    }
}
