//! The vendor's catalog: SKUs and licenses, in TOML.
//!
//! ```toml
//! renew_after_days = 7            # optional: RenewAfter = now + this, capped at NotAfter
//!
//! [[sku]]
//! id = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11"
//! name = "Acme Studio"
//! evaluation_days = 30            # optional: grant evaluations to all-zero keys
//! evaluation_features = ["basic"] # optional
//! evaluation_cap = 1000           # optional: at most this many new evaluation machines…
//! evaluation_cap_hours = 24       # …in any window of this many hours (defaults 1000, 24)
//!
//! [[sku]]
//! id = "…"
//! name = "Acme Studio Export"
//! base = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11"   # makes this SKU an add-on of that base
//!
//! [[license]]
//! key = "XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXCC"
//! sku = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11"
//! kind = "term"                   # perpetual | term | subscription
//! seats = 3                       # distinct machines
//! days = 365                      # term from first activation, or:
//! # not_after = 1830000000        # a fixed end, UNIX seconds
//! features = ["pro"]
//! notice = "Licensed to Example Ltd."
//! allow_overuse = false           # true: answer beyond `seats`, marked out of compliance
//! transfers_per_year = 3          # optional: releases and moves per 365 days (none: no cap)
//! seat_lease_days = 120           # optional: free a seat not renewed for this many days
//!                                 # (none: 90 days past its last NotAfter, else 180 days)
//! pool = false                    # true: the seats go to customers' intermediate servers
//!                                 # (profile §10), never to desktops; a pool's grant lasts
//!                                 # seat_lease_days (default 30) unless renewed
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lap_proto::server_data::MAX_NOTICE_LEN;
use lap_proto::{LicenseKey, LicenseKind, Uuid};
use serde::Deserialize;
use sha2::{Digest, Sha256};

mod edit;

pub use edit::{NewLicense, add_license};

/// Why a catalog was refused. The running server keeps its previous catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("cannot read catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write catalog {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("catalog {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    renew_after_days: Option<u32>,
    #[serde(default)]
    sku: Vec<RawSku>,
    #[serde(default)]
    license: Vec<RawLicense>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSku {
    id: Uuid,
    name: String,
    base: Option<Uuid>,
    evaluation_days: Option<u32>,
    #[serde(default)]
    evaluation_features: Vec<String>,
    evaluation_cap: Option<u32>,
    evaluation_cap_hours: Option<u32>,
}

/// New evaluation machines a SKU takes per window when the catalog does not say: anyone
/// holding a product's public keys can ask for evaluations with made-up machine hashes, so
/// without a cap a flood fills the seat database. Legitimate first starts of a product
/// rarely come a thousand a day to one reference server; vendors expecting more raise it.
pub const DEFAULT_EVALUATION_CAP: u32 = 1000;
/// The window of [`DEFAULT_EVALUATION_CAP`], in hours.
pub const DEFAULT_EVALUATION_CAP_HOURS: u32 = 24;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLicense {
    key: String,
    sku: Uuid,
    kind: String,
    seats: u32,
    days: Option<u32>,
    not_after: Option<u64>,
    #[serde(default)]
    features: Vec<String>,
    notice: Option<String>,
    #[serde(default)]
    allow_overuse: bool,
    transfers_per_year: Option<u32>,
    seat_lease_days: Option<u32>,
    #[serde(default)]
    pool: bool,
}

/// A product the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    pub id: Uuid,
    pub name: String,
    /// `Some(base)` for an add-on.
    pub base: Option<Uuid>,
    pub evaluation_days: Option<u32>,
    pub evaluation_features: Vec<String>,
    /// At most this many machines start an evaluation in any `evaluation_cap_hours`.
    pub evaluation_cap: u32,
    pub evaluation_cap_hours: u32,
}

/// When a license ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Unlimited,
    /// A fixed end, UNIX seconds.
    Until(u64),
    /// This many days from the license's first activation.
    Days(u32),
}

/// One sold license.
#[derive(Clone, PartialEq, Eq)]
pub struct License {
    /// A stable, non-secret name for the license (SHA-256 of its key, hex, first 16 bytes):
    /// what the database and the logs use instead of the key.
    pub reference: String,
    pub key: LicenseKey,
    pub sku: Uuid,
    pub kind: LicenseKind,
    pub seats: u32,
    pub term: Term,
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub allow_overuse: bool,
    /// Releases and moves allowed per 365 days; `None`: no cap (profile §9).
    pub transfers_per_year: Option<u32>,
    /// A seat not renewed for this many days is freed; `None`: the §9 default.
    pub seat_lease_days: Option<u32>,
    /// A pool (profile §10): granted to intermediate servers only, as Seats and a Delegation.
    pub pool: bool,
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("License")
            .field("reference", &self.reference)
            .field("sku", &self.sku)
            .field("kind", &self.kind)
            .field("seats", &self.seats)
            .field("term", &self.term)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The non-secret reference of a license key.
pub fn license_reference(key: &LicenseKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..16])
}

/// The reference under which a SKU's evaluations are kept.
pub fn evaluation_reference(sku: Uuid) -> String {
    format!("eval:{sku}")
}

/// A validated catalog, indexed for the request path.
#[derive(Debug, Clone, Default)]
pub struct LicenseCatalog {
    pub renew_after_days: Option<u32>,
    skus: HashMap<Uuid, Sku>,
    /// Keyed by (SKU, key bytes).
    licenses: HashMap<(Uuid, [u8; 16]), License>,
}

impl LicenseCatalog {
    /// Reads and validates a catalog file.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates catalog text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError::Syntax {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        let invalid = |message: String| CatalogError::Invalid {
            path: path.to_owned(),
            message,
        };

        let mut skus = HashMap::new();
        for sku in raw.sku {
            check_features(&sku.evaluation_features)
                .map_err(|m| invalid(format!("SKU {}: {m}", sku.id)))?;
            if sku.id.is_nil() {
                return Err(invalid("a SKU id is the nil UUID".into()));
            }
            let id = sku.id;
            if sku.evaluation_cap == Some(0) || sku.evaluation_cap_hours == Some(0) {
                return Err(invalid(format!(
                    "SKU {id}: evaluation_cap and evaluation_cap_hours must be at least 1 (to offer no evaluation, leave out evaluation_days)"
                )));
            }
            let entry = Sku {
                id,
                name: sku.name,
                base: sku.base,
                evaluation_days: sku.evaluation_days.filter(|&d| d > 0),
                evaluation_features: sku.evaluation_features,
                evaluation_cap: sku.evaluation_cap.unwrap_or(DEFAULT_EVALUATION_CAP),
                evaluation_cap_hours: sku
                    .evaluation_cap_hours
                    .unwrap_or(DEFAULT_EVALUATION_CAP_HOURS),
            };
            if skus.insert(id, entry).is_some() {
                return Err(invalid(format!("SKU {id} is listed twice")));
            }
        }
        for sku in skus.values() {
            if let Some(base) = sku.base {
                match skus.get(&base) {
                    None => {
                        return Err(invalid(format!(
                            "add-on SKU {} names unknown base {base}",
                            sku.id
                        )));
                    }
                    Some(b) if b.base.is_some() => {
                        return Err(invalid(format!(
                            "add-on SKU {} names another add-on as its base",
                            sku.id
                        )));
                    }
                    Some(_) => {}
                }
            }
        }

        let mut licenses = HashMap::new();
        for (index, raw) in raw.license.into_iter().enumerate() {
            let n = index + 1;
            let license = parse_license(raw, n, &skus).map_err(invalid)?;
            if licenses
                .insert((license.sku, *license.key.as_bytes()), license)
                .is_some()
            {
                return Err(invalid(format!(
                    "license #{n}: the same key is listed twice for one SKU"
                )));
            }
        }
        Ok(Self {
            renew_after_days: raw.renew_after_days,
            skus,
            licenses,
        })
    }

    pub fn sku(&self, id: &Uuid) -> Option<&Sku> {
        self.skus.get(id)
    }

    pub fn license(&self, sku: Uuid, key: &[u8; 16]) -> Option<&License> {
        self.licenses.get(&(sku, *key))
    }

    pub fn skus(&self) -> impl Iterator<Item = &Sku> {
        self.skus.values()
    }

    pub fn licenses(&self) -> impl Iterator<Item = &License> {
        self.licenses.values()
    }
}

/// The kinds a `[[license]]` may have: evaluations go to the all-zero key, never to a license.
pub const LICENSE_KINDS: [LicenseKind; 3] = [
    LicenseKind::Perpetual,
    LicenseKind::Term,
    LicenseKind::Subscription,
];

/// A license's kind from its word (catalog or command line); `None` for a word that names no
/// kind or a kind a license may not have.
pub fn license_kind(word: &str) -> Option<LicenseKind> {
    word.parse::<LicenseKind>()
        .ok()
        .filter(|kind| LICENSE_KINDS.contains(kind))
}

/// Validates one `[[license]]` entry (`n` counts from 1, for messages).
fn parse_license(raw: RawLicense, n: usize, skus: &HashMap<Uuid, Sku>) -> Result<License, String> {
    let key = LicenseKey::parse(&raw.key).map_err(|e| format!("license #{n}: key: {e}"))?;
    if key.is_evaluation() {
        return Err(format!(
            "license #{n}: the all-zero key is reserved for evaluations"
        ));
    }
    if !skus.contains_key(&raw.sku) {
        return Err(format!("license #{n}: unknown SKU {}", raw.sku));
    }
    let Some(kind) = license_kind(&raw.kind) else {
        return Err(format!(
            "license #{n}: kind {:?} is not one of perpetual, term, subscription",
            raw.kind
        ));
    };
    if raw.seats == 0 {
        return Err(format!("license #{n}: seats must be at least 1"));
    }
    let term = match (raw.days, raw.not_after) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "license #{n}: give either days or not_after, not both"
            ));
        }
        (Some(0), None) => {
            return Err(format!("license #{n}: days must be at least 1"));
        }
        (Some(d), None) => Term::Days(d),
        (None, Some(t)) => Term::Until(t),
        (None, None) => Term::Unlimited,
    };
    if kind != LicenseKind::Perpetual && term == Term::Unlimited {
        return Err(format!(
            "license #{n}: a {} license needs days or not_after",
            kind.as_str()
        ));
    }
    check_features(&raw.features).map_err(|m| format!("license #{n}: {m}"))?;
    if raw
        .notice
        .as_ref()
        .is_some_and(|t| t.len() > MAX_NOTICE_LEN)
    {
        return Err(format!(
            "license #{n}: notice is longer than {MAX_NOTICE_LEN} bytes"
        ));
    }
    if raw.seat_lease_days == Some(0) {
        return Err(format!(
            "license #{n}: seat_lease_days must be at least 1 (leave it out for the default lease)"
        ));
    }
    if raw.pool && raw.days.is_some() {
        return Err(format!(
            "license #{n}: a pool's end is not_after, not days (there is no first activation to count from)"
        ));
    }
    if raw.pool && raw.allow_overuse {
        return Err(format!(
            "license #{n}: a pool cannot allow overuse (its Seats are what intermediates may grant)"
        ));
    }
    let license = License {
        pool: raw.pool,
        transfers_per_year: raw.transfers_per_year,
        seat_lease_days: raw.seat_lease_days,
        reference: license_reference(&key),
        sku: raw.sku,
        kind,
        seats: raw.seats,
        term,
        features: raw.features,
        notice: raw.notice,
        allow_overuse: raw.allow_overuse,
        key,
    };
    Ok(license)
}

fn check_features(features: &[String]) -> Result<(), String> {
    match features.iter().find(|f| f.is_empty() || f.contains(',')) {
        Some(bad) => Err(format!(
            "feature name {bad:?} must be non-empty and contain no comma"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
