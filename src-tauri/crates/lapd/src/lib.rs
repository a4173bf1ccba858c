//! `lapd`, the reference LAP server, as a library: the binary in `main.rs` is its command
//! line. Vendors run it to test their products, the demo runs it, and our tests run it.
#![forbid(unsafe_code)]

pub mod bench;
pub mod catalog;
pub mod fsutil;
pub mod keys;
pub mod policy;
pub mod probe;
pub mod ratelimit;
pub mod server;
pub mod store;
