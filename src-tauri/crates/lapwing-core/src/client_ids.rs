//! A product's client ids (draft §3.1): the ClientBaseId names the base installation, the
//! ClientAddOnId the add-on installed on it (nil for a base product). A server binds seats to
//! them and correlates an add-on with its base by the shared ClientBaseId, so they must stay
//! "static for the installation time": they are minted once, kept in the state file AND in
//! the keyring, and recovered from what survives before a new one is ever drawn.
//!
//! The rules, in the order they are tried when the state has no ids for a product:
//!
//! - **A base product**: the ClientBaseId the keyring kept for it; else the `client_id` of
//!   its signed activation record (the server echoes the base id for a base product); else
//!   the ClientBaseId one of its installed add-ons still carries (in the state, then in the
//!   keyring), so a base removed with `forget` and provisioned again rejoins its add-ons;
//!   else a fresh random one. Its ClientAddOnId is always nil.
//! - **An add-on**: its base is provisioned first (in the same state write), so installing
//!   the add-on's manifest and activating it provisions the base too. Its ClientBaseId is
//!   the one the keyring kept for the add-on, else its base's; its ClientAddOnId the one the
//!   keyring kept, else its record's `client_id` (the server echoes the add-on id), else a
//!   fresh one. An add-on whose base's manifest is not installed is not in the catalog at
//!   all (`manifest::scan`), so it is never provisioned: the engine says so with
//!   `EngineError::BaseNotInstalled`.
//! - **Removing the base** (`forget`) leaves its add-ons' ids as they are: they were fixed
//!   when the add-on was installed.
//!
//! A product already in the state keeps the ids the state holds (they are what the server
//! last saw); when the keyring does not yet hold them (a state written before they were kept
//! there) they are written to it on this provisioning.

use std::collections::BTreeMap;
use std::path::Path;

use lap_proto::Uuid;
use lapwing_secrets::{ClientIds, SecretError, SecretStore};

use crate::manifest::Manifest;
use crate::state::{ProductState, State};

/// How deep a chain of add-ons of add-ons is followed: manifests could name each other in a
/// circle, and no real product nests this deep.
const MAX_ADDON_DEPTH: usize = 8;

/// What provisioning reads ids from besides the state.
pub(crate) struct Provisioner<'a> {
    /// The installed products, by id.
    pub catalog: &'a BTreeMap<String, Manifest>,
    /// Where the activation records are.
    pub data_dir: &'a Path,
    pub secrets: &'a dyn SecretStore,
}

impl Provisioner<'_> {
    /// Gives `id` its client ids in `state` if it has none (an add-on's base first), and
    /// makes sure the keyring holds them. Returns whether `state` changed. `fresh` draws a
    /// new random UUID, called only when nothing knows the id.
    ///
    /// A product new to the state enters it only once its ids are in the keyring: a keyring
    /// that cannot be read or written is an error, because minting ids it might already hold
    /// would break their being static. For a product the state already has, a keyring
    /// failure only postpones writing the ids there.
    pub fn provision<E: From<SecretError>>(
        &self,
        state: &mut State,
        id: &str,
        fresh: &mut dyn FnMut() -> Result<Uuid, E>,
    ) -> Result<bool, E> {
        self.provision_at(state, id, fresh, 0)
    }

    fn provision_at<E: From<SecretError>>(
        &self,
        state: &mut State,
        id: &str,
        fresh: &mut dyn FnMut() -> Result<Uuid, E>,
        depth: usize,
    ) -> Result<bool, E> {
        if let Some(product) = state.products.get_mut(id) {
            return Ok(self.keep_in_keyring(id, product));
        }
        let Some(manifest) = self.catalog.get(id) else {
            return Ok(false);
        };
        let kept = self.secrets.get_client_ids(id)?;
        let (base_id, addon_id) = if let Some(base) = &manifest.addon_of {
            if depth < MAX_ADDON_DEPTH {
                self.provision_at(state, base, fresh, depth + 1)?;
            }
            let base_id = match kept.map(|k| Uuid::from_bytes(k.base)) {
                Some(kept) if !kept.is_nil() => kept,
                _ => match state.products.get(base) {
                    Some(base) => base.client_base_id,
                    None => fresh()?,
                },
            };
            let addon_id = match kept.map(|k| Uuid::from_bytes(k.addon)) {
                Some(kept) if !kept.is_nil() => kept,
                _ => match self.record_client_id(manifest) {
                    Some(recorded) => recorded,
                    None => fresh()?,
                },
            };
            (base_id, addon_id)
        } else {
            let base_id = match kept.map(|k| Uuid::from_bytes(k.base)) {
                Some(kept) if !kept.is_nil() => kept,
                _ => match self
                    .record_client_id(manifest)
                    .or_else(|| self.base_id_of_addons(state, id))
                {
                    Some(known) => known,
                    None => fresh()?,
                },
            };
            (base_id, Uuid::nil())
        };
        let ids = ClientIds {
            base: base_id.into_bytes(),
            addon: addon_id.into_bytes(),
        };
        if kept != Some(ids) {
            self.secrets.set_client_ids(id, &ids)?;
        }
        let mut product = ProductState::new(base_id, addon_id);
        product.client_ids_in_keyring = true;
        state.products.insert(id.to_owned(), product);
        Ok(true)
    }

    /// Writes a provisioned product's ids to the keyring when it is not known to hold them.
    /// Returns whether the product changed (it now knows they are there).
    fn keep_in_keyring(&self, id: &str, product: &mut ProductState) -> bool {
        if product.client_ids_in_keyring {
            return false;
        }
        let ids = ClientIds {
            base: product.client_base_id.into_bytes(),
            addon: product.client_addon_id.into_bytes(),
        };
        let written = match self.secrets.get_client_ids(id) {
            Ok(Some(kept)) if kept == ids => Ok(()),
            Ok(_) => self.secrets.set_client_ids(id, &ids),
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                product.client_ids_in_keyring = true;
                true
            }
            Err(e) => {
                tracing::debug!(product = id, error = %e, "client ids not yet kept in the keyring: tried again at the next provisioning");
                false
            }
        }
    }

    /// The id the product's signed activation record was answered for, if it has a record
    /// that verifies with the manifest's server key.
    fn record_client_id(&self, manifest: &Manifest) -> Option<Uuid> {
        let record = crate::records::read_record(self.data_dir, &manifest.id)?;
        let verified = record
            .verify(manifest.sku, manifest.server_keys.ed25519_bytes())
            .ok()?;
        Some(verified.response.client_id).filter(|id| !id.is_nil())
    }

    /// The ClientBaseId an installed add-on of `base` carries: in the state, else in the
    /// keyring (a keyring failure here only means this source is not available).
    fn base_id_of_addons(&self, state: &State, base: &str) -> Option<Uuid> {
        let addons: Vec<&Manifest> = self
            .catalog
            .values()
            .filter(|m| m.addon_of.as_deref() == Some(base))
            .collect();
        addons
            .iter()
            .filter_map(|m| state.products.get(&m.id))
            .map(|p| p.client_base_id)
            .chain(addons.iter().filter_map(|m| {
                let kept = self.secrets.get_client_ids(&m.id).ok()??;
                Some(Uuid::from_bytes(kept.base))
            }))
            .find(|id| !id.is_nil())
    }
}
