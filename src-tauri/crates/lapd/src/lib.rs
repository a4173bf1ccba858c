//! `lapd`, the reference LAP server, as a library: the binary in `main.rs` is its command
//! line. Vendors run it to test their products, the demo runs it, and our tests run it.
#![forbid(unsafe_code)]

pub mod bench;
pub mod catalog;
pub mod datagram;
pub mod dbtool;
pub mod decision;
pub mod dns;
pub mod fsutil;
pub mod intermediate_keys;
pub mod keyfile;
pub mod keys;
pub mod pool;
pub mod pool_listing;
pub mod probe;
pub mod ratelimit;
pub mod replay;
pub mod rules;
pub mod seats;
pub mod server;
pub mod store;
pub mod sunset;
#[cfg(all(unix, feature = "test-util"))]
pub mod test_util;
pub mod upstream;
