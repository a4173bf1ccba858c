//! Editing the catalog file: `lapd license new` appends a license, keeping the file's
//! comments and layout, and writes only a result that still parses as a catalog.

use std::path::Path;

use lap_proto::{LicenseKey, LicenseKind, Uuid};

use super::{CatalogError, LicenseCatalog};

/// What `lapd license new` adds.
#[derive(Debug, Clone)]
pub struct NewLicense {
    pub sku: Uuid,
    pub kind: LicenseKind,
    pub seats: u32,
    pub days: Option<u32>,
    pub features: Vec<String>,
    pub notice: Option<String>,
    /// Releases and moves allowed per year (profile §9); `None`: no limit.
    pub transfers_per_year: Option<u32>,
    /// The lease of a seat not renewed; `None`: the profile's default (§9).
    pub seat_lease_days: Option<u32>,
    /// Granted to customers' intermediate servers only (profile §10).
    pub pool: bool,
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
    if let Some(n) = license.transfers_per_year {
        table["transfers_per_year"] = toml_edit::value(i64::from(n));
    }
    if let Some(days) = license.seat_lease_days {
        table["seat_lease_days"] = toml_edit::value(i64::from(days));
    }
    if license.pool {
        table["pool"] = toml_edit::value(true);
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
    LicenseCatalog::parse(&new_text, path)?;
    crate::fsutil::rewrite_keeping_access(path, new_text.as_bytes()).map_err(|source| {
        CatalogError::Write {
            path: path.to_owned(),
            source,
        }
    })
}
