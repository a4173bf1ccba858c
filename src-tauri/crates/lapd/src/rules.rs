//! The license rules: given an opened request and the time, answer or stay silent.
//!
//! Pure apart from the store, so every rule is tested with a fixed `now`.

use lap_proto::time::DAY;
use std::collections::HashMap;

use lap_proto::{
    Delegation, Intent, LicenseKind, Request, SeedExtensions, SeedV1, ServerData, ServerSecretKeys,
    Uuid,
};

use crate::catalog::{License, LicenseCatalog, Sku, Term, evaluation_reference};
use crate::store::{
    Assignment, Lease, Limit, MachineHash, Move, Moved, Released, Store, StoreError, Take, Taken,
    Touch, TransferCap, Usage,
};

/// The clock difference the server tolerates (draft §3.4 check 5).
pub const CLOCK_WINDOW_SECS: u64 = 30;
const HOUR: u64 = 3_600;

pub(crate) use crate::decision::fit;
pub use crate::decision::{Answer, DropReason};

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

/// The profile the server speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// Profile 1.0: Room is ignored entirely; no seed extension is honoured and no 1.1
    /// record (Released, Duplicate) is answered. For clients' tests against an old server.
    V1_0,
    /// Profile 1.1: seed extensions (§2.1) and the lifecycle (§9).
    #[default]
    V1_1,
}

/// The §9 default lease: this long past the last answer's NotAfter…
pub const DEFAULT_LEASE_PAST_NOT_AFTER_DAYS: u64 = 90;
/// …or, for a seat whose last answer had none, this long past its last request.
pub const DEFAULT_LEASE_PAST_LAST_SEEN_DAYS: u64 = 180;
/// The window of `transfers_per_year`.
pub const TRANSFER_WINDOW_SECS: u64 = 365 * DAY;

/// When the license's seats are past their lease at `now`.
pub fn lease(license: &License, now: u64) -> Lease {
    match license.seat_lease_days {
        Some(days) => Lease {
            not_after_before: None,
            last_seen_before: now.saturating_sub(u64::from(days) * DAY),
        },
        None => default_lease(now),
    }
}

/// The §9 default lease at `now`.
pub fn default_lease(now: u64) -> Lease {
    Lease {
        not_after_before: Some(now.saturating_sub(DEFAULT_LEASE_PAST_NOT_AFTER_DAYS * DAY)),
        last_seen_before: now.saturating_sub(DEFAULT_LEASE_PAST_LAST_SEEN_DAYS * DAY),
    }
}

/// Frees the seats past their lease of every license in the catalog: the periodic sweep,
/// so that seats come back even to licenses nobody asks for. Evaluations are never freed (a
/// freed evaluation would start again). Returns how many seats were freed.
pub fn sweep_leases(catalog: &LicenseCatalog, store: &Store, now: u64) -> Result<u32, StoreError> {
    let mut freed = 0u32;
    for license in catalog.licenses() {
        freed = freed.saturating_add(store.reclaim_expired(
            &license.reference,
            lease(license, now),
            now,
        )?);
    }
    Ok(freed)
}

fn transfer_cap(license: &License, now: u64) -> Option<TransferCap> {
    license.transfers_per_year.map(|cap| TransferCap {
        since: now.saturating_sub(TRANSFER_WINDOW_SECS - 1),
        cap,
    })
}

/// The Notice of a transfer refused by the cap: the first day the oldest counted transfer has
/// left the window (UTC), so the date is never early; `None`: the cap is 0.
pub fn next_transfer_notice(oldest_counted: Option<u64>) -> String {
    let Some(oldest_counted) = oldest_counted else {
        return "This license cannot be moved to another computer.".to_owned();
    };
    let possible = oldest_counted.saturating_add(TRANSFER_WINDOW_SECS);
    let date = i64::try_from(possible)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| {
            // The next day when the moment is not midnight: a date means "from that day on".
            let day = t.date();
            if t.time() == time::Time::MIDNIGHT {
                day
            } else {
                day.next_day().unwrap_or(day)
            }
        });
    match date {
        Some(date) => format!("This license can move again on {date}."),
        None => "This license has reached its transfer limit.".to_owned(),
    }
}

/// Applies every rule of draft §3.4 (checks 5–9) and the profile (1.1) to an opened request.
pub fn decide(
    catalog: &LicenseCatalog,
    store: &Store,
    request: &Request,
    now: u64,
    max_server_data_len: usize,
    new_license_id: impl FnOnce() -> Uuid,
) -> Result<Answer, DropReason> {
    decide_as(
        Profile::V1_1,
        catalog,
        store,
        request,
        now,
        max_server_data_len,
        new_license_id,
    )
}

/// As [`decide`], speaking `profile`.
pub fn decide_as(
    profile: Profile,
    catalog: &LicenseCatalog,
    store: &Store,
    request: &Request,
    now: u64,
    max_server_data_len: usize,
    new_license_id: impl FnOnce() -> Uuid,
) -> Result<Answer, DropReason> {
    let context = Context {
        profile,
        ..Context::default()
    };
    decide_in(
        &context,
        catalog,
        store,
        request,
        now,
        max_server_data_len,
        new_license_id,
    )
}

/// What an intermediate may grant of a SKU it serves from its upstream pool (§10), as its
/// last sync with the vendor left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolTerms {
    pub seats: u32,
    pub not_after: u64,
    /// The pool's features: a client gets the license's that are among them.
    pub features: Vec<String>,
    pub delegation: Delegation,
}

/// The SKUs an intermediate serves from upstream pools, by SKU; `None`: served, but no pool
/// is held (never synced, or ended), so nothing is granted.
pub type Pools = HashMap<Uuid, Option<PoolTerms>>;

/// Who is deciding: a vendor's server (keys to sign Delegations with) or an intermediate
/// (pools to draw seats from), speaking which profile.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub profile: Profile,
    /// The server's keys, for Delegations: without them a pool request is not answered.
    pub keys: Option<&'a ServerSecretKeys>,
    /// An intermediate's pools; `None` for a server that is no intermediate.
    pub pools: Option<&'a Pools>,
}

/// The license as an intermediate may grant it: its seats capped by what the pool has left
/// after the intermediate's other licenses of the SKU.
fn drawn_from_pool(
    catalog: &LicenseCatalog,
    store: &Store,
    license: &License,
    pool: &PoolTerms,
    now: u64,
) -> Result<License, DropReason> {
    if now >= pool.not_after {
        return Err(DropReason::NoPool);
    }
    let mut others = 0u32;
    for other in catalog.licenses() {
        if other.sku == license.sku && other.reference != license.reference {
            others = others.saturating_add(
                store
                    .usage(&other.reference, now)
                    .map_err(store_failed)?
                    .seats_used,
            );
        }
    }
    let mut capped = license.clone();
    capped.seats = license.seats.min(pool.seats.saturating_sub(others));
    // Never more than the pool: overuse would be the vendor's seats, not the customer's.
    capped.allow_overuse = false;
    Ok(capped)
}

/// As [`decide`], in `context`.
#[allow(
    clippy::too_many_lines,
    reason = "the rules in the order the profile gives them"
)]
pub fn decide_in(
    context: &Context<'_>,
    catalog: &LicenseCatalog,
    store: &Store,
    request: &Request,
    now: u64,
    max_server_data_len: usize,
    new_license_id: impl FnOnce() -> Uuid,
) -> Result<Answer, DropReason> {
    let profile = context.profile;
    if request.client_time.abs_diff(now) > CLOCK_WINDOW_SECS {
        return Err(DropReason::ClockSkew);
    }
    let sku = catalog.sku(&request.sku_id).ok_or(DropReason::UnknownSku)?;
    if sku.base.is_some() == request.client_addon_id.is_nil() {
        return Err(DropReason::AddonMismatch);
    }
    let (seed, extensions) = match profile {
        Profile::V1_0 => (
            SeedV1::decode(&request.client_seed).map_err(|_| DropReason::BadSeed)?,
            SeedExtensions::default(),
        ),
        // A malformed extension area is a malformed seed: silence (§2.1).
        Profile::V1_1 => {
            SeedV1::decode_with_extensions(&request.client_seed).map_err(|_| DropReason::BadSeed)?
        }
    };
    let served = context.pools.and_then(|pools| pools.get(&sku.id));
    let capped;
    let mut pool = None;
    let mut pool_ended = false;
    let grant = if seed.is_evaluation() {
        // An intermediate's evaluations would be the vendor's to give, not the pool's.
        if served.is_some() {
            return Err(DropReason::NoEvaluation);
        }
        Grant::Evaluation {
            sku,
            days: sku.evaluation_days.ok_or(DropReason::NoEvaluation)?,
            reference: evaluation_reference(sku.id),
        }
    } else {
        let license = catalog
            .license(sku.id, &seed.decoded_key)
            .ok_or(DropReason::UnknownKey)?;
        if license.pool {
            // §10: a pool goes to intermediates, which say so with PoolRequest; a desktop
            // holding a pool's key stays unanswered.
            let keys = context.keys.ok_or(DropReason::PoolOnly)?;
            if profile == Profile::V1_0 || extensions.pool_request.is_none() {
                return Err(DropReason::PoolOnly);
            }
            return crate::pool::answer(
                catalog,
                store,
                keys,
                license,
                request,
                &seed.machine_hash,
                &extensions,
                now,
                max_server_data_len,
            );
        }
        let releasing = extensions.intent == Intent::Release;
        match served {
            // Freeing a seat costs the vendor nothing: an intermediate whose pool has ended
            // still frees seats (and grants nothing, see below).
            Some(None) if releasing => {
                pool_ended = true;
                Grant::License(license)
            }
            Some(Some(terms)) if releasing && now >= terms.not_after => {
                pool_ended = true;
                Grant::License(license)
            }
            Some(None) => return Err(DropReason::NoPool),
            Some(Some(terms)) => {
                capped = drawn_from_pool(catalog, store, license, terms, now)?;
                pool = Some(terms);
                Grant::License(&capped)
            }
            None => Grant::License(license),
        }
    };
    if extensions.intent == Intent::Release {
        // §9: a release names the LicenseId it holds; without one it is not a release.
        if request.current_license_id.is_nil() {
            return Err(DropReason::BadSeed);
        }
        let answer = release(
            catalog,
            store,
            &grant,
            pool,
            request,
            &seed.machine_hash,
            now,
            max_server_data_len,
        )?;
        // A release refused (the transfer cap) answers a grant, which an ended pool cannot
        // back: silence, and the client keeps what it has.
        if pool_ended && !answer.server_data.released {
            return Err(DropReason::NoPool);
        }
        return Ok(answer);
    }
    let reference = grant.reference();
    let mut existing = store
        .seat(reference, &seed.machine_hash, now)
        .map_err(store_failed)?;
    let mut usage = match grant {
        Grant::Evaluation { .. } => Usage::default(),
        Grant::License(_) => store.usage(reference, now).map_err(store_failed)?,
    };
    if let (None, Grant::License(license)) = (existing, &grant) {
        // Before a new machine is told the license is full: seats past their lease are
        // freed, and the count is read afresh (another process may have freed one).
        if profile == Profile::V1_1 && !license.allow_overuse && usage.seats_used >= license.seats {
            let freed = store
                .reclaim_expired(reference, lease(license, now), now)
                .map_err(store_failed)?;
            if freed > 0 {
                tracing::info!(license = %reference, freed, "seats past their lease freed");
            }
            usage = store.usage_uncached(reference, now).map_err(store_failed)?;
        }
        // A hardware change: the seat of the old hash moves here when this installation
        // took it. The answer is checked first, so that a refusal moves nothing.
        if let Some(previous) = extensions.previous_machine_hash
            && previous != seed.machine_hash
        {
            let held = Assignment::new(Uuid::nil(), now);
            let mut data = terms(catalog, &grant, pool, Some(held), usage, now)?;
            fit(&mut data, max_server_data_len)?;
            let moved = store
                .move_seat(&Move {
                    license: reference,
                    from: &previous,
                    to: &seed.machine_hash,
                    client_base_id: request.client_base_id,
                    now,
                    cap: transfer_cap(license, now),
                })
                .map_err(store_failed)?;
            if let Moved::Moved { seat, usage: after } = moved {
                tracing::info!(license = %reference, seat = seat.seat_id, "seat moved to new hardware");
                existing = Some(seat);
                usage = after;
            }
        }
    }
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
    let mut data = terms(catalog, &grant, pool, existing, usage, now)?;
    let mut server_data_bytes = fit(&mut data, max_server_data_len)?;
    let generation = match profile {
        Profile::V1_0 => None,
        Profile::V1_1 => extensions.generation,
    };
    let license_id = if let Some(seat) = existing {
        let touch = Touch {
            license: reference,
            machine: &seed.machine_hash,
            now,
            not_after: data.not_after,
            generation,
            client_base_id: request.client_base_id,
        };
        let before = match store.touch(&touch, seat) {
            Ok(Some(before)) => before,
            // Freed meanwhile by another process (the cache has forgotten it now): decided
            // again from the database, as a machine without a seat.
            Ok(None) => {
                return decide_in(
                    context,
                    catalog,
                    store,
                    request,
                    now,
                    max_server_data_len,
                    new_license_id,
                );
            }
            Err(error) => {
                // A returning machine is answered from the cache; its last-seen waits.
                tracing::warn!(%error, "seat's last-seen and generation not recorded");
                seat
            }
        };
        // §9: a lower Generation than seen before is a clone or a restored snapshot; the
        // same one is a retry of an unanswered request.
        if generation.is_some_and(|g| g < before.generation) {
            data.duplicate = true;
            server_data_bytes = fit(&mut data, max_server_data_len)?;
        }
        seat.license_id
    } else {
        let take = Take {
            license: reference,
            machine: &seed.machine_hash,
            license_id: new_license_id(),
            now,
            limit: grant.limit(now),
            client_base_id: Some(request.client_base_id),
            generation: generation.unwrap_or(0),
            not_after: data.not_after,
        };
        match store.take_seat(&take).map_err(store_failed)? {
            Taken::Full => return Err(grant.full()),
            // The terms again, from the seat as taken (by this request, or by the same
            // machine on another server meanwhile) and the count after it.
            Taken::New { seat, usage } | Taken::Held { seat, usage } => {
                data = terms(catalog, &grant, pool, Some(seat), usage, now)?;
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

/// A release (§9): the seat freed durably, then Released with NotAfter = ServerTime; a seat
/// not held gets the same answer. An evaluation is never freed (a new one would start) and a
/// license past its transfer cap keeps its seat: both get their ordinary grant and a Notice.
#[allow(
    clippy::too_many_arguments,
    reason = "one step of decide, given what it has already worked out"
)]
fn release(
    catalog: &LicenseCatalog,
    store: &Store,
    grant: &Grant<'_>,
    pool: Option<&PoolTerms>,
    request: &Request,
    machine: &MachineHash,
    now: u64,
    max_server_data_len: usize,
) -> Result<Answer, DropReason> {
    let reference = grant.reference();
    let released = |license_id: Uuid| {
        let mut data = ServerData {
            released: true,
            not_after: Some(now),
            ..ServerData::default()
        };
        let server_data_bytes = fit(&mut data, max_server_data_len)?;
        Ok(Answer {
            license_id,
            server_data: data,
            server_data_bytes,
            license_ref: reference.to_owned(),
        })
    };
    let (refusal, license) = match grant {
        Grant::Evaluation { .. } => (
            "An evaluation stays on the computer it started on.".to_owned(),
            None,
        ),
        Grant::License(license) => {
            match store
                .release(reference, machine, now, transfer_cap(license, now))
                .map_err(store_failed)?
            {
                Released::Freed(seat) => {
                    tracing::info!(license = %reference, seat = seat.seat_id, "seat released");
                    return released(seat.license_id);
                }
                Released::NotHeld => return released(request.current_license_id),
                Released::CapReached { oldest_counted } => {
                    (next_transfer_notice(oldest_counted), Some(license))
                }
            }
        }
    };
    let Some(seat) = store.seat(reference, machine, now).map_err(store_failed)? else {
        // Nothing held (an evaluation never started here): nothing to keep.
        return released(request.current_license_id);
    };
    let usage = match license {
        Some(_) => store.usage(reference, now).map_err(store_failed)?,
        None => Usage::default(),
    };
    let mut data = terms(catalog, grant, pool, Some(seat), usage, now)?;
    data.notice = Some(refusal);
    let server_data_bytes = fit(&mut data, max_server_data_len)?;
    Ok(Answer {
        license_id: seat.license_id,
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
    pool: Option<&PoolTerms>,
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
    // An intermediate's client: never past the pool, never a feature the pool lacks, and the
    // vendor's Delegation that lets the product trust this server's signature (§10).
    let not_after = match pool {
        Some(pool) => {
            data.features.retain(|f| pool.features.contains(f));
            data.delegation = Some(Box::new(pool.delegation.clone()));
            Some(not_after.map_or(pool.not_after, |end| end.min(pool.not_after)))
        }
        None => not_after,
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

    /// A 1.1 request from installation `client` on `machine` with these extensions.
    fn request_11(
        key: Option<&LicenseKey>,
        machine: u8,
        client: u128,
        license_id: Uuid,
        extensions: &SeedExtensions,
        time: u64,
    ) -> Request {
        let mut request = request(BASE, false, key, machine, time);
        let seed = SeedV1::decode(&request.client_seed).expect("seed");
        request.client_seed = Zeroizing::new(
            seed.encode_with_extensions(ROOM - 66, extensions)
                .expect("room")
                .to_vec(),
        );
        request.client_base_id = Uuid::from_u128(client);
        request.current_license_id = license_id;
        request
    }

    fn release_ext() -> SeedExtensions {
        SeedExtensions {
            intent: Intent::Release,
            ..SeedExtensions::default()
        }
    }

    fn generation(n: u32) -> SeedExtensions {
        SeedExtensions {
            generation: Some(n),
            ..SeedExtensions::default()
        }
    }

    /// A catalog with one license for key 6 on BASE: perpetual, `seats`, and `extra` lines.
    fn lifecycle_catalog(seats: u32, extra: &str) -> LicenseCatalog {
        catalog(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = {seats}\n{extra}\n",
            key(6).to_display()
        ))
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

    #[test]
    fn a_release_frees_the_seat_durably_and_is_idempotent() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let none = SeedExtensions::default();
        let k = key(6);
        let first = run(
            &catalog,
            &store,
            &request_11(Some(&k), 1, 1, Uuid::nil(), &none, NOW),
            NOW,
        )
        .expect("granted");
        assert_eq!(
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 2, 2, Uuid::nil(), &none, NOW),
                NOW
            ),
            Err(DropReason::NoSeat)
        );
        let release = request_11(Some(&k), 1, 1, first.license_id, &release_ext(), NOW);
        let released = run(&catalog, &store, &release, NOW).expect("released");
        assert!(
            released.server_data.confirms_release(NOW),
            "{:?}",
            released.server_data
        );
        assert_eq!(released.license_id, first.license_id);
        assert_eq!(
            ServerData::parse(&released.server_data_bytes).expect("valid"),
            released.server_data
        );
        assert_eq!(
            store
                .backend()
                .seat(&first.license_ref, &[1; 32])
                .expect("read"),
            None,
            "freed in the database before the answer"
        );
        let again = run(&catalog, &store, &release, NOW + 1).expect("idempotent");
        assert!(again.server_data.confirms_release(NOW + 1));
        assert_eq!(used(&store, &first.license_ref), 0);
        run(
            &catalog,
            &store,
            &request_11(Some(&k), 2, 2, Uuid::nil(), &none, NOW),
            NOW,
        )
        .expect("the freed seat goes to the next computer");

        // Not a release: no LicenseId named, or a malformed extension area. Nothing changes.
        let nameless = request_11(Some(&k), 2, 2, Uuid::nil(), &release_ext(), NOW);
        assert_eq!(
            run(&catalog, &store, &nameless, NOW),
            Err(DropReason::BadSeed)
        );
        let mut malformed = request_11(Some(&k), 2, 2, first.license_id, &release_ext(), NOW);
        // A second Intent record after the first: a duplicate type.
        let room = 66 + 4;
        malformed.client_seed[room..room + 4].copy_from_slice(&[1, 1, 0, 1]);
        assert_eq!(
            run(&catalog, &store, &malformed, NOW),
            Err(DropReason::BadSeed)
        );
        assert_eq!(used(&store, &first.license_ref), 1, "the seat stays taken");
    }

    #[test]
    fn past_the_transfer_limit_a_release_gets_a_grant_and_the_date() {
        let catalog = lifecycle_catalog(1, "transfers_per_year = 1");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let none = SeedExtensions::default();
        let activate = |now| {
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 1, 1, Uuid::nil(), &none, now),
                now,
            )
            .expect("granted")
        };
        let release = |id, now| {
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 1, 1, id, &release_ext(), now),
                now,
            )
            .expect("answered")
        };
        let id = activate(NOW).license_id;
        assert!(release(id, NOW).server_data.released);
        let later = NOW + 10 * DAY;
        let id = activate(later).license_id;
        let refused = release(id, later);
        assert!(!refused.server_data.released, "an ordinary grant");
        assert_eq!(refused.license_id, id);
        assert_eq!(refused.server_data.kind, Some(LicenseKind::Perpetual));
        // NOW is 2026-11-18 19:46:40 UTC: a year later, from the next day on.
        assert_eq!(
            refused.server_data.notice.as_deref(),
            Some("This license can move again on 2027-11-19.")
        );
        assert_eq!(used(&store, &refused.license_ref), 1, "the seat stays");
        let year = NOW + TRANSFER_WINDOW_SECS;
        assert!(
            release(id, year).server_data.released,
            "a year after the first transfer"
        );
    }

    #[test]
    fn a_move_keeps_the_license_id_for_its_installation_only() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let none = SeedExtensions::default();
        let first = run(
            &catalog,
            &store,
            &request_11(Some(&k), 1, 0xA, Uuid::nil(), &none, NOW),
            NOW,
        )
        .expect("granted");
        let moved_from = |from: u8| SeedExtensions {
            previous_machine_hash: Some([from; 32]),
            ..SeedExtensions::default()
        };
        assert_eq!(
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 2, 0xB, Uuid::nil(), &moved_from(1), NOW),
                NOW
            ),
            Err(DropReason::NoSeat),
            "another installation with the old hash gets nothing from it"
        );
        let moved = run(
            &catalog,
            &store,
            &request_11(Some(&k), 2, 0xA, first.license_id, &moved_from(1), NOW + 5),
            NOW + 5,
        )
        .expect("moved");
        assert_eq!(moved.license_id, first.license_id, "the LicenseId is kept");
        assert_eq!(used(&store, &first.license_ref), 1);
        assert_eq!(
            store
                .backend()
                .seat(&first.license_ref, &[1; 32])
                .expect("read"),
            None
        );
        assert_eq!(
            store
                .backend()
                .transfers_since(&first.license_ref, 0)
                .expect("count"),
            1,
            "a move is a transfer"
        );
    }

    #[test]
    fn past_the_transfer_limit_a_moved_machine_needs_a_free_seat() {
        let catalog = lifecycle_catalog(2, "transfers_per_year = 0");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let first = run(
            &catalog,
            &store,
            &request_11(
                Some(&k),
                1,
                0xA,
                Uuid::nil(),
                &SeedExtensions::default(),
                NOW,
            ),
            NOW,
        )
        .expect("granted");
        let moved_from_1 = SeedExtensions {
            previous_machine_hash: Some([1; 32]),
            ..SeedExtensions::default()
        };
        let second = run(
            &catalog,
            &store,
            &request_11(Some(&k), 2, 0xA, first.license_id, &moved_from_1, NOW),
            NOW,
        )
        .expect("a free seat");
        assert!(
            store
                .backend()
                .seat(&second.license_ref, &[1; 32])
                .expect("read")
                .is_some(),
            "a new seat, not a move: the old one stays"
        );
        assert_eq!(used(&store, &first.license_ref), 2);
        assert_eq!(
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 3, 0xA, first.license_id, &moved_from_1, NOW),
                NOW
            ),
            Err(DropReason::NoSeat),
            "and none once they are taken"
        );
    }

    #[test]
    fn a_seat_past_its_lease_is_freed_for_the_next_machine() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let none = SeedExtensions::default();
        let ask = |machine: u8, now: u64| {
            run(
                &catalog,
                &store,
                &request_11(
                    Some(&k),
                    machine,
                    u128::from(machine),
                    Uuid::nil(),
                    &none,
                    now,
                ),
                now,
            )
        };
        ask(1, NOW).expect("granted");
        ask(1, NOW + 100 * DAY).expect("renewed: seen again");
        let lease_end = NOW + 100 * DAY + DEFAULT_LEASE_PAST_LAST_SEEN_DAYS * DAY;
        assert_eq!(
            ask(2, lease_end),
            Err(DropReason::NoSeat),
            "180 days, not more"
        );
        ask(2, lease_end + 1).expect("the seat was freed");

        let catalog = lifecycle_catalog(1, "seat_lease_days = 10");
        let store = Store::in_memory().expect("store");
        let ask = |machine: u8, now: u64| {
            run(
                &catalog,
                &store,
                &request_11(
                    Some(&k),
                    machine,
                    u128::from(machine),
                    Uuid::nil(),
                    &none,
                    now,
                ),
                now,
            )
        };
        ask(1, NOW).expect("granted");
        assert_eq!(ask(2, NOW + 10 * DAY), Err(DropReason::NoSeat));
        assert_eq!(
            sweep_leases(&catalog, &store, NOW + 10 * DAY).expect("sweep"),
            0
        );
        assert_eq!(
            sweep_leases(&catalog, &store, NOW + 10 * DAY + 1).expect("sweep"),
            1,
            "the sweep frees it without a request"
        );
        ask(2, NOW + 10 * DAY + 1).expect("the seat is free");
    }

    #[test]
    fn a_lower_generation_is_flagged_and_a_retry_is_not() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let ask = |n: u32, now: u64| {
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 1, 1, Uuid::nil(), &generation(n), now),
                now,
            )
            .expect("answered")
            .server_data
            .duplicate
        };
        assert!(!ask(1, NOW));
        assert!(!ask(2, NOW + 10));
        assert!(!ask(2, NOW + 20), "a retry sends the same count");
        assert!(ask(1, NOW + 30), "a clone or a snapshot");
        assert!(!ask(3, NOW + 40));
        let fresh = Store::in_memory().expect("store");
        let from_database = run(
            &catalog,
            &fresh,
            &request_11(Some(&k), 1, 1, Uuid::nil(), &generation(5), NOW),
            NOW,
        );
        assert!(from_database.is_ok());
        assert_eq!(
            fresh
                .backend()
                .seat(&crate::catalog::license_reference(&k), &[1; 32])
                .expect("read")
                .map(|s| s.generation),
            Some(5),
            "a new seat keeps the count it was taken with"
        );
    }

    #[test]
    fn profile_1_0_ignores_room_and_answers_a_release_with_a_grant() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let run_10 = |request: &Request, now| {
            let mut next = ids();
            decide_as(
                Profile::V1_0,
                &catalog,
                &store,
                request,
                now,
                ROOM,
                &mut next,
            )
        };
        let first = run_10(
            &request_11(Some(&k), 1, 1, Uuid::nil(), &generation(5), NOW),
            NOW,
        )
        .expect("granted");
        let release = request_11(Some(&k), 1, 1, first.license_id, &release_ext(), NOW);
        let answer = run_10(&release, NOW).expect("a plain grant");
        assert!(!answer.server_data.released);
        assert_eq!(answer.license_id, first.license_id);
        assert_eq!(used(&store, &first.license_ref), 1, "nothing freed");
        let lower = run_10(
            &request_11(Some(&k), 1, 1, Uuid::nil(), &generation(1), NOW),
            NOW,
        )
        .expect("granted");
        assert!(!lower.server_data.duplicate, "no 1.1 record");
    }

    #[test]
    fn an_evaluation_is_not_released() {
        let catalog = catalog("");
        let store = Store::in_memory().expect("store");
        let first = run(
            &catalog,
            &store,
            &request_11(None, 1, 1, Uuid::nil(), &SeedExtensions::default(), NOW),
            NOW,
        )
        .expect("evaluation");
        let answer = run(
            &catalog,
            &store,
            &request_11(None, 1, 1, first.license_id, &release_ext(), NOW),
            NOW,
        )
        .expect("answered");
        assert!(!answer.server_data.released);
        assert_eq!(answer.server_data.kind, Some(LicenseKind::Evaluation));
        assert_eq!(
            answer.server_data.notice.as_deref(),
            Some("An evaluation stays on the computer it started on.")
        );
        assert!(
            store
                .backend()
                .seat(&first.license_ref, &[1; 32])
                .expect("read")
                .is_some()
        );
    }

    #[test]
    fn a_seat_freed_by_another_process_is_taken_again_not_answered_from_the_cache() {
        let catalog = lifecycle_catalog(1, "");
        let store = Store::in_memory().expect("store");
        let k = key(6);
        let ask = |n: u32, now: u64| {
            run(
                &catalog,
                &store,
                &request_11(Some(&k), 1, 1, Uuid::nil(), &generation(n), now),
                now,
            )
        };
        let first = ask(1, NOW).expect("granted");
        // As `lapd seats release` does from another process: the cache still holds the seat.
        store
            .backend()
            .release(&first.license_ref, &[1; 32], NOW, None)
            .expect("released");
        let again = ask(2, NOW + 1).expect("answered");
        let seat = store
            .backend()
            .seat(&first.license_ref, &[1; 32])
            .expect("read")
            .expect("a seat taken again");
        assert_eq!(seat.first_seen, NOW + 1, "a new seat, recorded");
        assert_eq!(again.license_id, seat.license_id);
    }
}
