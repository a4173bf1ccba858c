//! The vendor's side of the indirect setup (profile §10): a pool license's seats granted to
//! customers' intermediate servers, as Seats, NotAfter, RenewAfter, Features and a Delegation
//! signed with the server key.

use lap_proto::time::DAY;
use lap_proto::{Delegation, Request, SeedExtensions, ServerData, ServerSecretKeys, Uuid};
use sha2::{Digest, Sha256};

use crate::catalog::{License, LicenseCatalog, Term};
use crate::decision::{Answer, DropReason};
use crate::intermediate_keys;
use crate::store::{MachineHash, PoolAsk, Store};

/// How long a grant lasts without a renewal when the license does not say (its
/// `seat_lease_days`): an intermediate that stops asking gives its seats back after this.
pub const DEFAULT_POOL_GRANT_DAYS: u32 = 30;

/// The Notice of a pool request from an intermediate too old to send its keys.
pub const UPDATE_NOTICE: &str = "This intermediate server did not send its keys (seed extension IntermediateKeys): update lapd to get a Delegation.";

/// The LicenseId of an intermediate's grant: the same at every renewal, different per pool and
/// per intermediate, and telling nothing about the key.
pub fn grant_license_id(license_ref: &str, machine: &MachineHash) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"lapd-pool-license-id")
        .chain_update(license_ref.as_bytes())
        .chain_update(machine)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_v8(bytes)
}

/// Marks 16 hash bytes as an RFC 9562 version-8 (custom) UUID, so it is never nil.
fn uuid_v8(mut bytes: [u8; 16]) -> Uuid {
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// Answers an intermediate's request for seats of `license` (a pool).
#[allow(
    clippy::too_many_arguments,
    reason = "one step of decide, given what it has already worked out"
)]
pub fn answer(
    catalog: &LicenseCatalog,
    store: &Store,
    keys: &ServerSecretKeys,
    license: &License,
    request: &Request,
    machine: &MachineHash,
    extensions: &SeedExtensions,
    now: u64,
    max_server_data_len: usize,
) -> Result<Answer, DropReason> {
    let wanted = extensions.pool_request.ok_or(DropReason::PoolOnly)?;
    let end = match license.term {
        Term::Until(t) => Some(t),
        // The catalog refuses `days` on a pool: there is no first activation to count from.
        Term::Days(_) | Term::Unlimited => None,
    };
    if end.is_some_and(|end| now >= end) {
        return Err(DropReason::Expired);
    }
    let grant_days = license.seat_lease_days.unwrap_or(DEFAULT_POOL_GRANT_DAYS);
    let grant_end = now + u64::from(grant_days) * DAY;
    let not_after = end.map_or(grant_end, |end| end.min(grant_end));
    let intermediate =
        intermediate_keys::find(&request.client_seed).map_err(|_| DropReason::BadSeed)?;
    // Without its keys an intermediate cannot be delegated: its contact and usage are still
    // recorded, with no seats.
    let ask = PoolAsk {
        license: &license.reference,
        machine,
        wanted: if intermediate.is_some() { wanted } else { 0 },
        in_use: extensions.pool_usage.unwrap_or(0),
        total: license.seats,
        now,
        not_after,
    };
    let grant = store.grant_pool(&ask).map_err(|error| {
        tracing::error!(%error, "cannot record a pool grant; request dropped");
        DropReason::Store
    })?;
    let renew_after = match catalog.renew_after_days {
        Some(days) => (now + u64::from(days) * DAY).min(not_after),
        None => now + (not_after - now) / 2,
    };
    let mut data = ServerData {
        not_after: Some(not_after),
        renew_after: Some(renew_after),
        kind: Some(license.kind),
        in_compliance: Some(ask.in_use <= grant.seats),
        features: license.features.clone(),
        seats: Some(grant.seats),
        ..ServerData::default()
    };
    match intermediate {
        Some(keys_of_intermediate) => {
            let delegation = Delegation::sign(
                keys,
                keys_of_intermediate.ed25519,
                keys_of_intermediate.x25519,
                license.sku,
                grant.seats,
                not_after,
            )
            .map_err(|_| DropReason::ResponseTooLarge)?;
            data.delegation = Some(Box::new(delegation));
            if grant.seats < wanted {
                data.notice = Some(format!(
                    "{} of the {wanted} seats asked for are left in this pool.",
                    grant.seats
                ));
            }
        }
        None => data.notice = Some(UPDATE_NOTICE.to_owned()),
    }
    tracing::info!(
        license = %license.reference,
        wanted,
        granted = grant.seats,
        in_use = ask.in_use,
        "pool granted to an intermediate"
    );
    let server_data_bytes = crate::decision::fit(&mut data, max_server_data_len)?;
    Ok(Answer {
        license_id: grant_license_id(&license.reference, machine),
        server_data: data,
        server_data_bytes,
        license_ref: license.reference.clone(),
    })
}
