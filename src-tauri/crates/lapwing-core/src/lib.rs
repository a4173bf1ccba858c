//! `lapwing-core`: the engine. It turns "a product is installed" into "the product is
//! activated, renewed on time, and the person knows where it stands". It knows nothing of
//! Tauri or terminals: the tray and `lapctl` only read its status and ask it to act.
#![forbid(unsafe_code)]

pub mod clock;
pub mod doctor;
pub mod engine;
pub mod environment;
pub mod identity;
pub mod manifest;
pub mod policy;
pub mod records;
pub mod schedule;
pub mod scheduler;
pub mod sntp;
pub mod state;
pub mod status;
pub mod transport;
