//! The one error type of `lap-proto`.

use crate::license_key::LicenseKeyError;
use crate::seed_ext::SeedExtensionError;
use crate::time::TimeOutOfRange;

/// Why a ServerData was refused. Any of them invalidates the whole response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerDataError {
    #[error("record at offset {offset} runs past the end")]
    Truncated { offset: usize },
    #[error("record type {record_type:#04x} appears twice")]
    Duplicate { record_type: u8 },
    #[error("record type {record_type:#04x} has length {len}, expected {expected}")]
    WrongLength {
        record_type: u8,
        len: usize,
        expected: &'static str,
    },
    #[error("record type {record_type:#04x}: {reason}")]
    InvalidValue {
        record_type: u8,
        reason: &'static str,
    },
}

/// Which cryptographic check failed. Kept inside the single [`ProtoError::Authentication`]
/// variant so that callers treat every authentication failure alike (never "half-trust" a
/// datagram), while logs and diagnostics can still say which stage rejected it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthStage {
    /// The X25519 shared secret was all zero (a low-order point was offered).
    ZeroSharedSecret,
    /// The Ed25519 signature over a response did not verify.
    Signature,
    /// The Poly1305 tag did not verify.
    Tag,
}

impl std::fmt::Display for AuthStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ZeroSharedSecret => "all-zero X25519 shared secret",
            Self::Signature => "Ed25519 signature",
            Self::Tag => "Poly1305 tag",
        })
    }
}

/// Identifies a field of a LAP packet in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    ClientBaseId,
    ClientAddOnId,
    SkuId,
    ClientId,
    LicenseId,
    ClientSeed,
    ServerData,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ClientBaseId => "ClientBaseId",
            Self::ClientAddOnId => "ClientAddOnId",
            Self::SkuId => "SKUId",
            Self::ClientId => "ClientId",
            Self::LicenseId => "LicenseId",
            Self::ClientSeed => "ClientSeed",
            Self::ServerData => "ServerData",
        })
    }
}

/// Everything that can go wrong while encoding, decoding, sealing or opening LAP data.
///
/// Messages never contain secrets (keys, seeds, plaintexts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// A signature, tag or key agreement check failed. Deliberately coarse.
    #[error("authentication failed ({0})")]
    Authentication(AuthStage),

    /// Fewer bytes than the smallest valid form of the thing being read.
    #[error("{what} too short: {len} bytes, at least {min} needed")]
    TooShort {
        what: &'static str,
        len: usize,
        min: usize,
    },

    /// More bytes than allowed (a request over 1200 bytes, a response longer than its request).
    #[error("{what} too long: {len} bytes, at most {max} allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },

    /// The Version byte was not 2.
    #[error("unsupported protocol version {0} (expected 2)")]
    Version(u8),

    /// The Size field did not equal the plaintext's length.
    #[error("Size field says {declared} bytes but the plaintext has {actual}")]
    Size { declared: usize, actual: usize },

    /// The 16 Reserved bytes of a request were not all zero.
    #[error("Reserved field is not all zero")]
    ReservedNotZero,

    /// A UUID that must not be nil was nil.
    #[error("{0} must not be the nil UUID")]
    NilId(Field),

    /// A response echoed a ClientId other than the request's.
    #[error("response ClientId does not match the request")]
    ClientIdMismatch,

    /// A response echoed a SKU other than the request's.
    #[error("response SKUId does not match the request")]
    SkuMismatch,

    /// A time does not fit LAP's 5-byte field.
    #[error(transparent)]
    TimeOutOfRange(#[from] TimeOutOfRange),

    /// A key given to us could not be used (not a valid curve point, wrong length, ...).
    #[error("invalid {what} key")]
    InvalidKey { what: &'static str },

    /// The ClientSeed is not a profile seed v1.
    #[error("client seed is not a v1 seed: {0}")]
    Seed(&'static str),

    /// The seed extensions at the start of Room are malformed (profile 1.1, §2.1).
    #[error("malformed seed extensions: {0}")]
    SeedExtension(#[from] SeedExtensionError),

    /// The ServerData is not valid profile TLV v1.
    #[error("invalid ServerData: {0}")]
    ServerData(#[from] ServerDataError),

    /// A license key could not be read.
    #[error(transparent)]
    LicenseKey(#[from] LicenseKeyError),

    /// A sunset grant could not be read (profile 1.1, §9).
    #[error("sunset grant: {0}")]
    Sunset(String),

    /// An activation record could not be read or does not match its response.
    #[error("activation record: {0}")]
    Record(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = ProtoError> = std::result::Result<T, E>;
