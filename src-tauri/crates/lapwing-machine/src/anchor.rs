//! The anchor (profile §3): the sources in their order, each one's verdict, the choice with
//! pinning, and the digest that MachineHash is computed from.
//!
//! Canonical bytes, the part of the digest each source contributes:
//!
//! | source | canonical bytes |
//! |---|---|
//! | `tpm-ek` | RSA: the EK modulus, big-endian, no leading zeros; ECC: x ‖ y, each padded to the curve's size |
//! | `smbios-uuid` | the System UUID's 16 bytes in RFC 4122 order |
//! | `smbios-board` | manufacturer ‖ 0x00 ‖ product ‖ 0x00 ‖ serial, each trimmed, UTF-8 |
//! | `os-id` | the id's text, trimmed and lowercase, UTF-8 |
//!
//! `anchor digest = SHA-256("lapwing-anchor-v1" ‖ tag ‖ canonical bytes)`, the tag being the
//! source's ASCII name. No tag is a prefix of another, so the concatenation is unambiguous.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The domain separator of anchor digests, version 1.
pub const ANCHOR_DOMAIN: &[u8] = b"lapwing-anchor-v1";

/// An anchor source, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnchorSource {
    TpmEk,
    SmbiosUuid,
    SmbiosBoard,
    OsId,
}

impl AnchorSource {
    /// The profile's order: the first present and plausible source wins.
    pub const ORDER: [Self; 4] = [Self::TpmEk, Self::SmbiosUuid, Self::SmbiosBoard, Self::OsId];

    /// The ASCII tag that goes into the digest (and names the source everywhere).
    pub fn tag(self) -> &'static str {
        match self {
            Self::TpmEk => "tpm-ek",
            Self::SmbiosUuid => "smbios-uuid",
            Self::SmbiosBoard => "smbios-board",
            Self::OsId => "os-id",
        }
    }

    /// The OS id changes with every reinstall and is copied with every clone.
    pub fn is_weakest(self) -> bool {
        self == Self::OsId
    }
}

impl std::fmt::Display for AnchorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for AnchorSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ORDER
            .into_iter()
            .find(|source| source.tag() == s)
            .ok_or_else(|| {
                format!("unknown anchor source {s:?} (tpm-ek, smbios-uuid, smbios-board, os-id)")
            })
    }
}

/// `SHA-256("lapwing-anchor-v1" ‖ tag ‖ canonical)`.
pub fn anchor_digest(source: AnchorSource, canonical: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(ANCHOR_DOMAIN);
    hash.update(source.tag().as_bytes());
    hash.update(canonical);
    hash.finalize().into()
}

/// The canonical bytes of a baseboard: manufacturer ‖ 0 ‖ product ‖ 0 ‖ serial, trimmed.
pub fn board_canonical(manufacturer: &str, product: &str, serial: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(manufacturer.trim().as_bytes());
    out.push(0);
    out.extend_from_slice(product.trim().as_bytes());
    out.push(0);
    out.extend_from_slice(serial.trim().as_bytes());
    out
}

/// What one source looks like now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Present and plausible: it can be the anchor.
    Plausible,
    /// Present, but a placeholder or otherwise useless (the reason says which).
    Implausible(String),
    /// Read, and not there.
    Absent(String),
    /// Could not be read by this process (no permission, a failure, a timeout): it might be
    /// there, so a weaker source chosen instead is not the machine's real anchor.
    Unreadable(String),
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plausible => "plausible",
            Self::Implausible(_) => "implausible",
            Self::Absent(_) => "absent",
            Self::Unreadable(_) => "unreadable",
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Plausible => None,
            Self::Implausible(d) | Self::Absent(d) | Self::Unreadable(d) => Some(d),
        }
    }
}

/// One source as read now: its verdict and, when present, its canonical bytes and a display
/// of the raw identifier (shown only on request).
#[derive(Clone, PartialEq, Eq)]
pub struct Reading {
    pub source: AnchorSource,
    pub verdict: Verdict,
    canonical: Option<Zeroizing<Vec<u8>>>,
    raw: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Raw identifiers stay out of debug output and logs.
        f.debug_struct("Reading")
            .field("source", &self.source)
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

impl Reading {
    /// A present source. `implausible` is the reason it cannot be used, if any.
    pub fn present(
        source: AnchorSource,
        canonical: Vec<u8>,
        raw: String,
        implausible: Option<String>,
    ) -> Self {
        Self {
            source,
            verdict: implausible.map_or(Verdict::Plausible, Verdict::Implausible),
            canonical: Some(Zeroizing::new(canonical)),
            raw: Some(Zeroizing::new(raw)),
        }
    }

    /// A source that is absent or could not be read.
    pub fn missing(source: AnchorSource, verdict: Verdict) -> Self {
        Self {
            source,
            verdict,
            canonical: None,
            raw: None,
        }
    }

    /// The digest, for a plausible source.
    pub fn digest(&self) -> Option<[u8; 32]> {
        match (&self.verdict, &self.canonical) {
            (Verdict::Plausible, Some(bytes)) => Some(anchor_digest(self.source, bytes)),
            _ => None,
        }
    }

    /// The raw identifier as text (a UUID, serials, the EK in hex): for `--show-raw` only.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref().map(String::as_str)
    }
}

/// What happened to the pinned source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinOutcome {
    /// Nothing was pinned: the first plausible source in order won.
    NotPinned,
    /// The pinned source is still present and plausible, and stays the anchor.
    Kept(AnchorSource),
    /// The pinned source has disappeared (or is no longer plausible): the next in order took
    /// its place.
    FellBack {
        pinned: AnchorSource,
        reason: String,
    },
    /// The pinned source could not be read now; it may well still be there.
    PinnedUnreadable {
        pinned: AnchorSource,
        reason: String,
    },
}

/// The chosen anchor and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The source and its digest; `None` when no source is present and plausible.
    pub chosen: Option<(AnchorSource, [u8; 32])>,
    pub pin: PinOutcome,
    /// Sources that might have won but could not be read, with why.
    pub unreadable_above: Vec<(AnchorSource, String)>,
}

impl Selection {
    /// True when the choice does not depend on anything this process could not read: the
    /// pinned source was read, or every source ranked above the chosen one was read and found
    /// absent or implausible.
    pub fn authoritative(&self) -> bool {
        match self.pin {
            PinOutcome::Kept(_) => true,
            PinOutcome::PinnedUnreadable { .. } => false,
            PinOutcome::NotPinned | PinOutcome::FellBack { .. } => {
                self.chosen.is_some() && self.unreadable_above.is_empty()
            }
        }
    }

    /// Every source this process could not read that might have been the anchor: the pinned
    /// one and those ranked above the choice.
    pub fn unreadable(&self) -> Vec<(AnchorSource, &str)> {
        let pinned = match &self.pin {
            PinOutcome::PinnedUnreadable { pinned, reason } => Some((*pinned, reason.as_str())),
            _ => None,
        };
        pinned
            .into_iter()
            .chain(
                self.unreadable_above
                    .iter()
                    .map(|(s, why)| (*s, why.as_str())),
            )
            .collect()
    }

    /// One sentence on the pin, for the report; `None` when nothing was pinned.
    pub fn pin_note(&self) -> Option<String> {
        let chosen = self.chosen.map(|(s, _)| s);
        let then = |prefix: String| match chosen {
            Some(source) => format!("{prefix}; fell back to {source}"),
            None => format!("{prefix}; no other source is present and plausible"),
        };
        match &self.pin {
            PinOutcome::NotPinned => None,
            PinOutcome::Kept(source) => Some(format!("pinned source {source} kept")),
            PinOutcome::FellBack { pinned, reason } => {
                Some(then(format!("pinned source {pinned} is gone ({reason})")))
            }
            PinOutcome::PinnedUnreadable { pinned, reason } => Some(then(format!(
                "pinned source {pinned} could not be read ({reason})"
            ))),
        }
    }
}

/// Chooses the anchor: the pinned source while it is present and plausible, else the first
/// present and plausible source in the profile's order.
pub fn select(readings: &[Reading], pinned: Option<AnchorSource>) -> Selection {
    let reading = |source: AnchorSource| readings.iter().find(|r| r.source == source);
    let mut pin = PinOutcome::NotPinned;
    if let Some(pinned) = pinned {
        let verdict = reading(pinned).map_or(Verdict::Absent("not read".to_owned()), |r| {
            r.verdict.clone()
        });
        match verdict {
            Verdict::Plausible => {
                if let Some(digest) = reading(pinned).and_then(Reading::digest) {
                    return Selection {
                        chosen: Some((pinned, digest)),
                        pin: PinOutcome::Kept(pinned),
                        unreadable_above: Vec::new(),
                    };
                }
            }
            Verdict::Implausible(reason) => {
                pin = PinOutcome::FellBack {
                    pinned,
                    reason: format!("no longer plausible: {reason}"),
                };
            }
            Verdict::Absent(reason) => pin = PinOutcome::FellBack { pinned, reason },
            Verdict::Unreadable(reason) => pin = PinOutcome::PinnedUnreadable { pinned, reason },
        }
    }
    let mut unreadable_above = Vec::new();
    for source in AnchorSource::ORDER {
        let Some(r) = reading(source) else { continue };
        match &r.verdict {
            Verdict::Plausible => {
                if let Some(digest) = r.digest() {
                    return Selection {
                        chosen: Some((source, digest)),
                        pin,
                        unreadable_above,
                    };
                }
            }
            Verdict::Unreadable(reason) => unreadable_above.push((source, reason.clone())),
            Verdict::Implausible(_) | Verdict::Absent(_) => {}
        }
    }
    Selection {
        chosen: None,
        pin,
        unreadable_above,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plausible(source: AnchorSource, bytes: &[u8]) -> Reading {
        Reading::present(source, bytes.to_vec(), "raw".to_owned(), None)
    }

    #[test]
    fn digest_is_sha256_of_domain_tag_and_bytes() {
        // Known answers from Python's hashlib (an independent implementation):
        // sha256(b"lapwing-anchor-v1" + b"os-id" + b"abc"), and the same for smbios-uuid
        // with 4c4c4544-0035-1052-8036-b4c04f313432.
        assert_eq!(
            hex::encode(anchor_digest(AnchorSource::OsId, b"abc")),
            "fc6047abd50f105bdc6f08b749289261e970e2ad0328b0442e100acf6bdf76ae"
        );
        let uuid = hex::decode("4c4c4544003510528036b4c04f313432").expect("hex");
        assert_eq!(
            hex::encode(anchor_digest(AnchorSource::SmbiosUuid, &uuid)),
            "35316580d1ef42afb9044583af8b73c950dd716485ed8855fb5080ee48dd01e0"
        );
        assert_ne!(
            anchor_digest(AnchorSource::OsId, b"abc"),
            anchor_digest(AnchorSource::SmbiosBoard, b"abc"),
            "the tag separates sources"
        );
    }

    #[test]
    fn first_plausible_source_in_order_wins() {
        let readings = vec![
            Reading::missing(AnchorSource::TpmEk, Verdict::Absent("no TPM".into())),
            Reading::present(
                AnchorSource::SmbiosUuid,
                vec![0; 16],
                "0".into(),
                Some("nil".into()),
            ),
            plausible(AnchorSource::SmbiosBoard, b"A\0B\0C"),
            plausible(AnchorSource::OsId, b"id"),
        ];
        let s = select(&readings, None);
        assert_eq!(s.chosen.map(|c| c.0), Some(AnchorSource::SmbiosBoard));
        assert!(s.authoritative());
        assert_eq!(s.pin, PinOutcome::NotPinned);
    }

    #[test]
    fn an_unreadable_stronger_source_makes_the_choice_not_authoritative() {
        let readings = vec![
            Reading::missing(
                AnchorSource::TpmEk,
                Verdict::Unreadable("permission denied".into()),
            ),
            plausible(AnchorSource::OsId, b"id"),
        ];
        let s = select(&readings, None);
        assert_eq!(s.chosen.map(|c| c.0), Some(AnchorSource::OsId));
        assert!(!s.authoritative());
        assert_eq!(s.unreadable_above.len(), 1);
    }
}
