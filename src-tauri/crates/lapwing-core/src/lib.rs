//! `lapwing-core`: the engine. It turns "a product is installed" into "the product is
//! activated, renewed on time, and the person knows where it stands". It knows nothing of
//! Tauri or terminals: the tray and `lapctl` only read its status and ask it to act.
#![forbid(unsafe_code)]

mod apply;
pub mod cause;
mod client_ids;
pub mod clock;
pub mod clock_check;
pub mod deactivate;
pub mod doctor;
pub mod engine;
pub mod environment;
pub mod hardware_move;
pub mod identity;
pub mod manifest;
pub mod netwatch;
pub mod platform;
pub mod policy;
pub mod product_status;
pub mod provision;
pub mod race;
pub mod ranking;
mod rebuild;
pub mod records;
pub mod retry;
pub mod scheduler;
pub mod server_cache;
pub mod server_info;
mod server_race;
pub mod shown;
pub mod sntp;
pub mod state;
pub mod status;
pub mod sunset;
pub mod time_mark;
pub mod time_sources;
pub mod timing;
pub mod transport;
pub mod verdict;
