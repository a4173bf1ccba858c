//! Seed extensions (profile 1.1, §2.1): records at the start of a seed's Room that say what a
//! request wants beyond "activate or renew".
//!
//! `type (1) ‖ length (2, LE) ‖ value`, ended by a type byte 0x00 or by the end of Room;
//! everything after the end byte is zero. Unknown types are skipped. A malformed area (a
//! record past Room, a duplicate type, a known type with a value of the wrong length or
//! meaning, a non-zero byte after the end) is a malformed seed, which a server answers with
//! silence. A 1.0 server ignores Room, so each extension is safe to have ignored: the answer
//! then lacks the ServerData record that would confirm it.

const END: u8 = 0x00;
const INTENT: u8 = 0x01;
const PREVIOUS_MACHINE_HASH: u8 = 0x02;
const GENERATION: u8 = 0x03;
const POOL_REQUEST: u8 = 0x04;
const POOL_USAGE: u8 = 0x05;
/// Bytes of a record before its value.
const HEADER_LEN: usize = 3;

/// What a request asks for (extension 0x01).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Intent {
    /// Activate or renew: the meaning of a seed without the extension.
    #[default]
    Activate,
    /// Free the seat this installation (license, MachineHash) holds (§9).
    Release,
}

/// The extensions of one seed. The default is a seed with none, byte for byte a 1.0 seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedExtensions {
    pub intent: Intent,
    /// The MachineHash of this installation's last accepted answer, when the anchor changed.
    pub previous_machine_hash: Option<[u8; 32]>,
    /// How many answers this installation has accepted for this product.
    pub generation: Option<u32>,
    /// Seats an intermediate server wants for a pool (§10).
    pub pool_request: Option<u32>,
    /// Seats of that pool in use downstream now (§10).
    pub pool_usage: Option<u32>,
}

/// Why an extension area is malformed. Each makes the whole seed malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedExtensionError {
    #[error("seed extension at offset {offset} of Room runs past the end of Room")]
    PastRoom { offset: usize },
    #[error("seed extension type {record_type:#04x} appears twice")]
    Duplicate { record_type: u8 },
    #[error("seed extension type {record_type:#04x} has length {len}, expected {expected}")]
    WrongLength {
        record_type: u8,
        len: usize,
        expected: usize,
    },
    #[error("seed extension Intent has the unknown value {0}")]
    UnknownIntent(u8),
    #[error("non-zero byte at offset {offset} of Room after the end of the seed extensions")]
    AfterEnd { offset: usize },
    #[error("the seed extensions need {needed} bytes but Room has {room}")]
    NoRoom { needed: usize, room: usize },
}

fn fixed<const N: usize>(record_type: u8, value: &[u8]) -> Result<[u8; N], SeedExtensionError> {
    <[u8; N]>::try_from(value).map_err(|_| SeedExtensionError::WrongLength {
        record_type,
        len: value.len(),
        expected: N,
    })
}

impl SeedExtensions {
    /// True when there is nothing to write: the seed is a plain 1.0 seed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The records in type order, each as (type, value).
    fn records(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        if self.intent == Intent::Release {
            out.push((INTENT, vec![1]));
        }
        if let Some(hash) = self.previous_machine_hash {
            out.push((PREVIOUS_MACHINE_HASH, hash.to_vec()));
        }
        for (record_type, count) in [
            (GENERATION, self.generation),
            (POOL_REQUEST, self.pool_request),
            (POOL_USAGE, self.pool_usage),
        ] {
            if let Some(n) = count {
                out.push((record_type, n.to_le_bytes().to_vec()));
            }
        }
        out
    }

    /// Bytes the records take, without the end byte.
    pub fn encoded_len(&self) -> usize {
        self.records()
            .iter()
            .map(|(_, value)| HEADER_LEN + value.len())
            .sum()
    }

    /// Writes the records at the start of `room`, then the end byte; the rest of `room` is
    /// zeroed. Refuses when they do not fit.
    pub fn write_into(&self, room: &mut [u8]) -> Result<(), SeedExtensionError> {
        let needed = self.encoded_len();
        if needed > room.len() {
            return Err(SeedExtensionError::NoRoom {
                needed,
                room: room.len(),
            });
        }
        room.fill(0);
        let mut at = 0;
        for (record_type, value) in self.records() {
            let len = u16::try_from(value.len()).expect("extension values are a few bytes");
            room[at] = record_type;
            room[at + 1..at + HEADER_LEN].copy_from_slice(&len.to_le_bytes());
            room[at + HEADER_LEN..at + HEADER_LEN + value.len()].copy_from_slice(&value);
            at += HEADER_LEN + value.len();
        }
        // The end byte is the 0x00 already there (or the end of Room).
        Ok(())
    }

    /// Reads the extensions at the start of a seed's Room.
    pub fn parse(room: &[u8]) -> Result<Self, SeedExtensionError> {
        let mut out = Self::default();
        let mut seen = [false; 256];
        let mut offset = 0;
        while offset < room.len() {
            let record_type = room[offset];
            if record_type == END {
                return match room[offset..].iter().position(|&b| b != 0) {
                    Some(i) => Err(SeedExtensionError::AfterEnd { offset: offset + i }),
                    None => Ok(out),
                };
            }
            let Some(len) = room.get(offset + 1..offset + HEADER_LEN) else {
                return Err(SeedExtensionError::PastRoom { offset });
            };
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let start = offset + HEADER_LEN;
            let Some(value) = room.get(start..start + len) else {
                return Err(SeedExtensionError::PastRoom { offset });
            };
            let slot = &mut seen[usize::from(record_type)];
            if *slot {
                return Err(SeedExtensionError::Duplicate { record_type });
            }
            *slot = true;
            match record_type {
                INTENT => {
                    out.intent = match fixed::<1>(record_type, value)? {
                        [0] => Intent::Activate,
                        [1] => Intent::Release,
                        [other] => return Err(SeedExtensionError::UnknownIntent(other)),
                    }
                }
                PREVIOUS_MACHINE_HASH => {
                    out.previous_machine_hash = Some(fixed::<32>(record_type, value)?);
                }
                GENERATION => {
                    out.generation = Some(u32::from_le_bytes(fixed(record_type, value)?));
                }
                POOL_REQUEST => {
                    out.pool_request = Some(u32::from_le_bytes(fixed(record_type, value)?));
                }
                POOL_USAGE => {
                    out.pool_usage = Some(u32::from_le_bytes(fixed(record_type, value)?));
                }
                _ => {} // A later profile's extension: skipped, as §2.1 asks.
            }
            offset = start + len;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> SeedExtensions {
        SeedExtensions {
            intent: Intent::Release,
            previous_machine_hash: Some([7; 32]),
            generation: Some(42),
            pool_request: Some(10),
            pool_usage: Some(3),
        }
    }

    #[test]
    fn round_trips_and_lays_out_records_in_type_order() {
        let mut room = [0xee; 128];
        all().write_into(&mut room).expect("fits");
        assert_eq!(&room[..4], &[INTENT, 1, 0, 1]);
        assert_eq!(&room[4..7], &[PREVIOUS_MACHINE_HASH, 32, 0]);
        assert_eq!(&room[39..46], &[GENERATION, 4, 0, 42, 0, 0, 0]);
        assert_eq!(all().encoded_len(), 4 + 35 + 3 * 7);
        assert!(room[all().encoded_len()..].iter().all(|&b| b == 0));
        assert_eq!(SeedExtensions::parse(&room), Ok(all()));
    }

    #[test]
    fn none_is_a_zero_room_and_a_zero_room_is_none() {
        let mut room = [0xee; 16];
        SeedExtensions::default()
            .write_into(&mut room)
            .expect("fits");
        assert_eq!(room, [0; 16]);
        assert_eq!(SeedExtensions::parse(&room), Ok(SeedExtensions::default()));
        assert_eq!(SeedExtensions::parse(&[]), Ok(SeedExtensions::default()));
        assert!(SeedExtensions::default().is_empty());
    }

    #[test]
    fn records_may_fill_room_exactly_without_an_end_byte() {
        let only = SeedExtensions {
            generation: Some(5),
            ..SeedExtensions::default()
        };
        let mut room = [0; 7];
        only.write_into(&mut room).expect("fits exactly");
        assert_eq!(SeedExtensions::parse(&room), Ok(only));
        assert_eq!(
            all().write_into(&mut [0; 20]),
            Err(SeedExtensionError::NoRoom {
                needed: 60,
                room: 20
            })
        );
    }

    #[test]
    fn intent_zero_is_activate_and_unknown_types_are_skipped() {
        let room = [
            INTENT, 1, 0, 0, 0x42, 2, 0, 9, 9, GENERATION, 4, 0, 1, 0, 0, 0, 0, 0,
        ];
        let parsed = SeedExtensions::parse(&room).expect("valid");
        assert_eq!(parsed.intent, Intent::Activate);
        assert_eq!(parsed.generation, Some(1));
    }

    #[test]
    fn malformed_areas_are_refused() {
        // A record whose value runs past Room.
        assert_eq!(
            SeedExtensions::parse(&[GENERATION, 4, 0, 1, 0]),
            Err(SeedExtensionError::PastRoom { offset: 0 })
        );
        // A header cut by the end of Room.
        assert_eq!(
            SeedExtensions::parse(&[GENERATION, 4]),
            Err(SeedExtensionError::PastRoom { offset: 0 })
        );
        // The same type twice, known or not.
        assert_eq!(
            SeedExtensions::parse(&[INTENT, 1, 0, 1, INTENT, 1, 0, 1]),
            Err(SeedExtensionError::Duplicate {
                record_type: INTENT
            })
        );
        assert_eq!(
            SeedExtensions::parse(&[0x42, 0, 0, 0x42, 0, 0]),
            Err(SeedExtensionError::Duplicate { record_type: 0x42 })
        );
        // Non-zero after the end byte.
        assert_eq!(
            SeedExtensions::parse(&[INTENT, 1, 0, 1, END, 0, 0, 5, 0]),
            Err(SeedExtensionError::AfterEnd { offset: 7 })
        );
        // Wrong lengths and meanings of known types.
        assert_eq!(
            SeedExtensions::parse(&[GENERATION, 2, 0, 1, 0]),
            Err(SeedExtensionError::WrongLength {
                record_type: GENERATION,
                len: 2,
                expected: 4
            })
        );
        assert_eq!(
            SeedExtensions::parse(&[INTENT, 1, 0, 2]),
            Err(SeedExtensionError::UnknownIntent(2))
        );
        assert!(SeedExtensions::parse(&[PREVIOUS_MACHINE_HASH, 31, 0]).is_err());
    }
}
