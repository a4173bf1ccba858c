//! The vendor's delegation of an intermediate server (profile 1.1, §10; ServerData 0x0A).
//!
//! `intermediate Ed25519 public (32) ‖ intermediate X25519 public (32) ‖ SKU (16) ‖ Seats (4,
//! LE) ‖ NotAfter (5) ‖ signature (64)`, the signature by the vendor's server key over
//! `lapwing-delegation-v1` ‖ the 89 bytes before it.

use ed25519_dalek::{Signature, Signer, VerifyingKey};
use uuid::Uuid;

use crate::crypto::ServerSecretKeys;
use crate::error::{AuthStage, ProtoError, Result};
use crate::time::{time_from_bytes, time_to_bytes};

/// Bytes of an encoded delegation.
pub const DELEGATION_LEN: usize = 153;
/// Bytes the signature covers, after the context string.
const SIGNED_LEN: usize = 89;
const CONTEXT: &[u8] = b"lapwing-delegation-v1";

/// A delegation as carried in ServerData. Its signature is checked by [`Delegation::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub intermediate_ed25519: [u8; 32],
    pub intermediate_x25519: [u8; 32],
    pub sku: Uuid,
    pub seats: u32,
    pub not_after: u64,
    pub signature: [u8; 64],
}

impl Delegation {
    /// The vendor's delegation of `intermediate_*` for `seats` seats of `sku` until `not_after`.
    pub fn sign(
        vendor: &ServerSecretKeys,
        intermediate_ed25519: [u8; 32],
        intermediate_x25519: [u8; 32],
        sku: Uuid,
        seats: u32,
        not_after: u64,
    ) -> Result<Self> {
        let mut out = Self {
            intermediate_ed25519,
            intermediate_x25519,
            sku,
            seats,
            not_after,
            signature: [0; 64],
        };
        let message = out.signed_message()?;
        out.signature = vendor.ed25519.sign(&message).to_bytes();
        Ok(out)
    }

    fn signed_part(&self) -> Result<[u8; SIGNED_LEN]> {
        let mut out = [0; SIGNED_LEN];
        out[..32].copy_from_slice(&self.intermediate_ed25519);
        out[32..64].copy_from_slice(&self.intermediate_x25519);
        out[64..80].copy_from_slice(self.sku.as_bytes());
        out[80..84].copy_from_slice(&self.seats.to_le_bytes());
        out[84..89].copy_from_slice(&time_to_bytes(self.not_after)?);
        Ok(out)
    }

    fn signed_message(&self) -> Result<Vec<u8>> {
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(&self.signed_part()?);
        Ok(message)
    }

    pub fn to_bytes(&self) -> Result<[u8; DELEGATION_LEN]> {
        let mut out = [0; DELEGATION_LEN];
        out[..SIGNED_LEN].copy_from_slice(&self.signed_part()?);
        out[SIGNED_LEN..].copy_from_slice(&self.signature);
        Ok(out)
    }

    /// Reads the layout; says nothing of the signature.
    pub fn from_bytes(bytes: &[u8; DELEGATION_LEN]) -> Self {
        let take32 = |at: usize| -> [u8; 32] { bytes[at..at + 32].try_into().expect("32 bytes") };
        let mut sku = [0; 16];
        sku.copy_from_slice(&bytes[64..80]);
        let mut seats = [0; 4];
        seats.copy_from_slice(&bytes[80..84]);
        let mut not_after = [0; 5];
        not_after.copy_from_slice(&bytes[84..89]);
        let mut signature = [0; 64];
        signature.copy_from_slice(&bytes[SIGNED_LEN..]);
        Self {
            intermediate_ed25519: take32(0),
            intermediate_x25519: take32(32),
            sku: Uuid::from_bytes(sku),
            seats: u32::from_le_bytes(seats),
            not_after: time_from_bytes(not_after),
            signature,
        }
    }

    /// Checks the vendor's signature with the key a product was built with.
    pub fn verify(&self, vendor_ed25519_public: &[u8; 32]) -> Result<()> {
        let key = VerifyingKey::from_bytes(vendor_ed25519_public).map_err(|_| {
            ProtoError::InvalidKey {
                what: "server Ed25519 public",
            }
        })?;
        key.verify_strict(
            &self.signed_message()?,
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ProtoError::Authentication(AuthStage::Signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor() -> ServerSecretKeys {
        ServerSecretKeys::from_bytes([1; 32], &[2; 32])
    }

    #[test]
    fn signs_encodes_and_verifies_and_any_change_breaks_it() {
        let sku = Uuid::from_u128(0x1234);
        let d =
            Delegation::sign(&vendor(), [3; 32], [4; 32], sku, 25, 1_800_000_000).expect("signs");
        let bytes = d.to_bytes().expect("encodes");
        assert_eq!(&bytes[80..84], &25_u32.to_le_bytes());
        let back = Delegation::from_bytes(&bytes);
        assert_eq!(back, d);
        let vendor_public = *vendor().public().ed25519_bytes();
        back.verify(&vendor_public).expect("verifies");
        for at in [0, 40, 70, 81, 88, 100] {
            let mut bent = bytes;
            bent[at] ^= 1;
            assert!(
                Delegation::from_bytes(&bent)
                    .verify(&vendor_public)
                    .is_err(),
                "byte {at} changed and it still verified"
            );
        }
        let other = *ServerSecretKeys::from_bytes([1; 32], &[9; 32])
            .public()
            .ed25519_bytes();
        assert!(back.verify(&other).is_err());
    }
}
