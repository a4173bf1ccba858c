//! Plaintext packet layouts of draft -04 §3.3 and §3.4, with the profile's errata (§1).
//!
//! Decoding is exact: a plaintext is accepted only if its Size field equals its length, so
//! `decode(encode(x)) == x` and `encode(decode(b)) == b` for every accepted `b`.

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{Field, ProtoError, Result};
use crate::time::{time_from_bytes, time_to_bytes};

/// The Version byte of draft -04 (the draft's "check Version is 1" is an erratum).
pub const VERSION: u8 = 2;
/// Request plaintext bytes before the ClientSeed.
pub const REQUEST_HEADER_LEN: usize = 88;
/// The smallest request plaintext: a header and a one-byte seed.
pub const MIN_REQUEST_SIZE: usize = REQUEST_HEADER_LEN + 1;
/// Response plaintext bytes before the ServerData.
pub const RESPONSE_HEADER_LEN: usize = 56;
/// The smallest response plaintext: empty ServerData.
pub const MIN_RESPONSE_SIZE: usize = RESPONSE_HEADER_LEN;
/// X25519 public key length.
pub const EPHEMERAL_LEN: usize = 32;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Ed25519 signature length.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes a request datagram adds around its plaintext.
pub const REQUEST_OVERHEAD: usize = EPHEMERAL_LEN + TAG_LEN;
/// Bytes a response datagram adds around its plaintext.
pub const RESPONSE_OVERHEAD: usize = SIGNATURE_LEN + TAG_LEN;
/// No request datagram may exceed this (no IP fragmentation, profile §1).
pub const MAX_DATAGRAM_LEN: usize = 1200;
/// The smallest request datagram.
pub const MIN_REQUEST_DATAGRAM_LEN: usize = REQUEST_OVERHEAD + MIN_REQUEST_SIZE;
/// The smallest response datagram.
pub const MIN_RESPONSE_DATAGRAM_LEN: usize = RESPONSE_OVERHEAD + MIN_RESPONSE_SIZE;
/// The largest request plaintext that fits the datagram limit.
pub const MAX_REQUEST_SIZE: usize = MAX_DATAGRAM_LEN - REQUEST_OVERHEAD;
/// The largest ClientSeed that fits the datagram limit.
pub const MAX_SEED_LEN: usize = MAX_REQUEST_SIZE - REQUEST_HEADER_LEN;

/// A decrypted LAP request (draft §3.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's clock, UNIX seconds.
    pub client_time: u64,
    pub client_base_id: Uuid,
    /// Nil for a base installation.
    pub client_addon_id: Uuid,
    pub sku_id: Uuid,
    /// Nil on the first activation ever.
    pub current_license_id: Uuid,
    /// Holds the license key: zeroized on drop, never printed.
    pub client_seed: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("client_time", &self.client_time)
            .field("client_base_id", &self.client_base_id)
            .field("client_addon_id", &self.client_addon_id)
            .field("sku_id", &self.sku_id)
            .field("current_license_id", &self.current_license_id)
            .field(
                "client_seed",
                &format_args!("<{} bytes>", self.client_seed.len()),
            )
            .finish()
    }
}

impl Request {
    /// The id the server must echo: the add-on id when there is one, else the base id.
    pub fn client_id(&self) -> Uuid {
        if self.client_addon_id.is_nil() {
            self.client_base_id
        } else {
            self.client_addon_id
        }
    }

    /// The plaintext length this request encodes to.
    pub fn encoded_len(&self) -> usize {
        REQUEST_HEADER_LEN + self.client_seed.len()
    }

    /// Encodes the plaintext. Zeroized on drop because it carries the seed.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        if self.client_seed.is_empty() {
            return Err(ProtoError::TooShort {
                what: "ClientSeed",
                len: 0,
                min: 1,
            });
        }
        if self.client_seed.len() > MAX_SEED_LEN {
            return Err(ProtoError::TooLong {
                what: "ClientSeed",
                len: self.client_seed.len(),
                max: MAX_SEED_LEN,
            });
        }
        self.check_ids()?;
        let size = self.encoded_len();
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        out.push(VERSION);
        out.extend_from_slice(&size_field(size).to_le_bytes());
        out.extend_from_slice(&time_to_bytes(self.client_time)?);
        for id in [
            self.client_base_id,
            self.client_addon_id,
            self.sku_id,
            self.current_license_id,
            Uuid::nil(),
        ] {
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&self.client_seed);
        debug_assert_eq!(out.len(), size);
        Ok(out)
    }

    /// Decodes a request plaintext, enforcing every structural rule of the profile.
    pub fn decode(plaintext: &[u8]) -> Result<Self> {
        if plaintext.len() < MIN_REQUEST_SIZE {
            return Err(ProtoError::TooShort {
                what: "request",
                len: plaintext.len(),
                min: MIN_REQUEST_SIZE,
            });
        }
        if plaintext.len() > MAX_REQUEST_SIZE {
            return Err(ProtoError::TooLong {
                what: "request",
                len: plaintext.len(),
                max: MAX_REQUEST_SIZE,
            });
        }
        check_version_and_size(plaintext)?;
        if plaintext[72..88].iter().any(|&b| b != 0) {
            return Err(ProtoError::ReservedNotZero);
        }
        let request = Self {
            client_time: time_at(plaintext, 3),
            client_base_id: uuid_at(plaintext, 8),
            client_addon_id: uuid_at(plaintext, 24),
            sku_id: uuid_at(plaintext, 40),
            current_license_id: uuid_at(plaintext, 56),
            client_seed: Zeroizing::new(plaintext[REQUEST_HEADER_LEN..].to_vec()),
        };
        request.check_ids()?;
        Ok(request)
    }

    fn check_ids(&self) -> Result<()> {
        if self.client_base_id.is_nil() {
            return Err(ProtoError::NilId(Field::ClientBaseId));
        }
        if self.sku_id.is_nil() {
            return Err(ProtoError::NilId(Field::SkuId));
        }
        Ok(())
    }
}

/// A decrypted LAP response (draft §3.4).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The server's clock, UNIX seconds.
    pub server_time: u64,
    pub client_id: Uuid,
    pub sku_id: Uuid,
    pub license_id: Uuid,
    /// Raw ServerData; may hold an asset key, so zeroized and never printed.
    pub server_data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("server_time", &self.server_time)
            .field("client_id", &self.client_id)
            .field("sku_id", &self.sku_id)
            .field("license_id", &self.license_id)
            .field(
                "server_data",
                &format_args!("<{} bytes>", self.server_data.len()),
            )
            .finish()
    }
}

impl Response {
    /// The plaintext length this response encodes to.
    pub fn encoded_len(&self) -> usize {
        RESPONSE_HEADER_LEN + self.server_data.len()
    }

    /// Encodes the plaintext.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.check_ids()?;
        let size = self.encoded_len();
        if size > MAX_DATAGRAM_LEN - RESPONSE_OVERHEAD {
            return Err(ProtoError::TooLong {
                what: "response",
                len: size,
                max: MAX_DATAGRAM_LEN - RESPONSE_OVERHEAD,
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(size));
        out.push(VERSION);
        out.extend_from_slice(&size_field(size).to_le_bytes());
        out.extend_from_slice(&time_to_bytes(self.server_time)?);
        for id in [self.client_id, self.sku_id, self.license_id] {
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&self.server_data);
        Ok(out)
    }

    /// Decodes a response plaintext, enforcing the structural rules of the profile.
    pub fn decode(plaintext: &[u8]) -> Result<Self> {
        if plaintext.len() < MIN_RESPONSE_SIZE {
            return Err(ProtoError::TooShort {
                what: "response",
                len: plaintext.len(),
                min: MIN_RESPONSE_SIZE,
            });
        }
        if plaintext.len() > MAX_DATAGRAM_LEN - RESPONSE_OVERHEAD {
            return Err(ProtoError::TooLong {
                what: "response",
                len: plaintext.len(),
                max: MAX_DATAGRAM_LEN - RESPONSE_OVERHEAD,
            });
        }
        check_version_and_size(plaintext)?;
        let response = Self {
            server_time: time_at(plaintext, 3),
            client_id: uuid_at(plaintext, 8),
            sku_id: uuid_at(plaintext, 24),
            license_id: uuid_at(plaintext, 40),
            server_data: Zeroizing::new(plaintext[RESPONSE_HEADER_LEN..].to_vec()),
        };
        response.check_ids()?;
        Ok(response)
    }

    fn check_ids(&self) -> Result<()> {
        for (id, field) in [
            (self.client_id, Field::ClientId),
            (self.sku_id, Field::SkuId),
            (self.license_id, Field::LicenseId),
        ] {
            if id.is_nil() {
                return Err(ProtoError::NilId(field));
            }
        }
        Ok(())
    }
}

fn check_version_and_size(plaintext: &[u8]) -> Result<()> {
    if plaintext[0] != VERSION {
        return Err(ProtoError::Version(plaintext[0]));
    }
    let declared = usize::from(u16::from_le_bytes([plaintext[1], plaintext[2]]));
    if declared != plaintext.len() {
        return Err(ProtoError::Size {
            declared,
            actual: plaintext.len(),
        });
    }
    Ok(())
}

/// Callers only pass lengths bounded by [`MAX_DATAGRAM_LEN`], which fit 16 bits.
fn size_field(size: usize) -> u16 {
    u16::try_from(size).unwrap_or(u16::MAX)
}

fn time_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 5];
    b.copy_from_slice(&bytes[at..at + 5]);
    time_from_bytes(b)
}

fn uuid_at(bytes: &[u8], at: usize) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[at..at + 16]);
    Uuid::from_bytes(b)
}
