//! `lap-proto`: the License Activation Protocol (draft-lorlacks-…-04) as Lapwing's profile
//! reads it, without I/O. Sockets, clocks and randomness belong to the caller: times come in
//! as UNIX seconds and ephemeral keys as bytes, so every rule is testable and replayable.
//!
//! - [`wire`]: the plaintext layouts, exact-length encode/decode;
//! - [`exchange`]: sealing a request and opening its answer (client), opening a request and
//!   sealing a signed answer (server);
//! - [`time`]: the 5-byte time field and the units of the profile's timings;
//! - profile codecs: [`seed`] (seed v1, MachineHash), [`seed_ext`] (seed extensions, 1.1),
//!   [`server_data`] (TLV v1), [`license_key`] (Crockford base32 + ISO 7064 MOD 1271-36),
//!   [`record`] (activation record, and the sunset record), [`sunset`] (the vendor's final
//!   grant, 1.1), [`delegation`] (an intermediate server's delegation, 1.1).
#![forbid(unsafe_code)]

pub mod crypto;
pub mod delegation;
pub mod error;
pub mod exchange;
pub mod license_key;
pub mod record;
pub mod seed;
pub mod seed_ext;
pub mod server_data;
pub mod sunset;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time;
pub mod wire;

pub use crypto::{EphemeralSecret, HKDF_INFO, ServerPublicKeys, ServerSecretKeys};
pub use delegation::Delegation;
pub use error::{AuthStage, Field, ProtoError};
pub use exchange::{
    Activation, PendingExchange, ResponseSealer, check_request_datagram_len, open_any,
    open_request, seal_raw_request, seal_request,
};
pub use license_key::{LicenseKey, LicenseKeyError};
pub use record::{
    ActivationRecord, ProductRecord, SunsetRecord, VerifiedActivation, VerifiedRecord,
};
pub use seed::{SeedV1, machine_hash};
pub use seed_ext::{Intent, SeedExtensionError, SeedExtensions};
pub use server_data::{LicenseKind, ServerData, ServerDataError, UnknownLicenseKind};
pub use sunset::SunsetGrant;
pub use uuid::Uuid;
pub use wire::{Request, Response};
