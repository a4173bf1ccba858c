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
    /// The vendor's Delegation that vouched for the intermediate server that answered
    /// (profile 1.1, §10); `None` when the vendor's own server signed.
    pub delegated_by: Option<Box<crate::delegation::Delegation>>,
}

fn record_error(what: &str) -> ProtoError {
    ProtoError::Record(what.to_owned())
}

/// Reads a record of schema 1 as `T`; serde's message never echoes field values, so only
/// where it went wrong is said. `what` names the record in the message.
fn read_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
    schema: impl FnOnce(&T) -> u32,
) -> Result<T> {
    let record: T = serde_json::from_str(text).map_err(|e| {
        ProtoError::Record(format!(
            "not a valid {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match schema(&record) {
        RECORD_SCHEMA => Ok(record),
        other => Err(ProtoError::Record(format!("unsupported schema {other}"))),
    }
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
        read_json(text, "record", |r: &Self| r.schema)
    }

    /// What a product calls: checks the server's signature with the key the product was
    /// built with, decrypts, and checks that the record matches the response and the SKU.
    ///
    /// An answer from a customer's intermediate server (profile 1.1, §10) is signed with the
    /// intermediate's key: it verifies when its ServerData carries a Delegation signed with the
    /// built-in key, for the record's SKU, whose NotAfter is not before the record's
    /// server_time, and the answer's signature verifies with the Delegation's key.
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
        let bad_signature = || ProtoError::Authentication(AuthStage::Signature);
        let (signature, signed) = datagram.split_at(SIGNATURE_LEN);
        let signature = Signature::from_slice(signature).map_err(|_| bad_signature())?;
        let by_built_in_key = verifying.verify_strict(signed, &signature).is_ok();
        // Nothing read below is trusted until a signature holds: without the built-in key's,
        // the plaintext is only opened to find the Delegation that may vouch for it, and any
        // failure on that path is the signature's.
        let (body, tag) = signed.split_at(signed.len() - TAG_LEN);
        let mut plaintext = Zeroizing::new(body.to_vec());
        let opened = open_in_place(&key, &mut plaintext, tag)
            .and_then(|()| Response::decode(&plaintext))
            .and_then(|response| {
                let data = ServerData::parse(&response.server_data)?;
                Ok((response, data))
            });
        let (response, server_data, delegated_by) = match (by_built_in_key, opened) {
            (true, opened) => {
                let (response, data) = opened?;
                (response, data, None)
            }
            (false, Ok((response, data))) => {
                let delegation = data.delegation.clone().ok_or_else(bad_signature)?;
                delegation
                    .verify(server_ed25519_public)
                    .map_err(|_| bad_signature())?;
                VerifyingKey::from_bytes(&delegation.intermediate_ed25519)
                    .map_err(|_| bad_signature())?
                    .verify_strict(signed, &signature)
                    .map_err(|_| bad_signature())?;
                if delegation.sku != self.sku {
                    return Err(record_error("the delegation is for another SKU"));
                }
                if delegation.not_after < self.server_time {
                    return Err(record_error("the delegation had ended before this answer"));
                }
                (response, data, Some(delegation))
            }
            (false, Err(_)) => return Err(bad_signature()),
        };
        if response.sku_id != expected_sku || response.sku_id != self.sku {
            return Err(ProtoError::SkuMismatch);
        }
        if response.client_id != self.client_id {
            return Err(ProtoError::ClientIdMismatch);
        }
        if response.license_id != self.license_id || response.server_time != self.server_time {
            return Err(record_error("fields do not match the signed response"));
        }
        Ok(VerifiedActivation {
            response,
            server_data,
            delegated_by,
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
            schema: Option<u32>,
            #[serde(default)]
            kind: Option<String>,
        }
        let probe: Kind = read_json(text, "record", |k: &Kind| k.schema.unwrap_or(RECORD_SCHEMA))?;
        match probe.kind.as_deref() {
            None => Ok(Self::Activation(ActivationRecord::from_json(text)?)),
            Some(SUNSET_KIND) => {
                let record: SunsetRecord =
                    read_json(text, "sunset record", |r: &SunsetRecord| r.schema)?;
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

    /// An answer from an intermediate server with `keys`, carrying `delegation`.
    fn delegated_record(
        intermediate: &ServerSecretKeys,
        delegation: Option<crate::delegation::Delegation>,
        server_time: u64,
    ) -> ActivationRecord {
        use crate::{EphemeralSecret, Request, SeedV1, open_request, seal_request};
        let seed = SeedV1 {
            decoded_key: [1; 16],
            machine_hash: [2; 32],
            num_cpus: 1,
            num_cores: 4,
            install_nonce: [3; 16],
        }
        .encode(256)
        .expect("room fits");
        let request = Request {
            client_time: server_time,
            client_base_id: Uuid::from_u128(0xb1),
            client_addon_id: Uuid::nil(),
            sku_id: SKU,
            current_license_id: Uuid::nil(),
            client_seed: seed,
        };
        let (datagram, pending) = seal_request(
            intermediate.public(),
            &request,
            &EphemeralSecret::from_bytes([9; 32]),
        )
        .expect("seals");
        let (_, sealer) = open_request(intermediate, &datagram).expect("opens");
        let data = ServerData {
            not_after: Some(server_time + 86_400),
            delegation: delegation.map(Box::new),
            ..ServerData::default()
        };
        let answer = sealer
            .seal(
                intermediate,
                server_time,
                Uuid::from_u128(0x11),
                &data.encode().expect("encodes"),
            )
            .expect("fits the room");
        ActivationRecord::new("acme-studio", &pending.open(&answer).expect("client opens"))
    }

    #[test]
    fn an_intermediates_answer_verifies_through_the_vendors_delegation() {
        use crate::delegation::Delegation;
        const NOW: u64 = 1_800_000_000;
        let vendor = keys();
        let vendor_key = *vendor.public().ed25519_bytes();
        let intermediate = ServerSecretKeys::from_bytes([7; 32], &[8; 32]);
        let delegate = |signer: &ServerSecretKeys, sku: Uuid, not_after: u64| {
            Delegation::sign(
                signer,
                *intermediate.public().ed25519_bytes(),
                *intermediate.public().x25519_bytes(),
                sku,
                50,
                not_after,
            )
            .expect("signs")
        };

        let good = delegate(&vendor, SKU, NOW + 30 * 86_400);
        let verified = delegated_record(&intermediate, Some(good.clone()), NOW)
            .verify(SKU, &vendor_key)
            .expect("vouched for by the vendor");
        assert_eq!(verified.delegated_by.as_deref(), Some(&good));
        // Signed by the intermediate alone, it is not the vendor's.
        assert!(matches!(
            delegated_record(&intermediate, None, NOW).verify(SKU, &vendor_key),
            Err(ProtoError::Authentication(AuthStage::Signature))
        ));
        // A delegation by someone else, for another SKU, or ended before the answer.
        let stranger = ServerSecretKeys::from_bytes([5; 32], &[6; 32]);
        for (delegation, why) in [
            (
                delegate(&stranger, SKU, NOW + 86_400),
                "signed by another key",
            ),
            (
                delegate(&vendor, Uuid::from_u128(4), NOW + 86_400),
                "another SKU",
            ),
            (delegate(&vendor, SKU, NOW - 1), "ended before the answer"),
        ] {
            let record = delegated_record(&intermediate, Some(delegation), NOW);
            assert!(record.verify(SKU, &vendor_key).is_err(), "{why}");
        }
        // A delegation naming another intermediate does not vouch for this one's signature.
        let other = ServerSecretKeys::from_bytes([7; 32], &[9; 32]);
        let elsewhere = Delegation::sign(
            &vendor,
            *other.public().ed25519_bytes(),
            *other.public().x25519_bytes(),
            SKU,
            50,
            NOW + 86_400,
        )
        .expect("signs");
        assert!(
            delegated_record(&intermediate, Some(elsewhere), NOW)
                .verify(SKU, &vendor_key)
                .is_err()
        );
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
