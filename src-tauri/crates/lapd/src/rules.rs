//! The license rules: given an opened request and the time, answer or stay silent.
//!
//! Pure apart from the store, so every rule is tested with a fixed `now`.

use lap_proto::time::DAY;
use lap_proto::{LicenseKind, Request, SeedV1, ServerData, Uuid};

use crate::catalog::{License, LicenseCatalog, Sku, Term, evaluation_reference};
use crate::store::{Assignment, Limit, Store, StoreError, Take, Taken, Usage};

/// The clock difference the server tolerates (draft §3.4 check 5).
pub const CLOCK_WINDOW_SECS: u64 = 30;
const HOUR: u64 = 3_600;

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
    /// The SKU's cap on new evaluation machines per window is reached.
    EvaluationCap,
    UnknownKey,
    NoSeat,
    Expired,
    ResponseTooLarge,
    Store,
    /// A request whose ephemeral key was already answered (duplicate or replay).
    Replayed,
    /// Too many requests inside the clock window to remember them all (see `replay`).
    ReplayGuardFull,
}

impl DropReason {
    pub const ALL: [Self; 18] = [
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
        Self::EvaluationCap,
        Self::UnknownKey,
        Self::NoSeat,
        Self::Expired,
        Self::ResponseTooLarge,
        Self::Store,
        Self::Replayed,
        Self::ReplayGuardFull,
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
            Self::EvaluationCap => "evaluation-cap",
            Self::UnknownKey => "unknown-key",
            Self::NoSeat => "no-seat",
            Self::Expired => "expired",
            Self::ResponseTooLarge => "response-too-large",
            Self::Store => "store-error",
            Self::Replayed => "replayed",
            Self::ReplayGuardFull => "replay-guard-full",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What the server answers a request the rules accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub license_id: Uuid,
    pub server_data: ServerData,
    /// The encoded ServerData, already fitted to the request's room.
    pub server_data_bytes: Vec<u8>,
    /// The license's non-secret reference, for the log.
    pub license_ref: String,
}

/// What a request asks a seat of.
enum Grant<'a> {
    Evaluation {
        sku: &'a Sku,
        days: u32,
        reference: String,
    },
    License(&'a License),
}

impl Grant<'_> {
    fn reference(&self) -> &str {
        match self {
            Self::Evaluation { reference, .. } => reference,
            Self::License(license) => &license.reference,
        }
    }

    /// When a new seat may be taken.
    fn limit(&self, now: u64) -> Limit {
        match self {
            Self::Evaluation { sku, .. } => {
                let window = u64::from(sku.evaluation_cap_hours) * HOUR;
                Limit::TakenSince {
                    since: now.saturating_sub(window - 1),
                    cap: sku.evaluation_cap,
                }
            }
            Self::License(license) if license.allow_overuse => Limit::None,
            Self::License(license) => Limit::Seats(license.seats),
        }
    }

    /// Why a new seat was refused when none was left under the limit.
    fn full(&self) -> DropReason {
        match self {
            Self::Evaluation { .. } => DropReason::EvaluationCap,
            Self::License(_) => DropReason::NoSeat,
        }
    }
}

/// Applies every rule of draft §3.4 (checks 5–9) and the profile to an opened request.
pub fn decide(
    catalog: &LicenseCatalog,
    store: &Store,
    request: &Request,
    now: u64,
    max_server_data_len: usize,
    new_license_id: impl FnOnce() -> Uuid,
) -> Result<Answer, DropReason> {
    if request.client_time.abs_diff(now) > CLOCK_WINDOW_SECS {
        return Err(DropReason::ClockSkew);
    }
    let sku = catalog.sku(&request.sku_id).ok_or(DropReason::UnknownSku)?;
    if sku.base.is_some() == request.client_addon_id.is_nil() {
        return Err(DropReason::AddonMismatch);
    }
    let seed = SeedV1::decode(&request.client_seed).map_err(|_| DropReason::BadSeed)?;
    let grant = if seed.is_evaluation() {
        Grant::Evaluation {
            sku,
            days: sku.evaluation_days.ok_or(DropReason::NoEvaluation)?,
            reference: evaluation_reference(sku.id),
        }
    } else {
        Grant::License(
            catalog
                .license(sku.id, &seed.decoded_key)
                .ok_or(DropReason::UnknownKey)?,
        )
    };
    let reference = grant.reference();
    let existing = store
        .seat(reference, &seed.machine_hash, now)
        .map_err(store_failed)?;
    let usage = match grant {
        Grant::Evaluation { .. } => Usage::default(),
        Grant::License(_) => store.usage(reference, now).map_err(store_failed)?,
    };
    // A read before the transaction that would find the same: a flood of new evaluations past
    // the cap costs reads, not writes.
    if let (None, Limit::TakenSince { since, cap }) = (existing, grant.limit(now))
        && store
            .seats_taken_since(reference, since, now)
            .map_err(store_failed)?
            >= cap
    {
        return Err(DropReason::EvaluationCap);
    }

    // Every check runs against what the store holds now; a machine without a seat gets one
    // only after the last of them (the answer fits the room) has passed, so a refusal never
    // takes a seat.
    let mut data = terms(catalog, &grant, existing, usage, now)?;
    let mut server_data_bytes = fit(&mut data, max_server_data_len)?;
    let license_id = if let Some(seat) = existing {
        seat.license_id
    } else {
        let take = Take {
            license: reference,
            machine: &seed.machine_hash,
            license_id: new_license_id(),
            now,
            limit: grant.limit(now),
        };
        match store.take_seat(&take).map_err(store_failed)? {
            Taken::Full => return Err(grant.full()),
            // The terms again, from the seat as taken (by this request, or by the same
            // machine on another server meanwhile) and the count after it.
            Taken::New { seat, usage } | Taken::Held { seat, usage } => {
                data = terms(catalog, &grant, Some(seat), usage, now)?;
                server_data_bytes = fit(&mut data, max_server_data_len)?;
                seat.license_id
            }
        }
    };
    Ok(Answer {
        license_id,
        server_data: data,
        server_data_bytes,
        license_ref: reference.to_owned(),
    })
}

/// The ServerData for a machine holding `existing` (or about to take a seat, with `None`),
/// or why it gets none.
fn terms(
    catalog: &LicenseCatalog,
    grant: &Grant<'_>,
    existing: Option<Assignment>,
    usage: Usage,
    now: u64,
) -> Result<ServerData, DropReason> {
    let mut data = ServerData::default();
    let not_after = match grant {
        Grant::Evaluation { sku, days, .. } => {
            let first_seen = existing.map_or(now, |a| a.first_seen);
            let end = first_seen + u64::from(*days) * DAY;
            if now >= end {
                return Err(DropReason::EvaluationOver);
            }
            data.kind = Some(LicenseKind::Evaluation);
            data.features.clone_from(&sku.evaluation_features);
            data.in_compliance = Some(true);
            Some(end)
        }
        Grant::License(license) => {
            let seats_after = usage.seats_used + u32::from(existing.is_none());
            if existing.is_none() && seats_after > license.seats && !license.allow_overuse {
                return Err(DropReason::NoSeat);
            }
            let end = match license.term {
                Term::Unlimited => None,
                Term::Until(t) => Some(t),
                Term::Days(d) => Some(usage.first_use.unwrap_or(now) + u64::from(d) * DAY),
            };
            if end.is_some_and(|end| now >= end) {
                return Err(DropReason::Expired);
            }
            data.kind = Some(license.kind);
            data.features.clone_from(&license.features);
            data.notice.clone_from(&license.notice);
            data.in_compliance = Some(seats_after <= license.seats);
            end
        }
    };
    data.not_after = not_after;
    if let Some(days) = catalog.renew_after_days {
        let renew = now + u64::from(days) * DAY;
        data.renew_after = Some(not_after.map_or(renew, |end| renew.min(end)));
    }
    Ok(data)
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
    use lap_proto::test_util::key;
    use std::path::Path;
    use zeroize::Zeroizing;

    const NOW: u64 = 1_795_000_000;
    const BASE: Uuid = Uuid::from_u128(0xba5e);
    const ADDON: Uuid = Uuid::from_u128(0xadd0);
    const ROOM: usize = 194;

    fn catalog(extra: &str) -> LicenseCatalog {
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
        LicenseCatalog::parse(&text, Path::new("test.toml")).expect("valid catalog")
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

    fn used(store: &Store, reference: &str) -> u32 {
        store.backend().usage(reference).expect("read").seats_used
    }

    fn seats(store: &Store) -> u64 {
        store.seat_count().expect("read")
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(0x1000 + n)
        }
    }

    fn run(
        catalog: &LicenseCatalog,
        store: &Store,
        request: &Request,
        now: u64,
    ) -> Result<Answer, DropReason> {
        let mut next = ids();
        decide(catalog, store, request, now, ROOM, &mut next)
    }

    #[test]
    fn a_licensed_machine_gets_its_terms_and_keeps_its_license_id() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        let answer = run(
            &catalog,
            &store,
            &request(BASE, false, Some(&key(1)), 1, NOW),
            NOW,
        )
        .expect("granted");
        assert_eq!(answer.server_data.kind, Some(LicenseKind::Term));
        assert_eq!(answer.server_data.not_after, Some(NOW + 365 * DAY));
        assert_eq!(answer.server_data.renew_after, Some(NOW + 7 * DAY));
        assert_eq!(answer.server_data.features, vec!["pro".to_owned()]);
        assert_eq!(
            answer.server_data.notice.as_deref(),
            Some("Licensed to Example")
        );
        assert_eq!(answer.server_data.in_compliance, Some(true));
        assert_eq!(
            ServerData::parse(&answer.server_data_bytes).expect("valid TLV"),
            answer.server_data
        );
        let later = NOW + 100 * DAY;
        let again = run(
            &catalog,
            &store,
            &request(BASE, false, Some(&key(1)), 1, later),
            later,
        )
        .expect("renewed");
        assert_eq!(
            again.license_id, answer.license_id,
            "a machine that comes back keeps its LicenseId"
        );
        assert_eq!(
            again.server_data.not_after, answer.server_data.not_after,
            "the term runs from first use"
        );
        assert_eq!(used(&store, &answer.license_ref), 1);
    }

    #[test]
    fn seats_are_counted_by_machine() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        for machine in [1, 2, 1, 2] {
            run(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(1)), machine, NOW),
                NOW,
            )
            .expect("within seats");
        }
        assert_eq!(
            run(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(1)), 3, NOW),
                NOW
            ),
            Err(DropReason::NoSeat)
        );
    }

    #[test]
    fn overuse_is_answered_but_marked_out_of_compliance() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        let first = run(
            &catalog,
            &store,
            &request(BASE, false, Some(&key(3)), 1, NOW),
            NOW,
        )
        .expect("granted");
        assert_eq!(first.server_data.in_compliance, Some(true));
        let second = run(
            &catalog,
            &store,
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
        let store = Store::in_memory().expect("store");
        let answer =
            run(&catalog, &store, &request(BASE, false, None, 1, NOW), NOW).expect("evaluation");
        assert_eq!(answer.server_data.kind, Some(LicenseKind::Evaluation));
        assert_eq!(answer.server_data.not_after, Some(NOW + 30 * DAY));
        assert_eq!(answer.server_data.features, vec!["trial".to_owned()]);
        let later = NOW + 29 * DAY;
        let again = run(
            &catalog,
            &store,
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
            run(&catalog, &store, &request(BASE, false, None, 1, over), over),
            Err(DropReason::EvaluationOver)
        );
        assert_eq!(
            run(&catalog, &store, &request(ADDON, true, None, 1, NOW), NOW),
            Err(DropReason::NoEvaluation),
            "the add-on offers no evaluation"
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
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
                run(&catalog, &store, &request, NOW),
                Err(reason),
                "{request:?}"
            );
        }
        let mut short_seed = request(BASE, false, Some(&key(1)), 1, NOW);
        short_seed.client_seed = Zeroizing::new(vec![1; 65]);
        assert_eq!(
            run(&catalog, &store, &short_seed, NOW),
            Err(DropReason::BadSeed)
        );
        assert!(
            run(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(1)), 1, NOW + 30),
                NOW
            )
            .is_ok(),
            "30 s is allowed"
        );
        assert_eq!(
            used(&store, &crate::catalog::license_reference(&key(9))),
            0,
            "refusals take no seat"
        );
    }

    #[test]
    fn expired_licenses_stay_silent() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        let end = NOW + 1000;
        assert_eq!(
            run(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(3)), 1, end),
                end
            ),
            Err(DropReason::Expired)
        );
    }

    #[test]
    fn server_data_is_fitted_to_the_room_notice_first() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        let req = request(BASE, false, Some(&key(1)), 1, NOW);
        let full = run(&catalog, &store, &req, NOW).expect("fits");
        let without_notice = full.server_data_bytes.len() - 3 - "Licensed to Example".len();
        let mut next = ids();
        let trimmed = decide(&catalog, &store, &req, NOW, without_notice, &mut next)
            .expect("fits without notice");
        assert_eq!(trimmed.server_data.notice, None);
        assert_eq!(trimmed.server_data.features, vec!["pro".to_owned()]);
        assert!(trimmed.server_data_bytes.len() <= without_notice);
        let mut next = ids();
        assert_eq!(
            decide(&catalog, &store, &req, NOW, without_notice - 1, &mut next),
            Err(DropReason::ResponseTooLarge)
        );
    }

    #[test]
    fn a_refusal_leaves_the_seat_store_unchanged() {
        let one_seat = |n: u8, extra: &str| {
            format!(
                "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"subscription\"\nseats = 1\nnot_after = {}\nnotice = \"Licensed to Example\"\n{extra}",
                key(n).to_display(),
                NOW + 1000
            )
        };
        let catalog = catalog(&(one_seat(4, "") + &one_seat(5, "")));
        let store = Store::in_memory().expect("store");
        let end = NOW + 1000;

        // Expired: refused, and the license's only seat is still free afterwards.
        assert_eq!(
            run(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(4)), 1, end),
                end
            ),
            Err(DropReason::Expired)
        );
        assert_eq!(seats(&store), 0, "an expired license takes no seat");
        run(
            &catalog,
            &store,
            &request(BASE, false, Some(&key(4)), 2, NOW),
            NOW,
        )
        .expect("the only seat is still free");

        // An answer that does not fit the request's room (the amplification rule).
        let mut next = ids();
        assert_eq!(
            decide(
                &catalog,
                &store,
                &request(BASE, false, Some(&key(5)), 1, NOW),
                NOW,
                4,
                &mut next
            ),
            Err(DropReason::ResponseTooLarge)
        );
        let mut next = ids();
        assert_eq!(
            decide(
                &catalog,
                &store,
                &request(BASE, false, None, 1, NOW),
                NOW,
                4,
                &mut next
            ),
            Err(DropReason::ResponseTooLarge)
        );
        assert_eq!(seats(&store), 1, "neither refusal took a seat");
        assert_eq!(
            store
                .seat(&evaluation_reference(BASE), &[1; 32], NOW)
                .expect("read"),
            None,
            "no evaluation started"
        );
        run(
            &catalog,
            &store,
            &request(BASE, false, Some(&key(5)), 2, NOW),
            NOW,
        )
        .expect("the only seat is still free");
        assert_eq!(seats(&store), 2);
    }

    #[test]
    fn new_evaluations_are_capped_per_sku_and_window() {
        let catalog = LicenseCatalog::parse(
            &format!(
                "[[sku]]\nid = \"{BASE}\"\nname = \"Base\"\nevaluation_days = 30\nevaluation_cap = 3\nevaluation_cap_hours = 1\n"
            ),
            Path::new("test.toml"),
        )
        .expect("valid catalog");
        let store = Store::in_memory().expect("store");
        let evaluate = |store: &Store, machine: u8, now: u64| {
            run(
                &catalog,
                store,
                &request(BASE, false, None, machine, now),
                now,
            )
            .map(|_| ())
        };
        for machine in 1..=3 {
            evaluate(&store, machine, NOW).expect("within the cap");
        }
        assert_eq!(
            evaluate(&store, 4, NOW + 10),
            Err(DropReason::EvaluationCap)
        );
        assert_eq!(seats(&store), 3, "the refused machine took no seat");
        evaluate(&store, 2, NOW + 10).expect("a machine already evaluating renews");
        assert_eq!(
            evaluate(&store, 4, NOW + 3599),
            Err(DropReason::EvaluationCap),
            "the window is an hour"
        );
        evaluate(&store, 4, NOW + 3600).expect("an hour later the window has moved on");
        assert_eq!(
            evaluate(&store, 5, NOW + 3600 + 10),
            Ok(()),
            "three in the last hour: 4 alone so far"
        );
    }
}
