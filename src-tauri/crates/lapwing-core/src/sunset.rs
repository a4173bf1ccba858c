//! The vendor's exit (profile 1.1, §9 sunset): a grant signed with the server's key, valid on
//! every machine and forever. Lapwing takes it from `<id>.sunset.json` next to the product's
//! manifest, or from a copy imported into its data directory (`sunset/<id>.sunset.json`),
//! verifies it with the manifest's server key and SKU, and writes it as the product's
//! record (`activations/<id>.json`, a `SunsetRecord`) for the product to verify itself.

use std::path::{Path, PathBuf};

use lap_proto::{SunsetGrant, SunsetRecord};

use crate::engine::{Engine, EngineError, ProductStatus};
use crate::manifest::Manifest;
use crate::records::records_dir;
use crate::state::{StateError, Sunset, prepare_data_dir};

/// Where imported sunset grants are kept: `sunset/` under the data directory.
pub fn sunset_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sunset")
}

fn file_name(id: &str) -> String {
    format!("{id}.sunset.json")
}

/// The places a product's sunset grant is looked for, first found wins: next to its
/// manifest (the vendor's installer put it there), then the imported copy.
pub fn sunset_candidates(manifest: &Manifest, data_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(2);
    if let Some(dir) = manifest.file.parent() {
        out.push(dir.join(file_name(&manifest.id)));
    }
    out.push(sunset_dir(data_dir).join(file_name(&manifest.id)));
    out
}

/// Reads and verifies a sunset grant for `manifest`: its SKU and the signature by the
/// manifest's server key. The reason never echoes the file's content.
pub fn verified_grant(
    manifest: &Manifest,
    text: &str,
) -> Result<(SunsetGrant, lap_proto::ServerData), String> {
    let grant = SunsetGrant::from_json(text).map_err(|e| e.to_string())?;
    let data = grant
        .verify(manifest.sku, manifest.server_keys.ed25519_bytes())
        .map_err(|e| match e {
            lap_proto::ProtoError::SkuMismatch => {
                format!(
                    "it is for another product (SKU {}), not {}",
                    grant.sku, manifest.sku
                )
            }
            lap_proto::ProtoError::Authentication(_) => {
                "its signature is not by this product's server key (altered, or another vendor's)"
                    .to_owned()
            }
            other => other.to_string(),
        })?;
    Ok((grant, data))
}

impl Engine {
    /// Imports a sunset grant from `file` for product `id`: verified first, then copied into
    /// the data directory and written as the product's record (each atomically), then the
    /// state. A grant that does not verify changes nothing.
    pub fn import_sunset(&self, id: &str, file: &Path) -> Result<ProductStatus, EngineError> {
        let manifest = self.manifest(id)?;
        let text = std::fs::read_to_string(file).map_err(|e| EngineError::Sunset {
            id: id.to_owned(),
            reason: format!("{} cannot be read ({e})", file.display()),
        })?;
        let (grant, data) =
            verified_grant(&manifest, &text).map_err(|reason| EngineError::Sunset {
                id: id.to_owned(),
                reason,
            })?;
        let data_dir = &self.config().data_dir;
        let dir = sunset_dir(data_dir);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Io { path, source }
        };
        prepare_data_dir(data_dir).map_err(io(data_dir))?;
        lapwing_fs::create_private_dir(&dir).map_err(io(&dir))?;
        lapwing_fs::write_atomically(&dir.join(file_name(id)), grant.to_json().as_bytes(), 0o600)
            .map_err(io(&dir))?;
        self.adopt_sunset(&manifest, grant, data, "imported")?;
        self.product_status(id)
    }

    /// Takes up every installed product's sunset grant not taken yet (next to its manifest,
    /// or imported). One that does not verify is logged and left aside: nothing changes.
    pub fn pick_up_sunsets(&self) -> Result<(), EngineError> {
        let catalog = self.catalog();
        let data_dir = &self.config().data_dir;
        let found: Vec<(&Manifest, PathBuf)> = catalog
            .products
            .values()
            .filter_map(|m| {
                sunset_candidates(m, data_dir)
                    .into_iter()
                    .find(|path| path.is_file())
                    .map(|path| (m, path))
            })
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        let lock = self.state_store().lock()?;
        let (state, _) = self.state_store().load(&lock)?;
        drop(lock);
        for (manifest, path) in found {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match verified_grant(manifest, &text) {
                Ok((grant, data)) => {
                    let taken = state
                        .products
                        .get(&manifest.id)
                        .and_then(|p| p.sunset.as_ref())
                        .is_some_and(|s| s.signature == grant.signature);
                    if !taken {
                        let source = path.display().to_string();
                        self.adopt_sunset(manifest, grant, data, &source)?;
                    }
                }
                Err(reason) => {
                    tracing::warn!(product = %manifest.id, file = %path.display(), %reason, "sunset grant refused; nothing changed");
                }
            }
        }
        Ok(())
    }

    /// [`Engine::pick_up_sunsets`] where a status is read: a failure is logged, and the
    /// status is read all the same.
    pub(crate) fn pick_up_sunsets_logged(&self) {
        if let Err(e) = self.pick_up_sunsets() {
            tracing::warn!(error = %e, "sunset grants could not be taken up");
        }
    }

    /// Writes a verified grant as the product's record, then notes it in the state.
    fn adopt_sunset(
        &self,
        manifest: &Manifest,
        grant: SunsetGrant,
        data: lap_proto::ServerData,
        source: &str,
    ) -> Result<(), EngineError> {
        // Ids first: the product's state must exist, with ids that outlive it.
        self.provision(manifest)?;
        let data_dir = &self.config().data_dir;
        let records = records_dir(data_dir);
        let io = |source| StateError::Io {
            path: records.clone(),
            source,
        };
        prepare_data_dir(data_dir).map_err(io)?;
        lapwing_fs::create_private_dir(&records).map_err(io)?;
        let record = SunsetRecord::new(&manifest.id, grant.clone());
        lapwing_fs::write_atomically(
            &records.join(format!("{}.json", manifest.id)),
            record.to_json().as_bytes(),
            0o600,
        )
        .map_err(io)?;
        let sunset = Sunset {
            issued: grant.issued,
            signature: grant.signature,
            kind: data.kind,
            features: data.features,
            notice: data.notice,
            source: source.to_owned(),
        };
        self.state_store().update(|state| {
            if let Some(p) = state.products.get_mut(&manifest.id) {
                p.sunset = Some(sunset);
                p.backoff = None;
            }
        })?;
        Ok(())
    }
}
