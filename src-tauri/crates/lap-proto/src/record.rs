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
use crate::sunset::{SUNSET_KIND, SunsetGrant};
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

/// `activations/<id>.json` of a product the vendor released for good (profile 1.1, §9): the
/// vendor's sunset grant, with the product's id. It has `"kind": "sunset"`; an activation
/// record has no `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SunsetRecord {
    pub schema: u32,
    pub kind: String,
    /// The product's manifest id.
    pub id: String,
    pub sku: Uuid,
    /// The vendor's grant, exactly as published.
    pub grant: SunsetGrant,
}

impl SunsetRecord {
    pub fn new(id: &str, grant: SunsetGrant) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            kind: SUNSET_KIND.to_owned(),
            id: id.to_owned(),
            sku: grant.sku,
            grant,
        }
    }

    /// Pretty JSON with a trailing newline, as written to disk.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Either record a product may find in `activations/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductRecord {
    Activation(ActivationRecord),
    Sunset(SunsetRecord),
}

/// What a verified product record grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedRecord {
    /// An activation answered by the server (or by an intermediate it delegated).
    Activation(VerifiedActivation),
    /// The vendor's final grant: valid forever, on every machine.
    Sunset(ServerData),
}

impl VerifiedRecord {
    /// What the license says, whichever record said it.
    pub fn server_data(&self) -> &ServerData {
        match self {
            Self::Activation(verified) => &verified.server_data,
            Self::Sunset(data) => data,
        }
    }
}

impl ProductRecord {
    /// Reads either record; the `kind` field tells them apart (absent: an activation record).
    pub fn from_json(text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(default)]
            kind: Option<String>,
        }
        let probe: Kind = serde_json::from_str(text).map_err(|e| {
            ProtoError::Record(format!(
                "not a valid record (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        match probe.kind.as_deref() {
            None => Ok(Self::Activation(ActivationRecord::from_json(text)?)),
            Some(SUNSET_KIND) => {
                let record: SunsetRecord = serde_json::from_str(text).map_err(|e| {
                    ProtoError::Record(format!(
                        "not a valid sunset record (line {}, column {})",
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
                Ok(Self::Sunset(record))
            }
            Some(_) => Err(record_error("unknown kind of record")),
        }
    }

    /// What a product calls: the signature checked with the key it was built with, the SKU
    /// its own; for a sunset record, also that the record's SKU is the grant's.
    pub fn verify(
        &self,
        expected_sku: Uuid,
        server_ed25519_public: &[u8; 32],
    ) -> Result<VerifiedRecord> {
        match self {
            Self::Activation(record) => Ok(VerifiedRecord::Activation(
                record.verify(expected_sku, server_ed25519_public)?,
            )),
            Self::Sunset(record) => {
                if record.sku != record.grant.sku {
                    return Err(ProtoError::SkuMismatch);
                }
                Ok(VerifiedRecord::Sunset(
                    record.grant.verify(expected_sku, server_ed25519_public)?,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ServerSecretKeys;
    use crate::server_data::LicenseKind;

    const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

    fn keys() -> ServerSecretKeys {
        ServerSecretKeys::from_bytes([1; 32], &[2; 32])
    }

    fn sunset_record() -> SunsetRecord {
        let data = ServerData {
            kind: Some(LicenseKind::Perpetual),
            ..ServerData::default()
        };
        let grant = SunsetGrant::sign(&keys(), SKU, 1_800_000_000, &data).expect("signs");
        SunsetRecord::new("acme-studio", grant)
    }

    #[test]
    fn a_sunset_record_reads_back_and_verifies_with_the_built_in_key() {
        let text = sunset_record().to_json();
        let record = ProductRecord::from_json(&text).expect("reads");
        assert_eq!(record, ProductRecord::Sunset(sunset_record()));
        let verified = record
            .verify(SKU, keys().public().ed25519_bytes())
            .expect("verifies");
        assert_eq!(verified.server_data().kind, Some(LicenseKind::Perpetual));
        let other = *ServerSecretKeys::from_bytes([1; 32], &[5; 32])
            .public()
            .ed25519_bytes();
        assert!(record.verify(SKU, &other).is_err());
    }

    #[test]
    fn a_sunset_record_for_another_sku_or_of_an_unknown_kind_is_refused() {
        let mut moved = sunset_record();
        moved.sku = Uuid::from_u128(9);
        assert!(matches!(
            ProductRecord::Sunset(moved).verify(SKU, keys().public().ed25519_bytes()),
            Err(ProtoError::SkuMismatch)
        ));
        let text = sunset_record()
            .to_json()
            .replace("\"sunset\",\n  \"id\"", "\"other\",\n  \"id\"");
        assert!(ProductRecord::from_json(&text).is_err());
        assert!(ProductRecord::from_json("[]").is_err());
    }
}
