//! ServerData as profile TLV v1 (§5): `type (1) ‖ length (2, LE) ‖ value`, strictly parsed.

use zeroize::Zeroizing;

use crate::delegation::{DELEGATION_LEN, Delegation};
// Defined with the crate's other errors, so that `error` needs nothing of this module.
pub use crate::error::ServerDataError;
use crate::time::{DAY, MINUTE, time_from_bytes, time_to_bytes};

const NOT_AFTER: u8 = 0x01;
const RENEW_AFTER: u8 = 0x02;
const KIND: u8 = 0x03;
const COMPLIANCE: u8 = 0x04;
const FEATURES: u8 = 0x05;
const NOTICE: u8 = 0x06;
const ASSET_KEY: u8 = 0x07;
const RELEASED: u8 = 0x08;
const SEATS: u8 = 0x09;
const DELEGATION: u8 = 0x0A;
const DUPLICATE: u8 = 0x0B;
const FIRST_VENDOR_TYPE: u8 = 0x80;
/// Longest Notice the profile allows, in bytes.
pub const MAX_NOTICE_LEN: usize = 200;
/// Renewal interval when the server names neither RenewAfter nor NotAfter.
pub const DEFAULT_RENEW_SECS: u64 = 30 * DAY;
/// The soonest a renewal follows the answer that set it: the client's fastest retry pace
/// (profile §8). A RenewAfter at or before ServerTime would otherwise make every answer due
/// again at once, and the client would ask in a loop.
pub const MIN_RENEW_SECS: u64 = 15 * MINUTE;

/// When to activate again after an answer at `server_time` (profile §5, §8): RenewAfter,
/// else halfway from ServerTime to NotAfter, else [`DEFAULT_RENEW_SECS`] later; a RenewAfter
/// past NotAfter is brought back to NotAfter (the server's own cap in `lapd`), so the license
/// does not lapse before it is renewed; and never sooner than [`MIN_RENEW_SECS`] after
/// ServerTime, even when NotAfter comes sooner (a lease that short is renewed after its end).
///
/// The one renewal rule: the engine's scheduler and status use it on the stored grant.
pub fn renew_at(server_time: u64, renew_after: Option<u64>, not_after: Option<u64>) -> u64 {
    let asked = match (renew_after, not_after) {
        (Some(renew), Some(end)) => renew.min(end),
        (Some(renew), None) => renew,
        (None, Some(end)) => server_time.saturating_add(end.saturating_sub(server_time) / 2),
        (None, None) => server_time.saturating_add(DEFAULT_RENEW_SECS),
    };
    asked.max(server_time.saturating_add(MIN_RENEW_SECS))
}

/// The license kinds of record 0x03. In JSON, catalogs and the CLI they are the words of
/// [`LicenseKind::as_str`], which `FromStr` and serde read back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LicenseKind {
    Perpetual,
    Term,
    Subscription,
    Evaluation,
}

impl LicenseKind {
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Perpetual => 0,
            Self::Term => 1,
            Self::Subscription => 2,
            Self::Evaluation => 3,
        }
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Perpetual,
            1 => Self::Term,
            2 => Self::Subscription,
            3 => Self::Evaluation,
            _ => return None,
        })
    }

    /// The lowercase word used in catalogs, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Perpetual => "perpetual",
            Self::Term => "term",
            Self::Subscription => "subscription",
            Self::Evaluation => "evaluation",
        }
    }

    /// Every kind, in record order.
    pub const ALL: [Self; 4] = [
        Self::Perpetual,
        Self::Term,
        Self::Subscription,
        Self::Evaluation,
    ];
}

impl std::fmt::Display for LicenseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no license kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} is not a license kind (perpetual, term, subscription or evaluation)")]
pub struct UnknownLicenseKind {
    pub word: String,
}

impl std::str::FromStr for LicenseKind {
    type Err = UnknownLicenseKind;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == word)
            .ok_or_else(|| UnknownLicenseKind {
                word: word.to_owned(),
            })
    }
}

/// Decoded ServerData. Unknown reserved records (0x0C–0x7F) are dropped; vendor records
/// (0x80–0xFF) are kept in order, untouched, for the product.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServerData {
    /// After this UNIX time the client considers itself de-activated. `None`: no end.
    pub not_after: Option<u64>,
    pub renew_after: Option<u64>,
    pub kind: Option<LicenseKind>,
    /// `Some(false)`: more in use than owned.
    pub in_compliance: Option<bool>,
    pub features: Vec<String>,
    /// Plain text for the user, at most 200 bytes.
    pub notice: Option<String>,
    /// Opaque key for the product; never shown or logged.
    pub asset_key: Option<Zeroizing<Vec<u8>>>,
    /// This installation's seat was freed (profile 1.1, §9).
    pub released: bool,
    /// Seats granted to an intermediate server's pool (profile 1.1, §10).
    pub seats: Option<u32>,
    /// The vendor's delegation of an intermediate server (profile 1.1, §10), unverified.
    /// Boxed: 190 bytes that most answers do not carry.
    pub delegation: Option<Box<Delegation>>,
    /// This installation sent a lower Generation than the server saw before: cloned or
    /// restored from a snapshot (profile 1.1, §9).
    pub duplicate: bool,
    pub vendor_records: Vec<(u8, Vec<u8>)>,
}

impl std::fmt::Debug for ServerData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerData")
            .field("not_after", &self.not_after)
            .field("renew_after", &self.renew_after)
            .field("kind", &self.kind)
            .field("in_compliance", &self.in_compliance)
            .field("features", &self.features)
            .field("notice", &self.notice)
            .field("asset_key", &self.asset_key.as_ref().map(|_| "<redacted>"))
            .field("released", &self.released)
            .field("seats", &self.seats)
            .field("delegation", &self.delegation)
            .field("duplicate", &self.duplicate)
            .field("vendor_records", &self.vendor_records.len())
            .finish()
    }
}

fn expect_len(
    record_type: u8,
    value: &[u8],
    len: usize,
    expected: &'static str,
) -> Result<(), ServerDataError> {
    if value.len() == len {
        Ok(())
    } else {
        Err(ServerDataError::WrongLength {
            record_type,
            len: value.len(),
            expected,
        })
    }
}

fn time_value(record_type: u8, value: &[u8]) -> Result<u64, ServerDataError> {
    let bytes = <[u8; 5]>::try_from(value).map_err(|_| ServerDataError::WrongLength {
        record_type,
        len: value.len(),
        expected: "5",
    })?;
    Ok(time_from_bytes(bytes))
}

fn utf8(record_type: u8, value: &[u8]) -> Result<String, ServerDataError> {
    String::from_utf8(value.to_vec()).map_err(|_| ServerDataError::InvalidValue {
        record_type,
        reason: "not UTF-8",
    })
}

impl ServerData {
    /// Parses TLV v1. Empty input is valid and means "nothing said".
    pub fn parse(bytes: &[u8]) -> Result<Self, ServerDataError> {
        let mut out = Self::default();
        let mut seen = [false; DUPLICATE as usize + 1];
        let mut offset = 0;
        while offset < bytes.len() {
            let Some(header) = bytes.get(offset..offset + 3) else {
                return Err(ServerDataError::Truncated { offset });
            };
            let record_type = header[0];
            let len = usize::from(u16::from_le_bytes([header[1], header[2]]));
            let Some(value) = bytes.get(offset + 3..offset + 3 + len) else {
                return Err(ServerDataError::Truncated { offset });
            };
            // §5 refuses duplicates of 0x01–0x07; a duplicate of the 1.1 records is as
            // ambiguous (which Seats? which Delegation?), so it is refused too.
            if (NOT_AFTER..=DUPLICATE).contains(&record_type) {
                let slot = &mut seen[usize::from(record_type)];
                if *slot {
                    return Err(ServerDataError::Duplicate { record_type });
                }
                *slot = true;
            }
            out.apply(record_type, value)?;
            offset += 3 + len;
        }
        Ok(out)
    }

    fn apply(&mut self, record_type: u8, value: &[u8]) -> Result<(), ServerDataError> {
        match record_type {
            NOT_AFTER => self.not_after = Some(time_value(record_type, value)?),
            RENEW_AFTER => self.renew_after = Some(time_value(record_type, value)?),
            KIND => {
                expect_len(record_type, value, 1, "1")?;
                self.kind = Some(LicenseKind::from_byte(value[0]).ok_or(
                    ServerDataError::InvalidValue {
                        record_type,
                        reason: "unknown license kind",
                    },
                )?);
            }
            COMPLIANCE => {
                expect_len(record_type, value, 1, "1")?;
                self.in_compliance = Some(match value[0] {
                    0 => true,
                    1 => false,
                    _ => {
                        return Err(ServerDataError::InvalidValue {
                            record_type,
                            reason: "compliance must be 0 or 1",
                        });
                    }
                });
            }
            FEATURES => {
                let text = utf8(record_type, value)?;
                if !text.is_empty() {
                    if text.split(',').any(str::is_empty) {
                        return Err(ServerDataError::InvalidValue {
                            record_type,
                            reason: "empty feature name",
                        });
                    }
                    self.features = text.split(',').map(str::to_owned).collect();
                }
            }
            NOTICE => {
                if value.len() > MAX_NOTICE_LEN {
                    return Err(ServerDataError::WrongLength {
                        record_type,
                        len: value.len(),
                        expected: "at most 200",
                    });
                }
                self.notice = Some(utf8(record_type, value)?);
            }
            ASSET_KEY => self.asset_key = Some(Zeroizing::new(value.to_vec())),
            RELEASED => {
                expect_len(record_type, value, 0, "0")?;
                self.released = true;
            }
            SEATS => {
                let bytes =
                    <[u8; 4]>::try_from(value).map_err(|_| ServerDataError::WrongLength {
                        record_type,
                        len: value.len(),
                        expected: "4",
                    })?;
                self.seats = Some(u32::from_le_bytes(bytes));
            }
            DELEGATION => {
                let bytes = <&[u8; DELEGATION_LEN]>::try_from(value).map_err(|_| {
                    ServerDataError::WrongLength {
                        record_type,
                        len: value.len(),
                        expected: "153",
                    }
                })?;
                self.delegation = Some(Box::new(Delegation::from_bytes(bytes)));
            }
            DUPLICATE => {
                expect_len(record_type, value, 1, "1")?;
                if value[0] != 1 {
                    return Err(ServerDataError::InvalidValue {
                        record_type,
                        reason: "Duplicate must be 1",
                    });
                }
                self.duplicate = true;
            }
            t if t >= FIRST_VENDOR_TYPE => self.vendor_records.push((t, value.to_vec())),
            _ => {} // 0x00 and 0x0C–0x7F: reserved, ignored by this version.
        }
        Ok(())
    }

    /// Encodes in type order, vendor records last. Refuses what `parse` would refuse.
    pub fn encode(&self) -> Result<Vec<u8>, ServerDataError> {
        let mut out = Vec::new();
        let mut put = |record_type: u8, value: &[u8]| -> Result<(), ServerDataError> {
            let len = u16::try_from(value.len()).map_err(|_| ServerDataError::WrongLength {
                record_type,
                len: value.len(),
                expected: "at most 65535",
            })?;
            out.push(record_type);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(value);
            Ok(())
        };
        let time = |record_type: u8, t: u64| {
            time_to_bytes(t).map_err(|_| ServerDataError::InvalidValue {
                record_type,
                reason: "time does not fit in 5 bytes",
            })
        };
        if let Some(t) = self.not_after {
            put(NOT_AFTER, &time(NOT_AFTER, t)?)?;
        }
        if let Some(t) = self.renew_after {
            put(RENEW_AFTER, &time(RENEW_AFTER, t)?)?;
        }
        if let Some(kind) = self.kind {
            put(KIND, &[kind.to_byte()])?;
        }
        if let Some(ok) = self.in_compliance {
            put(COMPLIANCE, &[u8::from(!ok)])?;
        }
        if !self.features.is_empty() {
            if self
                .features
                .iter()
                .any(|f| f.is_empty() || f.contains(','))
            {
                return Err(ServerDataError::InvalidValue {
                    record_type: FEATURES,
                    reason: "feature names must be non-empty and contain no comma",
                });
            }
            put(FEATURES, self.features.join(",").as_bytes())?;
        }
        if let Some(notice) = &self.notice {
            if notice.len() > MAX_NOTICE_LEN {
                return Err(ServerDataError::WrongLength {
                    record_type: NOTICE,
                    len: notice.len(),
                    expected: "at most 200",
                });
            }
            put(NOTICE, notice.as_bytes())?;
        }
        if let Some(key) = &self.asset_key {
            put(ASSET_KEY, key)?;
        }
        if self.released {
            put(RELEASED, &[])?;
        }
        if let Some(seats) = self.seats {
            put(SEATS, &seats.to_le_bytes())?;
        }
        if let Some(delegation) = &self.delegation {
            let bytes = delegation
                .to_bytes()
                .map_err(|_| ServerDataError::InvalidValue {
                    record_type: DELEGATION,
                    reason: "delegation NotAfter does not fit in 5 bytes",
                })?;
            put(DELEGATION, &bytes)?;
        }
        if self.duplicate {
            put(DUPLICATE, &[1])?;
        }
        for (record_type, value) in &self.vendor_records {
            if *record_type < FIRST_VENDOR_TYPE {
                return Err(ServerDataError::InvalidValue {
                    record_type: *record_type,
                    reason: "vendor records use types 0x80-0xFF",
                });
            }
            put(*record_type, value)?;
        }
        Ok(out)
    }

    /// True when this answer confirms a release as §9 words it: Released, and NotAfter equal
    /// to the answer's ServerTime. A Released with any other NotAfter contradicts itself.
    pub fn confirms_release(&self, server_time: u64) -> bool {
        self.released && self.not_after == Some(server_time)
    }

    /// When to activate again after this answer: [`renew_at`] on its records.
    pub fn renew_at(&self, server_time: u64) -> u64 {
        renew_at(server_time, self.renew_after, self.not_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MAX_TIME;

    fn full() -> ServerData {
        ServerData {
            not_after: Some(1_800_000_000),
            renew_after: Some(1_797_000_000),
            kind: Some(LicenseKind::Term),
            in_compliance: Some(false),
            features: vec!["pro".into(), "export".into()],
            notice: Some("Thanks for using Acme".into()),
            asset_key: Some(Zeroizing::new(vec![9; 32])),
            released: true,
            seats: Some(25),
            delegation: Some(Box::new(Delegation::from_bytes(&[7; DELEGATION_LEN]))),
            duplicate: true,
            vendor_records: vec![(0x80, vec![1, 2, 3]), (0xff, vec![])],
        }
    }

    #[test]
    fn profile_1_1_records_read_and_are_strict() {
        let parsed =
            ServerData::parse(&[RELEASED, 0, 0, SEATS, 4, 0, 10, 0, 0, 0, DUPLICATE, 1, 0, 1])
                .expect("valid");
        assert!(parsed.released && parsed.duplicate);
        assert_eq!(parsed.seats, Some(10));
        let delegation = [&[DELEGATION, 153, 0][..], &[5; DELEGATION_LEN]].concat();
        let parsed = ServerData::parse(&delegation).expect("valid");
        assert_eq!(
            parsed.delegation.as_deref(),
            Some(&Delegation::from_bytes(&[5; DELEGATION_LEN]))
        );
        for (bytes, record_type) in [
            (&[RELEASED, 1, 0, 0][..], RELEASED),
            (&[SEATS, 2, 0, 1, 0][..], SEATS),
            (&[DELEGATION, 1, 0, 0][..], DELEGATION),
            (&[DUPLICATE, 0, 0][..], DUPLICATE),
            (&[DUPLICATE, 1, 0, 2][..], DUPLICATE),
            (&[RELEASED, 0, 0, RELEASED, 0, 0][..], RELEASED),
            (&[DUPLICATE, 1, 0, 1, DUPLICATE, 1, 0, 1][..], DUPLICATE),
        ] {
            let error = ServerData::parse(bytes).expect_err("malformed");
            assert!(
                matches!(error,
                    ServerDataError::WrongLength { record_type: t, .. }
                    | ServerDataError::InvalidValue { record_type: t, .. }
                    | ServerDataError::Duplicate { record_type: t } if t == record_type),
                "{bytes:?}: {error:?}"
            );
        }
    }

    #[test]
    fn a_release_is_confirmed_only_with_not_after_at_server_time() {
        let released = |not_after| ServerData {
            released: true,
            not_after,
            ..ServerData::default()
        };
        assert!(released(Some(NOW)).confirms_release(NOW));
        assert!(!released(Some(NOW + 1)).confirms_release(NOW));
        assert!(!released(None).confirms_release(NOW));
        assert!(
            !ServerData {
                not_after: Some(NOW),
                ..ServerData::default()
            }
            .confirms_release(NOW)
        );
    }

    #[test]
    fn round_trips_every_record() {
        let bytes = full().encode().expect("valid");
        assert_eq!(ServerData::parse(&bytes).expect("parses"), full());
    }

    #[test]
    fn empty_is_valid_and_means_nothing() {
        let parsed = ServerData::parse(&[]).expect("empty is valid");
        assert_eq!(parsed, ServerData::default());
        assert_eq!(parsed.renew_at(1000), 1000 + DEFAULT_RENEW_SECS);
    }

    const NOW: u64 = 1_795_000_000;

    #[test]
    fn renew_defaults_to_halfway_to_not_after() {
        let data = ServerData {
            not_after: Some(NOW + 20 * DAY),
            ..ServerData::default()
        };
        assert_eq!(data.renew_at(NOW), NOW + 10 * DAY);
        let data = ServerData {
            renew_after: Some(NOW + 7 * DAY),
            not_after: Some(NOW + 20 * DAY),
            ..ServerData::default()
        };
        assert_eq!(data.renew_at(NOW), NOW + 7 * DAY);
        assert_eq!(renew_at(NOW, Some(NOW + 7 * DAY), None), NOW + 7 * DAY);
    }

    #[test]
    fn a_renew_after_at_or_before_server_time_waits_the_shortest_interval() {
        let soonest = NOW + MIN_RENEW_SECS;
        for renew in [0, NOW - DAY, NOW - 1, NOW, NOW + 1, soonest - 1] {
            assert_eq!(
                renew_at(NOW, Some(renew), None),
                soonest,
                "RenewAfter {renew}"
            );
            assert_eq!(
                renew_at(NOW, Some(renew), Some(NOW + 365 * DAY)),
                soonest,
                "RenewAfter {renew} with an end"
            );
        }
        assert_eq!(renew_at(NOW, Some(soonest + 1), None), soonest + 1);
    }

    #[test]
    fn a_renew_after_past_not_after_is_brought_back_to_it() {
        let end = NOW + 30 * DAY;
        assert_eq!(renew_at(NOW, Some(end + 1), Some(end)), end);
        assert_eq!(renew_at(NOW, Some(u64::MAX), Some(end)), end);
        assert_eq!(renew_at(NOW, Some(end), Some(end)), end);
    }

    #[test]
    fn an_end_already_passed_or_too_close_still_waits_the_shortest_interval() {
        let soonest = NOW + MIN_RENEW_SECS;
        for end in [0, NOW - 1, NOW, NOW + 2 * MINUTE] {
            assert_eq!(renew_at(NOW, None, Some(end)), soonest, "NotAfter {end}");
            assert_eq!(renew_at(NOW, Some(end), Some(end)), soonest, "both {end}");
        }
    }

    #[test]
    fn no_time_overflows() {
        assert_eq!(renew_at(u64::MAX, None, None), u64::MAX);
        assert_eq!(renew_at(u64::MAX - 1, None, Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn kinds_read_back_the_words_they_are_written_as() {
        for kind in LicenseKind::ALL {
            assert_eq!(kind.as_str().parse::<LicenseKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(LicenseKind::from_byte(kind.to_byte()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<LicenseKind>(&json).ok(), Some(kind));
        }
        assert_eq!(
            "Term".parse::<LicenseKind>(),
            Err(UnknownLicenseKind {
                word: "Term".into()
            })
        );
        assert!(serde_json::from_str::<LicenseKind>("\"lifetime\"").is_err());
    }

    #[test]
    fn reserved_records_are_ignored_but_must_be_well_formed() {
        let bytes = [0x10, 2, 0, 0xaa, 0xbb, 0x03, 1, 0, 0];
        let parsed = ServerData::parse(&bytes).expect("reserved ignored");
        assert_eq!(parsed.kind, Some(LicenseKind::Perpetual));
        assert!(matches!(
            ServerData::parse(&[0x10, 3, 0, 0xaa]),
            Err(ServerDataError::Truncated { offset: 0 })
        ));
    }

    #[test]
    fn every_malformation_is_refused() {
        let cases: &[(&[u8], ServerDataError)] = &[
            (&[0x01], ServerDataError::Truncated { offset: 0 }),
            (&[0x01, 5], ServerDataError::Truncated { offset: 0 }),
            (
                &[0x01, 5, 0, 1, 2, 3, 4],
                ServerDataError::Truncated { offset: 0 },
            ),
            (
                &[0x01, 4, 0, 1, 2, 3, 4],
                ServerDataError::WrongLength {
                    record_type: 1,
                    len: 4,
                    expected: "5",
                },
            ),
            (
                &[0x02, 6, 0, 1, 2, 3, 4, 5, 6],
                ServerDataError::WrongLength {
                    record_type: 2,
                    len: 6,
                    expected: "5",
                },
            ),
            (
                &[0x03, 0, 0],
                ServerDataError::WrongLength {
                    record_type: 3,
                    len: 0,
                    expected: "1",
                },
            ),
            (
                &[0x03, 1, 0, 4],
                ServerDataError::InvalidValue {
                    record_type: 3,
                    reason: "unknown license kind",
                },
            ),
            (
                &[0x04, 1, 0, 2],
                ServerDataError::InvalidValue {
                    record_type: 4,
                    reason: "compliance must be 0 or 1",
                },
            ),
            (
                &[0x05, 1, 0, 0xff],
                ServerDataError::InvalidValue {
                    record_type: 5,
                    reason: "not UTF-8",
                },
            ),
            (
                &[0x05, 3, 0, b'a', b',', b','],
                ServerDataError::InvalidValue {
                    record_type: 5,
                    reason: "empty feature name",
                },
            ),
            (
                &[0x06, 1, 0, 0xc3],
                ServerDataError::InvalidValue {
                    record_type: 6,
                    reason: "not UTF-8",
                },
            ),
            (
                &[0x03, 1, 0, 0, 0x03, 1, 0, 1],
                ServerDataError::Duplicate { record_type: 3 },
            ),
            (
                &[0x07, 0, 0, 0x07, 0, 0],
                ServerDataError::Duplicate { record_type: 7 },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                ServerData::parse(bytes).as_ref(),
                Err(expected),
                "input {bytes:02x?}"
            );
        }
        let mut long_notice = vec![0x06, 201, 0];
        long_notice.extend(std::iter::repeat_n(b'x', 201));
        assert!(matches!(
            ServerData::parse(&long_notice),
            Err(ServerDataError::WrongLength {
                record_type: 6,
                len: 201,
                ..
            })
        ));
    }

    #[test]
    fn vendor_records_may_repeat_and_keep_their_order() {
        let bytes = [0x80, 1, 0, 1, 0x90, 0, 0, 0x80, 1, 0, 2];
        let parsed = ServerData::parse(&bytes).expect("vendor records repeat");
        assert_eq!(
            parsed.vendor_records,
            vec![(0x80, vec![1]), (0x90, vec![]), (0x80, vec![2])]
        );
        assert_eq!(parsed.encode().expect("encodes"), bytes);
    }

    #[test]
    fn encode_refuses_what_parse_would_refuse() {
        let bad = [
            ServerData {
                features: vec!["a,b".into()],
                ..ServerData::default()
            },
            ServerData {
                features: vec![String::new()],
                ..ServerData::default()
            },
            ServerData {
                notice: Some("x".repeat(201)),
                ..ServerData::default()
            },
            ServerData {
                not_after: Some(MAX_TIME + 1),
                ..ServerData::default()
            },
            ServerData {
                vendor_records: vec![(0x10, vec![])],
                ..ServerData::default()
            },
        ];
        for data in bad {
            assert!(data.encode().is_err(), "{data:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_asset_key() {
        let text = format!("{:?}", full());
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("[9, 9"));
    }
}
