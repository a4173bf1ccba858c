//! Seed extension 0x06, IntermediateKeys: the intermediate server's Ed25519 public key (32) ‖
//! X25519 public key (32), sent by an intermediate with its pool request (profile §10) so that
//! the vendor can name those keys in the Delegation.
//!
//! A Lapwing addition to profile 1.1's table in §2.1: the table's PoolRequest and PoolUsage
//! carry no keys, yet the Delegation must contain them. It follows §2.1's rules, so a server
//! that does not know it skips it (lap-proto's parser does), and it lives here rather than in
//! lap-proto because only lapd, on both ends, reads or writes it.

use lap_proto::seed::SEED_V1_LEN;
use lap_proto::{SeedExtensionError, SeedExtensions};

/// The extension's type byte.
pub const INTERMEDIATE_KEYS: u8 = 0x06;
/// Its value's length.
pub const VALUE_LEN: usize = 64;
/// The length field as written.
const VALUE_LEN_LE: [u8; 2] = 64u16.to_le_bytes();
const HEADER_LEN: usize = 3;

/// An intermediate's public keys as its pool request carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntermediateKeys {
    pub ed25519: [u8; 32],
    pub x25519: [u8; 32],
}

/// Why the extension could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntermediateKeysError {
    #[error("the seed extensions and IntermediateKeys need {needed} bytes but Room has {room}")]
    NoRoom { needed: usize, room: usize },
    #[error(transparent)]
    Extensions(#[from] SeedExtensionError),
    #[error("seed extension IntermediateKeys has length {0}, expected 64")]
    WrongLength(usize),
}

/// Writes `extensions` and then IntermediateKeys at the start of `room`; the rest is zeroed.
pub fn write_into(
    extensions: &SeedExtensions,
    keys: &IntermediateKeys,
    room: &mut [u8],
) -> Result<(), IntermediateKeysError> {
    let at = extensions.encoded_len();
    let needed = at + HEADER_LEN + VALUE_LEN;
    if needed > room.len() {
        return Err(IntermediateKeysError::NoRoom {
            needed,
            room: room.len(),
        });
    }
    extensions.write_into(room)?;
    room[at] = INTERMEDIATE_KEYS;
    room[at + 1..at + HEADER_LEN].copy_from_slice(&VALUE_LEN_LE);
    room[at + HEADER_LEN..at + HEADER_LEN + 32].copy_from_slice(&keys.ed25519);
    room[at + HEADER_LEN + 32..needed].copy_from_slice(&keys.x25519);
    Ok(())
}

/// Finds IntermediateKeys in a whole seed whose extension area lap-proto has already accepted
/// (so records are well formed and not duplicated). `Ok(None)`: the request did not send it.
pub fn find(seed: &[u8]) -> Result<Option<IntermediateKeys>, IntermediateKeysError> {
    let room = seed.get(SEED_V1_LEN..).unwrap_or_default();
    let mut offset = 0;
    while let Some(&record_type) = room.get(offset) {
        if record_type == 0 {
            return Ok(None);
        }
        let Some(len) = room.get(offset + 1..offset + HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let start = offset + HEADER_LEN;
        let Some(value) = room.get(start..start + len) else {
            return Ok(None);
        };
        if record_type == INTERMEDIATE_KEYS {
            if len != VALUE_LEN {
                return Err(IntermediateKeysError::WrongLength(len));
            }
            let mut keys = IntermediateKeys {
                ed25519: [0; 32],
                x25519: [0; 32],
            };
            keys.ed25519.copy_from_slice(&value[..32]);
            keys.x25519.copy_from_slice(&value[32..]);
            return Ok(Some(keys));
        }
        offset = start + len;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lap_proto::SeedV1;

    fn seed_with(room: &[u8]) -> Vec<u8> {
        let mut seed = vec![0u8; SEED_V1_LEN];
        seed.extend_from_slice(room);
        seed
    }

    #[test]
    fn written_keys_are_found_after_the_pool_records_and_lap_proto_skips_them() {
        let extensions = SeedExtensions {
            pool_request: Some(5),
            pool_usage: Some(2),
            ..SeedExtensions::default()
        };
        let keys = IntermediateKeys {
            ed25519: [1; 32],
            x25519: [2; 32],
        };
        let mut room = vec![0u8; 256];
        write_into(&extensions, &keys, &mut room).expect("fits");
        let seed = seed_with(&room);
        assert_eq!(find(&seed), Ok(Some(keys)));
        // A server that does not know 0x06 reads the rest unchanged (§2.1).
        let (_, parsed) = SeedV1::decode_with_extensions(&seed).expect("valid seed");
        assert_eq!(parsed, extensions);
    }

    #[test]
    fn a_seed_without_the_record_has_none_and_a_small_room_is_refused() {
        let mut room = vec![0u8; 128];
        SeedExtensions {
            pool_request: Some(1),
            ..SeedExtensions::default()
        }
        .write_into(&mut room)
        .expect("fits");
        assert_eq!(find(&seed_with(&room)), Ok(None));
        let keys = IntermediateKeys {
            ed25519: [1; 32],
            x25519: [2; 32],
        };
        let mut tiny = vec![0u8; 40];
        assert!(matches!(
            write_into(&SeedExtensions::default(), &keys, &mut tiny),
            Err(IntermediateKeysError::NoRoom {
                needed: 67,
                room: 40
            })
        ));
    }

    #[test]
    fn a_wrong_length_is_an_error() {
        let mut room = vec![0u8; 128];
        room[0] = INTERMEDIATE_KEYS;
        room[1] = 10;
        assert_eq!(
            find(&seed_with(&room)),
            Err(IntermediateKeysError::WrongLength(10))
        );
    }
}
