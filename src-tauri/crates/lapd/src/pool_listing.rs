//! `lapd pools list`: each pool license, each intermediate holding seats of it, what it was
//! granted, what it last said it uses, and when it was last heard from.

use std::fmt::Write as _;

use serde::Serialize;

use crate::seats::rfc3339;
use crate::store::{SeatStore, StoreError};
use crate::upstream::{StateFile, UpstreamConfig, ending_warning_if_due};

/// Hex digits of an intermediate's MachineHash shown (as `lapd seats list`).
const MACHINE_PREFIX_HEX: usize = 12;

/// One intermediate's grant of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolLine {
    /// The pool license's non-secret reference.
    pub license: String,
    pub machine_hash_prefix: String,
    pub seats_granted: u32,
    /// As the intermediate reported at its last contact (PoolUsage).
    pub seats_in_use: u32,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub last_contact: String,
    /// `active`, or `ended` (past its NotAfter without a renewal: its seats are free again).
    pub state: &'static str,
}

/// Every grant, at time `now`.
pub fn list(store: &dyn SeatStore, now: u64) -> Result<Vec<PoolLine>, StoreError> {
    Ok(store
        .pool_grants()?
        .into_iter()
        .map(|grant| PoolLine {
            machine_hash_prefix: hex::encode(grant.machine)[..MACHINE_PREFIX_HEX].to_owned(),
            seats_granted: grant.seats,
            seats_in_use: grant.in_use,
            not_after: rfc3339(grant.not_after),
            last_contact: rfc3339(grant.last_contact),
            state: if grant.not_after > now {
                "active"
            } else {
                "ended"
            },
            license: grant.license,
        })
        .collect())
}

/// The listing as a table for people, with each pool's seats held by active grants.
pub fn table(lines: &[PoolLine]) -> String {
    let mut out = format!(
        "{:<32}  {:<12}  {:>7}  {:>6}  {:<20}  {:<20}  {}\n",
        "POOL", "INTERMEDIATE", "GRANTED", "IN USE", "NOT AFTER", "LAST CONTACT", "STATE"
    );
    for line in lines {
        let _ = writeln!(
            out,
            "{:<32}  {:<12}  {:>7}  {:>6}  {:<20}  {:<20}  {}",
            line.license,
            line.machine_hash_prefix,
            line.seats_granted,
            line.seats_in_use,
            line.not_after,
            line.last_contact,
            line.state
        );
    }
    let mut pools: Vec<&str> = lines.iter().map(|l| l.license.as_str()).collect();
    pools.dedup();
    for pool in pools {
        let held: u32 = lines
            .iter()
            .filter(|l| l.license == pool && l.state == "active")
            .map(|l| l.seats_granted)
            .sum();
        let _ = writeln!(
            out,
            "pool {pool}: {held} seats held by active intermediates"
        );
    }
    let _ = writeln!(out, "{} intermediates", lines.len());
    out
}

/// One pool as `lapd pools status` shows it on an intermediate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    pub sku: lap_proto::Uuid,
    pub seats_wanted: u32,
    /// `None`: never synced.
    pub seats_granted: Option<u32>,
    /// `None`: the seat database could not be read.
    pub seats_in_use: Option<u32>,
    pub not_after: Option<String>,
    pub renew_after: Option<String>,
    pub last_sync: Option<String>,
    /// `serving`, `ended` (past NotAfter: nothing granted) or `never-synced`.
    pub state: &'static str,
    /// The vendor's Notice at the last sync.
    pub notice: Option<String>,
    /// The warning about the pool's end (renewal overdue, 60 days or less left).
    pub warning: Option<String>,
}

/// Each configured pool at `now`; `in_use` counts a SKU's seats taken, if it can.
pub fn status(
    upstream: &UpstreamConfig,
    state: &StateFile,
    now: u64,
    in_use: impl Fn(lap_proto::Uuid) -> Option<u32>,
) -> Vec<PoolStatus> {
    upstream
        .pools
        .iter()
        .map(|pool| {
            let held = state.pool(pool.sku);
            PoolStatus {
                sku: pool.sku,
                seats_wanted: pool.seats,
                seats_granted: held.map(|h| h.seats),
                seats_in_use: in_use(pool.sku),
                not_after: held.map(|h| rfc3339(h.not_after)),
                renew_after: held.map(|h| rfc3339(h.renew_after)),
                last_sync: held.map(|h| rfc3339(h.synced_at)),
                state: match held {
                    None => "never-synced",
                    Some(h) if now >= h.not_after => "ended",
                    Some(_) => "serving",
                },
                notice: held.and_then(|h| h.notice.clone()),
                warning: held.and_then(|h| ending_warning_if_due(h, now)),
            }
        })
        .collect()
}

/// The status for people.
pub fn status_table(lines: &[PoolStatus]) -> String {
    let mut out = String::new();
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for line in lines {
        let count = |v: Option<u32>| v.map_or_else(|| "-".into(), |n| n.to_string());
        let _ = writeln!(
            out,
            "pool of SKU {}: {}\n  seats: {} granted of {} wanted, {} in use\n  not after: {}\n  renew after: {}\n  last sync: {}",
            line.sku,
            line.state,
            count(line.seats_granted),
            line.seats_wanted,
            count(line.seats_in_use),
            or_dash(&line.not_after),
            or_dash(&line.renew_after),
            or_dash(&line.last_sync),
        );
        if let Some(notice) = &line.notice {
            let _ = writeln!(out, "  vendor's notice: {notice}");
        }
        if let Some(warning) = &line.warning {
            let _ = writeln!(out, "  WARNING: {warning}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PoolAsk;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn grants_are_listed_with_their_state_and_totals() {
        let store = SqliteStore::in_memory().expect("store");
        for (machine, wanted, not_after) in [(1u8, 2, 500), (2, 5, 50)] {
            store
                .grant_pool(&PoolAsk {
                    license: "pool-a",
                    machine: &[machine; 32],
                    wanted,
                    in_use: 1,
                    total: 10,
                    now: 10,
                    not_after,
                })
                .expect("grant");
        }
        let lines = list(&store, 100).expect("list");
        let seen: Vec<(&str, u32, u32, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l.machine_hash_prefix.as_str(),
                    l.seats_granted,
                    l.seats_in_use,
                    l.state,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("010101010101", 2, 1, "active"),
                ("020202020202", 5, 1, "ended")
            ]
        );
        let table = table(&lines);
        assert!(
            table.contains("pool pool-a: 2 seats held by active intermediates")
                && table.ends_with("2 intermediates\n"),
            "{table}"
        );
    }
}
