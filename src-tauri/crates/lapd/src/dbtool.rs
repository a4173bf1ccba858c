//! `lapd db`: copying seats from one database into another (SQLite into PostgreSQL), and
//! filling one with made-up seats for the benchmarks.

use lap_proto::Uuid;

use crate::bench::{FILL_STRIDE, filled_machine};
use crate::store::{Assignment, SeatRow, SeatStore, StoreError};

/// Seats per transaction when copying or filling.
pub const BATCH: usize = 10_000;

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Seats read from the source.
    pub read: u64,
    /// Of those, seats the target did not hold yet.
    pub added: u64,
}

/// Copies every seat of `from` into `to`, a batch per transaction; seats `to` already holds
/// stay as they are (so an interrupted import can be run again). `progress` hears after
/// each batch.
pub fn copy(
    from: &dyn SeatStore,
    to: &dyn SeatStore,
    batch: usize,
    progress: &mut dyn FnMut(Copied),
) -> Result<Copied, StoreError> {
    let mut copied = Copied::default();
    from.export(batch, &mut |rows| {
        copied.added += to.import(rows)?;
        copied.read += rows.len() as u64;
        progress(copied);
        Ok(())
    })?;
    Ok(copied)
}

/// Adds `seats` made-up seats, one in [`FILL_STRIDE`] under `license` (machines
/// [`filled_machine`] 0, 10, 20, …, which `lapd bench --machines filled` asks as), the others
/// spread over licenses of their own, nine seats each; first seen before `now`.
pub fn fill(
    to: &dyn SeatStore,
    seats: u64,
    license: &str,
    now: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let mut added = 0;
    let mut rows = Vec::with_capacity(BATCH);
    for n in 0..seats {
        let reference = if n % FILL_STRIDE == 0 {
            license.to_owned()
        } else {
            format!("fill-{:012}", n / FILL_STRIDE)
        };
        rows.push(SeatRow {
            license: reference,
            machine: filled_machine(n),
            seat: Assignment::new(
                Uuid::from_u128(u128::from(n) + 1),
                now.saturating_sub(seats - n),
            ),
        });
        if rows.len() == BATCH || n + 1 == seats {
            added += to.import(&rows)?;
            rows.clear();
            progress(added);
        }
    }
    Ok(added)
}
