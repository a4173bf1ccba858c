//! The activation record a product reads (profile §7), and the check a product makes of it.
//!
//! The record carries the signed response datagram and the key that opens it, so a product
//! verifies the server's signature itself: Lapwing never needs to be trusted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::open_in_place;
use crate::error::{AuthStage, ProtoError, Result};
use crate::exchange::Activation;
use crate::server_data::ServerData;
use crate::wire::{MIN_RESPONSE_DATAGRAM_LEN, Response, SIGNATURE_LEN, TAG_LEN};

/// The only record schema this version writes and reads.
pub const RECORD_SCHEMA: u32 = 1;

/// `activations/<id>.json`, as written after each successful activation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub schema: u32,
    /// The product's manifest id.
    pub id: String,
    pub sku: Uuid,
    pub client_id: Uuid,
    pub license_id: Uuid,
    pub server_time: u64,
    /// The response datagram exactly as received, base64.
    pub response: String,
    /// The server-to-client key, base64. Secret-ish: the product needs it, nobody else.
    pub key: String,
}

impl std::fmt::Debug for ActivationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationRecord")
            .field("schema", &self.schema)
            .field("id", &self.id)
            .field("sku", &self.sku)
            .field("client_id", &self.client_id)
            .field("license_id", &self.license_id)
            .field("server_time", &self.server_time)
            .finish_non_exhaustive()
    }
}

/// What a verified record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedActivation {
    pub response: Response,
    pub server_data: ServerData,
}

fn record_error(what: &str) -> ProtoError {
    ProtoError::Record(what.to_owned())
}

impl ActivationRecord {
    /// The record for a successful activation of product `id`.
    pub fn new(id: &str, activation: &Activation) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            id: id.to_owned(),
            sku: activation.response.sku_id,
            client_id: activation.response.client_id,
            license_id: activation.response.license_id,
            server_time: activation.response.server_time,
            response: BASE64.encode(&activation.datagram),
            key: BASE64.encode(activation.server_to_client_key.as_slice()),
        }
    }

    /// Pretty JSON with a trailing newline, as written to disk.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a record; refuses other schemas. Serde's message never echoes field values.
    pub fn from_json(text: &str) -> Result<Self> {
        let record: Self = serde_json::from_str(text).map_err(|e| {
            ProtoError::Record(format!(
                "not a valid record (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if record.schema != RECORD_SCHEMA {
            return Err(ProtoError::Record(format!(
                "unsupported schema {}",
                record.schema
            )));
        }
        Ok(record)
    }

    /// What a product calls: checks the server's signature with the key the product was
    /// built with, decrypts, and checks that the record matches the response and the SKU.
    pub fn verify(
        &self,
        expected_sku: Uuid,
        server_ed25519_public: &[u8; 32],
    ) -> Result<VerifiedActivation> {
        let datagram = BASE64
            .decode(&self.response)
            .map_err(|_| record_error("response is not base64"))?;
        let key_bytes = Zeroizing::new(
            BASE64
                .decode(&self.key)
                .map_err(|_| record_error("key is not base64"))?,
        );
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(
            key_bytes
                .as_slice()
                .try_into()
                .map_err(|_| record_error("key is not 32 bytes"))?,
        );
        if datagram.len() < MIN_RESPONSE_DATAGRAM_LEN {
            return Err(ProtoError::TooShort {
                what: "response datagram",
                len: datagram.len(),
                min: MIN_RESPONSE_DATAGRAM_LEN,
            });
        }
        let verifying = VerifyingKey::from_bytes(server_ed25519_public).map_err(|_| {
            ProtoError::InvalidKey {
                what: "server Ed25519 public",
            }
        })?;
        let (signature, signed) = datagram.split_at(SIGNATURE_LEN);
        let signature = Signature::from_slice(signature)
            .map_err(|_| ProtoError::Authentication(AuthStage::Signature))?;
        verifying
            .verify_strict(signed, &signature)
            .map_err(|_| ProtoError::Authentication(AuthStage::Signature))?;
        let (body, tag) = signed.split_at(signed.len() - TAG_LEN);
        let mut plaintext = Zeroizing::new(body.to_vec());
        open_in_place(&key, &mut plaintext, tag)?;
        let response = Response::decode(&plaintext)?;
        if response.sku_id != expected_sku || response.sku_id != self.sku {
            return Err(ProtoError::SkuMismatch);
        }
        if response.client_id != self.client_id {
            return Err(ProtoError::ClientIdMismatch);
        }
        if response.license_id != self.license_id || response.server_time != self.server_time {
            return Err(record_error("fields do not match the signed response"));
        }
        let server_data = ServerData::parse(&response.server_data)?;
        Ok(VerifiedActivation {
            response,
            server_data,
        })
    }
}
