//! Which products were last answered for other hardware (profile 1.1, §9 moving): the
//! MachineHash of each product's last accepted answer next to this machine's, as
//! `lapctl machine` shows them. Prefixes only: enough to tell two apart.

use serde::Serialize;

use crate::engine::{Engine, EngineError};

/// How many hex digits of a MachineHash are shown.
pub const HASH_PREFIX_LEN: usize = 12;

/// A product whose last accepted answer was for another MachineHash than this machine's:
/// its next request sends PreviousMachineHash, so the server can move the seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HardwareMove {
    pub id: String,
    pub name: String,
    /// The MachineHash of the last accepted answer (hex prefix).
    pub previous: String,
    /// This machine's MachineHash for the product's server (hex prefix).
    pub current: String,
}

fn prefix(hex: &str) -> String {
    hex.chars().take(HASH_PREFIX_LEN).collect()
}

impl Engine {
    /// The products whose last accepted answer was for other hardware than
    /// `anchor_digest` (this machine's anchor, as the caller read it).
    pub fn hardware_moves(
        &self,
        anchor_digest: &[u8; 32],
    ) -> Result<Vec<HardwareMove>, EngineError> {
        let catalog = self.catalog();
        let lock = self.state_store().lock()?;
        let (state, _) = self.state_store().load(&lock)?;
        drop(lock);
        Ok(catalog
            .products
            .values()
            .filter_map(|manifest| {
                let previous = state.products.get(&manifest.id)?.machine_hash.as_deref()?;
                let current = hex::encode(lap_proto::machine_hash(
                    manifest.server_keys.ed25519_bytes(),
                    anchor_digest,
                ));
                (previous != current).then(|| HardwareMove {
                    id: manifest.id.clone(),
                    name: manifest.name.clone(),
                    previous: prefix(previous),
                    current: prefix(&current),
                })
            })
            .collect())
    }
}
