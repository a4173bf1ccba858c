//! The profile's ClientSeed v1 (§2) and the per-vendor MachineHash (§3).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{ProtoError, Result};
use crate::seed_ext::SeedExtensions;
use crate::wire::MAX_SEED_LEN;

/// Bytes of a v1 seed before its Room.
pub const SEED_V1_LEN: usize = 66;
/// The Room a manifest gets when it names none.
pub const DEFAULT_RESPONSE_ROOM: usize = 128;
/// The largest Room that keeps the request within one datagram.
pub const MAX_RESPONSE_ROOM: usize = MAX_SEED_LEN - SEED_V1_LEN;

/// The parts of a v1 seed. Holds the decoded license key, so it is wiped on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SeedV1 {
    /// The 16 key bytes; all zero for an evaluation.
    pub decoded_key: [u8; 16],
    pub machine_hash: [u8; 32],
    /// Populated processor packages (saturating).
    pub num_cpus: u8,
    /// Physical cores in total (saturating).
    pub num_cores: u8,
    pub install_nonce: [u8; 16],
}

impl std::fmt::Debug for SeedV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedV1")
            .field("evaluation", &self.is_evaluation())
            .field("num_cpus", &self.num_cpus)
            .field("num_cores", &self.num_cores)
            .finish_non_exhaustive()
    }
}

impl SeedV1 {
    /// True when the seed carries no key (an evaluation request).
    pub fn is_evaluation(&self) -> bool {
        self.decoded_key.iter().all(|&b| b == 0)
    }

    /// The seed bytes followed by `room` zero bytes (the space the server may fill).
    pub fn encode(&self, room: usize) -> Result<Zeroizing<Vec<u8>>> {
        self.encode_with_extensions(room, &SeedExtensions::default())
    }

    /// The seed bytes followed by `room` bytes that begin with `extensions` (profile 1.1,
    /// §2.1) and are zero after them. Refuses extensions that do not fit in `room`.
    pub fn encode_with_extensions(
        &self,
        room: usize,
        extensions: &SeedExtensions,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if room > MAX_RESPONSE_ROOM {
            return Err(ProtoError::TooLong {
                what: "response room",
                len: room,
                max: MAX_RESPONSE_ROOM,
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(SEED_V1_LEN + room));
        out.extend_from_slice(&self.decoded_key);
        out.extend_from_slice(&self.machine_hash);
        out.push(self.num_cpus);
        out.push(self.num_cores);
        out.extend_from_slice(&self.install_nonce);
        out.resize(SEED_V1_LEN + room, 0);
        extensions.write_into(&mut out[SEED_V1_LEN..])?;
        Ok(out)
    }

    /// Reads the first 66 bytes; the Room after them is ignored, as the profile says.
    pub fn decode(seed: &[u8]) -> Result<Self> {
        if seed.len() < SEED_V1_LEN {
            return Err(ProtoError::Seed("shorter than 66 bytes"));
        }
        let mut out = Self {
            decoded_key: [0; 16],
            machine_hash: [0; 32],
            num_cpus: seed[48],
            num_cores: seed[49],
            install_nonce: [0; 16],
        };
        out.decoded_key.copy_from_slice(&seed[..16]);
        out.machine_hash.copy_from_slice(&seed[16..48]);
        out.install_nonce.copy_from_slice(&seed[50..66]);
        Ok(out)
    }

    /// Reads the seed and the extensions at the start of its Room (profile 1.1, §2.1). A
    /// malformed extension area makes the whole seed malformed.
    pub fn decode_with_extensions(seed: &[u8]) -> Result<(Self, SeedExtensions)> {
        let out = Self::decode(seed)?;
        let extensions = SeedExtensions::parse(&seed[SEED_V1_LEN..])?;
        Ok((out, extensions))
    }
}

/// Saturates a count into the seed's one-byte fields.
pub fn saturating_count(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// `HMAC-SHA256(key = server Ed25519 public key, msg = anchor digest)`: one machine looks
/// different to every vendor (profile §3).
pub fn machine_hash(server_ed25519_public: &[u8; 32], anchor_digest: &[u8; 32]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(server_ed25519_public)
        .expect("HMAC takes keys of any length");
    mac.update(anchor_digest);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SeedV1 {
        SeedV1 {
            decoded_key: [1; 16],
            machine_hash: [2; 32],
            num_cpus: 1,
            num_cores: 8,
            install_nonce: [3; 16],
        }
    }

    #[test]
    fn encode_lays_out_fields_and_room() {
        let bytes = sample().encode(4).expect("room fits");
        assert_eq!(bytes.len(), 70);
        assert_eq!(&bytes[..16], &[1; 16]);
        assert_eq!(&bytes[16..48], &[2; 32]);
        assert_eq!(bytes[48], 1);
        assert_eq!(bytes[49], 8);
        assert_eq!(&bytes[50..66], &[3; 16]);
        assert_eq!(&bytes[66..], &[0; 4]);
        assert_eq!(SeedV1::decode(&bytes).expect("decodes"), sample());
    }

    #[test]
    fn decode_rejects_short_and_encode_rejects_oversized_room() {
        assert!(SeedV1::decode(&[0; 65]).is_err());
        assert!(sample().encode(MAX_RESPONSE_ROOM).is_ok());
        assert!(sample().encode(MAX_RESPONSE_ROOM + 1).is_err());
    }

    #[test]
    fn extensions_sit_at_the_start_of_room_and_read_back() {
        use crate::seed_ext::Intent;
        let extensions = SeedExtensions {
            intent: Intent::Release,
            generation: Some(3),
            ..SeedExtensions::default()
        };
        let bytes = sample()
            .encode_with_extensions(16, &extensions)
            .expect("fits");
        assert_eq!(bytes.len(), 82);
        assert_eq!(&bytes[66..70], &[1, 1, 0, 1]);
        let (seed, read) = SeedV1::decode_with_extensions(&bytes).expect("valid");
        assert_eq!((seed, read), (sample(), extensions.clone()));
        // Too little Room for them is refused, not cut.
        assert!(sample().encode_with_extensions(8, &extensions).is_err());
        // A plain seed has none, and reads back as none.
        let plain = sample().encode(16).expect("fits");
        let (_, none) = SeedV1::decode_with_extensions(&plain).expect("valid");
        assert!(none.is_empty());
        // A malformed area makes the seed malformed.
        let mut bad = plain.to_vec();
        bad[66..69].copy_from_slice(&[3, 9, 0]);
        assert!(SeedV1::decode_with_extensions(&bad).is_err());
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(saturating_count(3), 3);
        assert_eq!(saturating_count(255), 255);
        assert_eq!(saturating_count(1000), 255);
    }

    #[test]
    fn machine_hash_is_keyed_per_vendor() {
        let digest = [9u8; 32];
        let a = machine_hash(&[1; 32], &digest);
        let b = machine_hash(&[2; 32], &digest);
        assert_ne!(a, b);
        assert_eq!(a, machine_hash(&[1; 32], &digest));
        // Known answer from Python's hmac module (an independent implementation).
        let expected = "ea9f7f9aa052f00c61a621e93f3b8ec4d027fcf71a5b17f50929eeb9be3ce1c7";
        let got = hex::encode(a);
        assert_eq!(got, expected);
    }
}
