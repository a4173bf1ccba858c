//! `lap-proto`: the License Activation Protocol (draft-lorlacks-…-04) as Lapwing's profile
//! reads it, without I/O. Sockets, clocks and randomness belong to the caller: times come in
//! as UNIX seconds and ephemeral keys as bytes, so every rule is testable and replayable.
//!
//! - [`wire`]: the plaintext layouts, exact-length encode/decode;
//! - [`exchange`]: sealing a request and opening its answer (client), opening a request and
//!   sealing a signed answer (server);
//! - [`time`]: the 5-byte time field and the units of the profile's timings;
//! - profile codecs: [`seed`] (seed v1, MachineHash), [`server_data`] (TLV v1),
//!   [`license_key`] (Crockford base32 + ISO 7064 MOD 1271-36), [`record`] (activation record).
#![forbid(unsafe_code)]

pub mod crypto;
pub mod error;
pub mod exchange;
pub mod license_key;
pub mod record;
pub mod seed;
pub mod server_data;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time;
pub mod wire;

pub use crypto::{EphemeralSecret, HKDF_INFO, ServerPublicKeys, ServerSecretKeys};
pub use error::{AuthStage, Field, ProtoError};
pub use exchange::{
    Activation, PendingExchange, ResponseSealer, check_request_datagram_len, open_any,
    open_request, seal_raw_request, seal_request,
};
pub use license_key::{LicenseKey, LicenseKeyError};
pub use record::{ActivationRecord, VerifiedActivation};
pub use seed::{SeedV1, machine_hash};
pub use server_data::{LicenseKind, ServerData, ServerDataError, UnknownLicenseKind};
pub use uuid::Uuid;
pub use wire::{Request, Response};
