//! `lapd seats`: what a vendor's support desk sees of seats and how it frees one, while
//! `lapd serve` runs on the same database (each call is one short transaction).

use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{LicenseCatalog, evaluation_reference};
use crate::rules::lease;
use crate::store::{Lease, ListedSeat, Listing, SeatStore, StoreError};

/// Hex digits of the MachineHash shown: enough to tell a customer's machines apart, not
/// the whole per-vendor identifier.
const MACHINE_PREFIX_HEX: usize = 12;

/// One seat as `lapd seats list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatLine {
    pub seat_id: u64,
    /// The license's non-secret reference (or `eval:<sku>` for evaluations).
    pub license: String,
    pub machine_hash_prefix: String,
    /// RFC 3339, UTC.
    pub first_seen: String,
    pub last_seen: String,
    pub generation: u32,
    /// `held`, or `lease-over` (freed at the license's next request or the next sweep).
    pub state: &'static str,
}

/// Which seats to list.
#[derive(Debug, Clone)]
pub enum Which {
    All,
    /// One license, by its reference.
    License(String),
    /// Every license of a SKU in the catalog, and the SKU's evaluations.
    Sku(lap_proto::Uuid),
}

/// A time as RFC 3339, UTC (the number itself when it is out of range).
pub fn rfc3339(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn past(seat: &ListedSeat, lease: Lease) -> bool {
    match (lease.not_after_before, seat.seat.not_after) {
        (Some(before), Some(not_after)) => not_after < before,
        _ => seat.seat.last_seen < lease.last_seen_before,
    }
}

/// The seats asked for, at time `now`. The catalog gives each license's lease (without it,
/// or for a license no longer in it, the §9 default); evaluations have no lease.
pub fn list(
    store: &dyn SeatStore,
    which: &Which,
    catalog: Option<&LicenseCatalog>,
    now: u64,
) -> Result<Vec<SeatLine>, StoreError> {
    let references: Vec<String> = match which {
        Which::All => Vec::new(),
        Which::License(reference) => vec![reference.clone()],
        Which::Sku(sku) => catalog
            .map(|c| {
                c.licenses()
                    .filter(|l| l.sku == *sku)
                    .map(|l| l.reference.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain([evaluation_reference(*sku)])
            .collect(),
    };
    let seats = match which {
        Which::All => store.list(Listing::All)?,
        _ => store.list(Listing::Licenses(&references))?,
    };
    let default_lease = crate::rules::default_lease(now);
    Ok(seats
        .iter()
        .map(|seat| {
            let license = catalog.and_then(|c| c.licenses().find(|l| l.reference == seat.license));
            let over = !seat.license.starts_with("eval:")
                && past(seat, license.map_or(default_lease, |l| lease(l, now)));
            SeatLine {
                seat_id: seat.seat.seat_id,
                license: seat.license.clone(),
                machine_hash_prefix: hex::encode(seat.machine)[..MACHINE_PREFIX_HEX].to_owned(),
                first_seen: rfc3339(seat.seat.first_seen),
                last_seen: rfc3339(seat.seat.last_seen),
                generation: seat.seat.generation,
                state: if over { "lease-over" } else { "held" },
            }
        })
        .collect())
}

/// The listing as a table for people.
pub fn table(lines: &[SeatLine]) -> String {
    let mut out = format!(
        "{:>8}  {:<44}  {:<12}  {:<20}  {:<20}  {:>10}  {}\n",
        "SEAT", "LICENSE", "MACHINE", "FIRST SEEN", "LAST SEEN", "GENERATION", "STATE"
    );
    for line in lines {
        let _ = writeln!(
            out,
            "{:>8}  {:<44}  {:<12}  {:<20}  {:<20}  {:>10}  {}",
            line.seat_id,
            line.license,
            line.machine_hash_prefix,
            line.first_seen,
            line.last_seen,
            line.generation,
            line.state
        );
    }
    let _ = writeln!(out, "{} seats", lines.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Assignment, SeatRow};
    use lap_proto::time::DAY;

    #[test]
    fn a_seat_past_its_lease_is_listed_as_such() {
        let store = SqliteStore::in_memory().expect("store");
        let now = 1_800_000_000;
        let seat = |machine: u8, last_seen: u64| SeatRow {
            license: "lic".into(),
            machine: [machine; 32],
            seat: Assignment {
                last_seen,
                generation: 4,
                ..Assignment::new(lap_proto::Uuid::from_u128(1), last_seen)
            },
        };
        store
            .import(&[seat(1, now - 10 * DAY), seat(2, now - 181 * DAY)])
            .expect("import");
        let lines = list(&store, &Which::All, None, now).expect("list");
        let states: Vec<(&str, &str, u32)> = lines
            .iter()
            .map(|l| (l.machine_hash_prefix.as_str(), l.state, l.generation))
            .collect();
        assert_eq!(
            states,
            [
                ("010101010101", "held", 4),
                ("020202020202", "lease-over", 4)
            ]
        );
        assert!(
            lines[0].first_seen.ends_with('Z'),
            "{}",
            lines[0].first_seen
        );
        let table = table(&lines);
        assert!(
            table.contains("lease-over") && table.ends_with("2 seats\n"),
            "{table}"
        );
    }
}
