//! `lapd sunset`: the vendor's exit (profile §9). A sunset grant, signed with the server's
//! key, keeps a SKU's products running for good on every machine once the servers stop.

use std::path::Path;

use lap_proto::sunset::SunsetGrant;
use lap_proto::{LicenseKind, ServerData, Uuid};
use zeroize::Zeroizing;

/// Why no grant was written. Never carries the asset key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SunsetError {
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("--asset-key takes hex digits (an even number of them)")]
    AssetKeyHex,
    #[error("feature name {0:?} must be non-empty and contain no comma")]
    Feature(String),
    #[error("cannot build the sunset grant: {0}")]
    Grant(#[from] lap_proto::ProtoError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What the grant gives.
#[derive(Debug)]
pub struct Sunset {
    pub sku: Uuid,
    pub features: Vec<String>,
    /// Hex, as given; decoded here and never printed.
    pub asset_key_hex: Option<Zeroizing<String>>,
    /// When it is issued (UNIX seconds).
    pub issued: u64,
}

/// Signs a perpetual grant with the server's keys in `keys_dir` and writes it to `out`
/// atomically (0644: it is published to every user). Returns the grant written.
pub fn write(keys_dir: &Path, sunset: &Sunset, out: &Path) -> Result<SunsetGrant, SunsetError> {
    if let Some(bad) = sunset
        .features
        .iter()
        .find(|f| f.is_empty() || f.contains(','))
    {
        return Err(SunsetError::Feature(bad.clone()));
    }
    let asset_key = sunset
        .asset_key_hex
        .as_ref()
        .map(|text| {
            hex::decode(text.trim())
                .map(Zeroizing::new)
                .map_err(|_| SunsetError::AssetKeyHex)
        })
        .transpose()?;
    let keys = crate::keys::load(keys_dir)?;
    let data = ServerData {
        kind: Some(LicenseKind::Perpetual),
        features: sunset.features.clone(),
        asset_key,
        ..ServerData::default()
    };
    let grant = SunsetGrant::sign(&keys, sunset.sku, sunset.issued, &data)?;
    crate::fsutil::write_atomically(out, grant.to_json().as_bytes(), Some(0o644)).map_err(
        |source| SunsetError::Write {
            path: out.display().to_string(),
            source,
        },
    )?;
    Ok(grant)
}
