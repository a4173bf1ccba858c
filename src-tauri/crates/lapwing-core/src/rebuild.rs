//! Rebuilding the state after its file was lost or unreadable, from what survives elsewhere.

use std::path::PathBuf;
use std::sync::Arc;

use lap_proto::Uuid;
use lapwing_secrets::{SecretError, SecretStore};

use crate::client_ids::Provisioner;
use crate::manifest::scan;
use crate::state::{Grant, Rebuild, State};
use crate::transport::Entropy;

/// Where the surviving parts are: the products' manifests, the data directory's activation
/// records, the keyring; and the randomness for fresh client ids.
pub(crate) struct Survivors {
    pub product_dirs: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    pub entropy: Arc<dyn Entropy>,
}

/// What survives a lost or corrupt state file: the keyring (client ids, key, evaluation
/// start) and the signed activation records, re-verified with each manifest's server key.
///
/// The client ids come back as provisioning finds them (`client_ids`): the keyring's, else
/// the record's `client_id` for the id the record was answered for and the base product's
/// for an add-on's ClientBaseId; a fresh one only when nothing knows it. A product whose ids
/// cannot be settled (keyring unreadable) is left out rather than given new ones: the next
/// provisioning, with the keyring back, settles them.
pub(crate) fn rebuilder(survivors: Survivors) -> Rebuild {
    let Survivors {
        product_dirs: dirs,
        data_dir: data,
        secrets,
        entropy,
    } = survivors;
    Arc::new(move |state: &mut State| {
        let mut random_id = || -> Result<Uuid, SecretError> {
            let mut bytes = [0u8; 16];
            entropy
                .fill(&mut bytes)
                .map_err(|e| SecretError::Randomness(e.to_string()))?;
            Ok(uuid::Builder::from_random_bytes(bytes).into_uuid())
        };
        let catalog = scan(&dirs);
        let provisioner = Provisioner {
            catalog: &catalog.products,
            data_dir: &data,
            secrets: secrets.as_ref(),
        };
        for manifest in catalog.products.values() {
            if let Err(error) = provisioner.provision(state, &manifest.id, &mut random_id) {
                tracing::warn!(product = %manifest.id, %error, "client ids not recovered: settled at the next provisioning");
            }
        }
        for manifest in catalog.products.values() {
            let Some(product) = state.products.get_mut(&manifest.id) else {
                continue;
            };
            let verified = crate::records::read_record(&data, &manifest.id).and_then(|record| {
                record
                    .verify(manifest.sku, manifest.server_keys.ed25519_bytes())
                    .ok()
            });
            if let Some(verified) = verified {
                let response = &verified.response;
                let evaluation =
                    verified.server_data.kind == Some(lap_proto::LicenseKind::Evaluation);
                let received_at = response.server_time;
                product.grant = Some(Grant::from_server_data(
                    response,
                    verified.server_data,
                    received_at,
                    None,
                    evaluation,
                ));
            }
            // The all-zero key is no key (see `Engine::stored_key`).
            product.has_key = matches!(
                secrets.get_license_key(&manifest.id),
                Ok(Some(k)) if k.iter().any(|&b| b != 0)
            );
            product.evaluation_started = secrets.get_evaluation_start(&manifest.id).ok().flatten();
        }
    })
}
