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
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lap_proto::server_data::MAX_NOTICE_LEN;
use lap_proto::{LicenseKey, LicenseKind, Uuid};
use serde::Deserialize;
use sha2::{Digest, Sha256};

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
}

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
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("License")
            .field("reference", &self.reference)
            .field("sku", &self.sku)
            .field("kind", &self.kind)
            .field("seats", &self.seats)
            .field("term", &self.term)
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
pub struct Catalog {
    pub renew_after_days: Option<u32>,
    skus: HashMap<Uuid, Sku>,
    /// Keyed by (SKU, key bytes).
    licenses: HashMap<(Uuid, [u8; 16]), License>,
}

impl Catalog {
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
            let entry = Sku {
                id,
                name: sku.name,
                base: sku.base,
                evaluation_days: sku.evaluation_days.filter(|&d| d > 0),
                evaluation_features: sku.evaluation_features,
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
    let kind = match raw.kind.as_str() {
        "perpetual" => LicenseKind::Perpetual,
        "term" => LicenseKind::Term,
        "subscription" => LicenseKind::Subscription,
        other => {
            return Err(format!(
                "license #{n}: kind {other:?} is not one of perpetual, term, subscription"
            ));
        }
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
    let license = License {
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

/// What `lapd license new` adds.
#[derive(Debug, Clone)]
pub struct NewLicense {
    pub sku: Uuid,
    pub kind: LicenseKind,
    pub seats: u32,
    pub days: Option<u32>,
    pub features: Vec<String>,
    pub notice: Option<String>,
}

/// Appends a license to the catalog file, keeping its comments and layout, after checking
/// that the result is still a valid catalog. Written atomically.
pub fn add_license(
    path: &Path,
    license: &NewLicense,
    key: &LicenseKey,
) -> Result<(), CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| CatalogError::Syntax {
                path: path.to_owned(),
                message: e.message().to_owned(),
            })?;
    let mut table = toml_edit::Table::new();
    table["key"] = toml_edit::value(key.to_display());
    table["sku"] = toml_edit::value(license.sku.to_string());
    table["kind"] = toml_edit::value(license.kind.as_str());
    table["seats"] = toml_edit::value(i64::from(license.seats));
    if let Some(days) = license.days {
        table["days"] = toml_edit::value(i64::from(days));
    }
    if !license.features.is_empty() {
        let mut array = toml_edit::Array::new();
        for f in &license.features {
            array.push(f.as_str());
        }
        table["features"] = toml_edit::value(array);
    }
    if let Some(notice) = &license.notice {
        table["notice"] = toml_edit::value(notice.as_str());
    }
    let licenses = doc
        .entry("license")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    let Some(array) = licenses.as_array_of_tables_mut() else {
        return Err(CatalogError::Invalid {
            path: path.to_owned(),
            message: "`license` is not an array of tables".into(),
        });
    };
    array.push(table);
    let new_text = doc.to_string();
    Catalog::parse(&new_text, path)?;
    crate::fsutil::write_atomically(path, new_text.as_bytes(), None).map_err(|source| {
        CatalogError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11";
    const ADDON: &str = "0d3f4b43-4c39-4a43-9a3e-5f7a1c0e9b12";

    fn key_from(n: u8) -> LicenseKey {
        // A deterministic draw that moves on, as generate re-draws untypeable keys.
        let mut draw = [n; 16];
        LicenseKey::generate(move || {
            draw[15] = draw[15].wrapping_add(1);
            draw
        })
    }

    fn key() -> LicenseKey {
        key_from(0x42)
    }

    fn catalog_text(extra: &str) -> String {
        format!(
            "[[sku]]\nid = \"{BASE}\"\nname = \"Base\"\nevaluation_days = 30\n\n[[sku]]\nid = \"{ADDON}\"\nname = \"Addon\"\nbase = \"{BASE}\"\n{extra}"
        )
    }

    fn parse(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn valid_catalog_indexes_skus_and_licenses() {
        let text = catalog_text(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 2\ndays = 365\nfeatures = [\"pro\"]\n",
            key().to_display()
        ));
        let catalog = parse(&text).expect("valid");
        let base: Uuid = BASE.parse().expect("uuid");
        let addon: Uuid = ADDON.parse().expect("uuid");
        assert_eq!(catalog.sku(&addon).and_then(|s| s.base), Some(base));
        assert_eq!(catalog.sku(&base).and_then(|s| s.evaluation_days), Some(30));
        let license = catalog
            .license(base, key().as_bytes())
            .expect("license indexed");
        assert_eq!(license.term, Term::Days(365));
        assert_eq!(license.seats, 2);
        assert!(catalog.license(addon, key().as_bytes()).is_none());
    }

    #[test]
    fn each_mistake_is_named() {
        let k = key().to_display();
        let cases = [
            (
                "[[sku]]\nid = \"nope\"\nname = \"x\"\n".to_owned(),
                "not valid TOML",
            ),
            (
                catalog_text(
                    "[[sku]]\nid = \"00000000-0000-0000-0000-000000000001\"\nname = \"x\"\nbase = \"00000000-0000-0000-0000-000000000002\"\n",
                ),
                "unknown base",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"lifetime\"\nseats = 1\n"
                )),
                "is not one of",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 0\n"
                )),
                "at least 1",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 1\n"
                )),
                "needs days or not_after",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 1\ndays = 3\nnot_after = 5\n"
                )),
                "not both",
            ),
            (
                catalog_text(
                    "[[license]]\nkey = \"0000-0000-0000-0000-0000-0000-0000\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nkind = \"perpetual\"\nseats = 1\n",
                ),
                "key",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\n[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\n"
                )),
                "twice",
            ),
            (
                catalog_text(&format!(
                    "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\nfeatures = [\"a,b\"]\n"
                )),
                "comma",
            ),
            (catalog_text("surprise = 1\n"), "not valid TOML"),
        ];
        for (text, needle) in cases {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            assert!(!err.contains(&k), "errors never echo a key: {err}");
        }
    }

    #[test]
    fn add_license_keeps_comments_and_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.toml");
        std::fs::write(&path, format!("# my products\n{}", catalog_text(""))).expect("write");
        let new = NewLicense {
            sku: BASE.parse().expect("uuid"),
            kind: LicenseKind::Perpetual,
            seats: 3,
            days: None,
            features: vec!["pro".into()],
            notice: Some("hi".into()),
        };
        add_license(&path, &new, &key()).expect("added");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("# my products\n"));
        let catalog = Catalog::load(&path).expect("still valid");
        assert_eq!(catalog.licenses().count(), 1);

        let bad = NewLicense {
            sku: Uuid::from_u128(7),
            ..new
        };
        assert!(add_license(&path, &bad, &key_from(7)).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            text,
            "a refused add changes nothing"
        );
    }
}
