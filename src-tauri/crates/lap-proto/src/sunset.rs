//! The vendor's final grant for the day its servers stop (profile 1.1, §9 "Exit").
//!
//! `{"schema": 1, "kind": "sunset", "sku": "…", "issued": <time>, "server_data": "<base64>",
//! "signature": "<base64>"}`, signed with the server's Ed25519 key over
//! `lapwing-sunset-v1` ‖ SKU (16) ‖ issued (5) ‖ ServerData. Valid on every machine, forever:
//! a product verifies it with its built-in key, as it verifies an activation record.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::crypto::ServerSecretKeys;
use crate::error::{AuthStage, ProtoError, Result};
use crate::server_data::ServerData;
use crate::time::time_to_bytes;

/// The only sunset schema this version writes and reads.
pub const SUNSET_SCHEMA: u32 = 1;
/// The `kind` of a sunset grant (and of an activation record that carries one).
pub const SUNSET_KIND: &str = "sunset";
const CONTEXT: &[u8] = b"lapwing-sunset-v1";

/// A sunset grant as published by a vendor. Its signature is checked by [`SunsetGrant::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SunsetGrant {
    pub schema: u32,
    pub kind: String,
    pub sku: Uuid,
    /// When the vendor issued it (UNIX seconds).
    pub issued: u64,
    /// The ServerData it grants, base64 (profile TLV v1).
    pub server_data: String,
    /// The Ed25519 signature, base64.
    pub signature: String,
}

fn sunset_error(what: &str) -> ProtoError {
    ProtoError::Sunset(what.to_owned())
}

fn signed_message(sku: Uuid, issued: u64, server_data: &[u8]) -> Result<Vec<u8>> {
    let mut message = CONTEXT.to_vec();
    message.extend_from_slice(sku.as_bytes());
    message.extend_from_slice(&time_to_bytes(issued)?);
    message.extend_from_slice(server_data);
    Ok(message)
}

impl SunsetGrant {
    /// The vendor's sunset grant of `server_data` for `sku`, issued at `issued`.
    pub fn sign(
        keys: &ServerSecretKeys,
        sku: Uuid,
        issued: u64,
        server_data: &ServerData,
    ) -> Result<Self> {
        let data = server_data.encode()?;
        let signature = keys.ed25519.sign(&signed_message(sku, issued, &data)?);
        Ok(Self {
            schema: SUNSET_SCHEMA,
            kind: SUNSET_KIND.to_owned(),
            sku,
            issued,
            server_data: BASE64.encode(&data),
            signature: BASE64.encode(signature.to_bytes()),
        })
    }

    /// Pretty JSON with a trailing newline, as written to a file.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a grant; refuses other schemas and kinds. The message never echoes field values.
    pub fn from_json(text: &str) -> Result<Self> {
        let grant: Self = serde_json::from_str(text).map_err(|e| {
            ProtoError::Sunset(format!(
                "not a sunset grant (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if grant.schema != SUNSET_SCHEMA {
            return Err(ProtoError::Sunset(format!(
                "unsupported schema {}",
                grant.schema
            )));
        }
        if grant.kind != SUNSET_KIND {
            return Err(sunset_error("kind is not \"sunset\""));
        }
        Ok(grant)
    }

    /// Checks the signature with the server key the product was built with (or its manifest
    /// names), and that the grant is for `expected_sku`; returns what it grants.
    pub fn verify(
        &self,
        expected_sku: Uuid,
        server_ed25519_public: &[u8; 32],
    ) -> Result<ServerData> {
        if self.sku != expected_sku {
            return Err(ProtoError::SkuMismatch);
        }
        let data = BASE64
            .decode(&self.server_data)
            .map_err(|_| sunset_error("server_data is not base64"))?;
        let signature: [u8; 64] = BASE64
            .decode(&self.signature)
            .map_err(|_| sunset_error("signature is not base64"))?
            .try_into()
            .map_err(|_| sunset_error("signature is not 64 bytes"))?;
        let key = VerifyingKey::from_bytes(server_ed25519_public).map_err(|_| {
            ProtoError::InvalidKey {
                what: "server Ed25519 public",
            }
        })?;
        key.verify_strict(
            &signed_message(self.sku, self.issued, &data)?,
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| ProtoError::Authentication(AuthStage::Signature))?;
        Ok(ServerData::parse(&data)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_data::LicenseKind;

    const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

    fn keys() -> ServerSecretKeys {
        ServerSecretKeys::from_bytes([1; 32], &[2; 32])
    }

    fn grant() -> SunsetGrant {
        let data = ServerData {
            kind: Some(LicenseKind::Perpetual),
            features: vec!["pro".into()],
            notice: Some("Acme has closed; this copy is yours for good.".into()),
            ..ServerData::default()
        };
        SunsetGrant::sign(&keys(), SKU, 1_800_000_000, &data).expect("signs")
    }

    #[test]
    fn signs_round_trips_through_json_and_verifies() {
        let text = grant().to_json();
        let back = SunsetGrant::from_json(&text).expect("reads");
        assert_eq!(back, grant());
        let data = back
            .verify(SKU, keys().public().ed25519_bytes())
            .expect("verifies");
        assert_eq!(data.kind, Some(LicenseKind::Perpetual));
        assert_eq!(data.features, ["pro"]);
    }

    #[test]
    fn any_change_or_another_key_or_sku_is_refused() {
        let public = *keys().public().ed25519_bytes();
        let mut later = grant();
        later.issued += 1;
        assert!(matches!(
            later.verify(SKU, &public),
            Err(ProtoError::Authentication(_))
        ));
        let mut more = grant();
        more.server_data = BASE64.encode(
            ServerData {
                features: vec!["pro".into(), "all".into()],
                ..ServerData::default()
            }
            .encode()
            .expect("encodes"),
        );
        assert!(more.verify(SKU, &public).is_err());
        let other = *ServerSecretKeys::from_bytes([1; 32], &[3; 32])
            .public()
            .ed25519_bytes();
        assert!(grant().verify(SKU, &other).is_err());
        assert!(matches!(
            grant().verify(Uuid::from_u128(7), &public),
            Err(ProtoError::SkuMismatch)
        ));
    }

    #[test]
    fn malformed_files_are_refused_without_echoing_them() {
        let mut wrong_kind = grant();
        wrong_kind.kind = "grant".into();
        assert!(SunsetGrant::from_json(&wrong_kind.to_json()).is_err());
        let mut wrong_schema = grant();
        wrong_schema.schema = 2;
        assert!(SunsetGrant::from_json(&wrong_schema.to_json()).is_err());
        let error = SunsetGrant::from_json("{\"schema\": 1, \"secret-looking\": \"hunter2\"}")
            .expect_err("not a grant");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let mut short = grant();
        short.signature = BASE64.encode([0; 10]);
        assert!(short.verify(SKU, keys().public().ed25519_bytes()).is_err());
    }
}
