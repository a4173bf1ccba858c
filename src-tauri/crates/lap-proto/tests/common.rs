//! Shared helpers of the lap-proto integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use lap_proto::{EphemeralSecret, Request, ServerSecretKeys, Uuid};
use zeroize::Zeroizing;

/// `tests/vectors/` at the top of the repository.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/vectors")
}

pub fn load_json(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn hex_field(value: &serde_json::Value, field: &str) -> Vec<u8> {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string"));
    hex::decode(text).unwrap_or_else(|e| panic!("{field}: {e}"))
}

pub fn hex32(value: &serde_json::Value, field: &str) -> [u8; 32] {
    hex_field(value, field)
        .try_into()
        .unwrap_or_else(|_| panic!("{field} is not 32 bytes"))
}

pub fn uuid_field(value: &serde_json::Value, field: &str) -> Uuid {
    value[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{field} is not a UUID"))
}

pub fn server_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x11; 32], &[0x22; 32])
}

pub fn ephemeral(n: u8) -> EphemeralSecret {
    EphemeralSecret::from_bytes([n; 32])
}

/// A valid base-product request with a v1 seed of the default room.
pub fn sample_request() -> Request {
    let seed = lap_proto::SeedV1 {
        decoded_key: [7; 16],
        machine_hash: [8; 32],
        num_cpus: 1,
        num_cores: 4,
        install_nonce: [9; 16],
    };
    Request {
        client_time: 1_795_000_000,
        client_base_id: Uuid::from_u128(0x0b),
        client_addon_id: Uuid::nil(),
        sku_id: Uuid::from_u128(0x5c),
        current_license_id: Uuid::nil(),
        client_seed: Zeroizing::new(seed.encode(128).expect("room fits").to_vec()),
    }
}
