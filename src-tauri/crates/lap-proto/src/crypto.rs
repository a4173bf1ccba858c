//! The key agreement and AEAD as LAP composes them (draft §3.3, profile §1).

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha512;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{AuthStage, ProtoError, Result};
use crate::wire::TAG_LEN;

/// The fixed HKDF info string. It names the KDF revision, not the Version field (profile §1).
pub const HKDF_INFO: &[u8] = b"56065c4d-d2e0-4ba9-bf9f-76f9159e2987-LAP-V02";

/// A 32-byte symmetric key, wiped on drop.
pub type SymmetricKey = Zeroizing<[u8; 32]>;

/// What a client is provisioned with: the server's two public keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerPublicKeys {
    pub(crate) x25519: PublicKey,
    pub(crate) ed25519: VerifyingKey,
}

impl std::fmt::Debug for ServerPublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPublicKeys")
            .field("x25519", &hex_short(self.x25519.as_bytes()))
            .field("ed25519", &hex_short(self.ed25519.as_bytes()))
            .finish()
    }
}

fn hex_short(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }) + "…"
}

impl ServerPublicKeys {
    /// Builds the keys from their wire forms. The Ed25519 key must be a valid, non-weak point.
    pub fn from_bytes(x25519: [u8; 32], ed25519: &[u8; 32]) -> Result<Self> {
        let ed25519 = VerifyingKey::from_bytes(ed25519).map_err(|_| ProtoError::InvalidKey {
            what: "server Ed25519 public",
        })?;
        if ed25519.is_weak() {
            return Err(ProtoError::InvalidKey {
                what: "server Ed25519 public",
            });
        }
        Ok(Self {
            x25519: PublicKey::from(x25519),
            ed25519,
        })
    }

    pub fn x25519_bytes(&self) -> &[u8; 32] {
        self.x25519.as_bytes()
    }

    pub fn ed25519_bytes(&self) -> &[u8; 32] {
        self.ed25519.as_bytes()
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.ed25519
    }
}

/// What a server holds: its X25519 secret and Ed25519 signing key. Wiped on drop.
pub struct ServerSecretKeys {
    pub(crate) x25519: StaticSecret,
    pub(crate) ed25519: SigningKey,
    public: ServerPublicKeys,
}

impl std::fmt::Debug for ServerSecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSecretKeys")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl ServerSecretKeys {
    /// From the X25519 secret scalar and the Ed25519 secret (RFC 8032 seed).
    pub fn from_bytes(x25519_secret: [u8; 32], ed25519_seed: &[u8; 32]) -> Self {
        let x25519 = StaticSecret::from(x25519_secret);
        let ed25519 = SigningKey::from_bytes(ed25519_seed);
        let public = ServerPublicKeys {
            x25519: PublicKey::from(&x25519),
            ed25519: ed25519.verifying_key(),
        };
        Self {
            x25519,
            ed25519,
            public,
        }
    }

    pub fn public(&self) -> &ServerPublicKeys {
        &self.public
    }

    /// The secret halves, for writing a key file.
    pub fn to_bytes(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        (
            Zeroizing::new(self.x25519.to_bytes()),
            Zeroizing::new(self.ed25519.to_bytes()),
        )
    }
}

/// A client's per-attempt ephemeral X25519 secret. The caller draws the bytes from a CSPRNG
/// (or fixes them in tests); this crate never reads randomness itself.
pub struct EphemeralSecret(StaticSecret);

impl std::fmt::Debug for EphemeralSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralSecret(<redacted>)")
    }
}

impl EphemeralSecret {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    pub fn public_key(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.0
    }
}

/// The two directional keys of one exchange.
#[derive(Debug)]
pub struct SessionKeys {
    pub client_to_server: SymmetricKey,
    pub server_to_client: SymmetricKey,
}

/// X25519 then HKDF-SHA512 (salt absent, fixed info, L = 64), rejecting an all-zero secret.
pub(crate) fn derive_session_keys(
    secret: &StaticSecret,
    peer: &PublicKey,
    ephemeral_public: &[u8; 32],
    server: &ServerPublicKeys,
) -> Result<SessionKeys> {
    let shared = secret.diffie_hellman(peer);
    if !shared.was_contributory() {
        return Err(ProtoError::Authentication(AuthStage::ZeroSharedSecret));
    }
    Ok(kdf(ephemeral_public, server, shared.as_bytes()))
}

/// The KDF of profile §1 on an already computed shared secret (public for known-answer
/// tests; the exchange functions call it after rejecting an all-zero secret).
pub fn kdf(
    ephemeral_public: &[u8; 32],
    server: &ServerPublicKeys,
    shared_secret: &[u8; 32],
) -> SessionKeys {
    let mut ikm = Zeroizing::new([0u8; 128]);
    ikm[..32].copy_from_slice(ephemeral_public);
    ikm[32..64].copy_from_slice(server.x25519.as_bytes());
    ikm[64..96].copy_from_slice(server.ed25519.as_bytes());
    ikm[96..].copy_from_slice(shared_secret);
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha512>::new(None, ikm.as_slice())
        .expand(HKDF_INFO, okm.as_mut_slice())
        .expect("64 bytes is a valid HKDF-SHA512 output length");
    let mut client_to_server = Zeroizing::new([0u8; 32]);
    let mut server_to_client = Zeroizing::new([0u8; 32]);
    client_to_server.copy_from_slice(&okm[..32]);
    server_to_client.copy_from_slice(&okm[32..]);
    SessionKeys {
        client_to_server,
        server_to_client,
    }
}

/// Encrypts `buffer` in place with a zero nonce and no AAD; returns the tag.
pub(crate) fn seal_in_place(key: &[u8; 32], buffer: &mut [u8]) -> [u8; TAG_LEN] {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    let tag = cipher
        .encrypt_inout_detached(&Nonce::default(), &[], buffer.into())
        .expect("LAP plaintexts are far below ChaCha20-Poly1305's length limit");
    tag.into()
}

/// Decrypts `buffer` in place after checking `tag`; on failure `buffer` is left unchanged.
pub(crate) fn open_in_place(key: &[u8; 32], buffer: &mut [u8], tag: &[u8]) -> Result<()> {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    let tag = Tag::try_from(tag).map_err(|_| ProtoError::Authentication(AuthStage::Tag))?;
    cipher
        .decrypt_inout_detached(&Nonce::default(), &[], buffer.into(), &tag)
        .map_err(|_| ProtoError::Authentication(AuthStage::Tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_tampering_fails() {
        let key = [7u8; 32];
        let mut buf = *b"hello lap";
        let tag = seal_in_place(&key, &mut buf);
        assert_ne!(&buf, b"hello lap");
        let mut tampered = buf;
        tampered[0] ^= 1;
        assert!(open_in_place(&key, &mut tampered, &tag).is_err());
        open_in_place(&key, &mut buf, &tag).expect("valid tag opens");
        assert_eq!(&buf, b"hello lap");
    }
}
