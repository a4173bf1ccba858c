//! Seat assignments, kept in a database so that restarts keep seats and LicenseIds: SQLite
//! (embedded, one server) or PostgreSQL (any number of servers).
//!
//! Nothing is loaded at start-up: a request reads the machine's seat and its license's count
//! with indexed queries, through bounded caches ([`cached`]). A new seat is durable in the
//! database before the answer goes out; the writes of requests handled at the same time share
//! one commit ([`group`]).

pub mod cached;
pub mod group;
pub mod location;
pub mod model;
pub mod postgres;
pub mod sqlite;

pub use cached::Store;
pub use group::CommitStats;
pub use location::DbLocation;
pub use model::{
    Assignment, Lease, Limit, ListedSeat, Listing, MachineHash, Move, Moved, PoolAsk, PoolGrant,
    Released, SCHEMA_VERSION, SeatRow, SeatStore, StoreError, Take, Taken, Touch, TransferCap,
    Usage, Write, Written,
};
