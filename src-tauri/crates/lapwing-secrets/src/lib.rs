//! Lapwing's per-product secrets: the license key (16 bytes), the server key it was entered for
//! (32 bytes), a new license key not accepted yet (16 bytes), the install nonce (16 bytes), the
//! evaluation start (UNIX seconds) and the client ids (2 × 16 bytes), kept in the OS keyring
//! (LAP profile §2 and §8, draft §3.1).
//!
//! The engine sees only [`SecretStore`]. Three stores implement it:
//!
//! - [`KeyringStore`]: the OS keyring through the `keyring` crate (Secret Service on Linux,
//!   the login keychain on macOS, Credential Manager on Windows). Service `lapwing`, account
//!   `<product-id>:<item>`.
//! - [`InsecureFileStore`]: one JSON file, only when the person asks for it
//!   (`--insecure-file-store`); its docs say what that costs.
//! - [`MemoryStore`]: for tests, and told to fail on demand (a keyring locked mid-run).
//!
//! No value ever appears in an error, a log line or a `Debug` output; values come back as
//! [`Secret`]s, zeroized on drop and redacted in `Debug`. Product ids are checked against the
//! manifest slug before any store is touched.
//!
//! Calls into [`KeyringStore`] block (D-Bus round trips, and on a desktop possibly an unlock
//! prompt the person has to answer): call them from a blocking thread, not an async task.
#![forbid(unsafe_code)]

mod error;
mod file;
mod keyring_os;
mod keyring_store;
mod memory;
#[cfg(all(feature = "test-util", target_os = "linux"))]
pub mod test_util;

pub use error::SecretError;
pub use file::InsecureFileStore;
pub use keyring_store::KeyringStore;
pub use memory::{MemoryStore, SimulatedFailure};

use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

/// A secret value: zeroized when dropped, `[redacted]` in `Debug`, the bytes through `Deref`.
/// The engine can derive `Debug` on anything holding one without leaking it. (`==` is not
/// constant-time: fine for the local comparisons Lapwing makes, such as "did the key change".)
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T: Zeroize>(Zeroizing<T>);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(Zeroizing::new(value))
    }
}

impl<T: Zeroize> std::ops::Deref for Secret<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The keyring "service" all of Lapwing's items carry: the Secret Service attribute `service`,
/// the keychain item's service, and the end of the Credential Manager target name (the
/// keyring crate names a generic credential `<account>.<service>`:
/// `<product-id>:<item>.lapwing`).
pub const SERVICE: &str = "lapwing";

/// One secret of a product. The names are stable: they are part of the keyring account
/// (`<product-id>:<name>`) and the insecure file's keys, so renaming one loses stored secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SecretItem {
    /// The 16 bytes of the license key (profile §4), as decoded; absent for an evaluation.
    LicenseKey,
    /// The server Ed25519 public key the license key was entered for: the key is sent to
    /// that server only, so a replaced manifest cannot redirect it unconfirmed. Absent for a
    /// key stored before keys were bound (bound at its next activation).
    LicenseKeyServer,
    /// A license key entered while another key holds a working grant: kept apart and tried
    /// until a server accepts it (then it becomes [`SecretItem::LicenseKey`]) or the person
    /// drops it, so a key the server ignores never replaces one that works.
    PendingLicenseKey,
    /// 16 CSPRNG bytes made once per product installation (profile §2).
    InstallNonce,
    /// When the evaluation started: UNIX seconds, 8 bytes little-endian (profile §8).
    EvaluationStart,
    /// The ClientBaseId then the ClientAddOnId the product sends (draft §3.1), 16 bytes each.
    /// Not secret, but kept here because it must outlive the state file: the ids are "static
    /// for the installation time", and a server binds seats and correlates add-ons by them.
    ClientIds,
    /// How many answers this installation has accepted for the product (profile 1.1, §9
    /// Generation): u32 little-endian. Kept here as well as in the state file, so a deleted
    /// state file does not look like a restored snapshot to the server.
    Generation,
    /// Written, read back and deleted by [`probe`]; never kept.
    Probe,
}

impl SecretItem {
    /// The items a product keeps (what uninstalling forgets); [`SecretItem::Probe`] is not one.
    pub const PRODUCT_ITEMS: [SecretItem; 7] = [
        SecretItem::LicenseKey,
        SecretItem::LicenseKeyServer,
        SecretItem::PendingLicenseKey,
        SecretItem::InstallNonce,
        SecretItem::EvaluationStart,
        SecretItem::ClientIds,
        SecretItem::Generation,
    ];

    /// The stable name (see the type's docs).
    pub const fn name(self) -> &'static str {
        match self {
            SecretItem::LicenseKey => "license-key",
            SecretItem::LicenseKeyServer => "license-key-server",
            SecretItem::PendingLicenseKey => "pending-license-key",
            SecretItem::InstallNonce => "install-nonce",
            SecretItem::EvaluationStart => "evaluation-start",
            SecretItem::ClientIds => "client-ids",
            SecretItem::Generation => "generation",
            SecretItem::Probe => "probe",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            SecretItem::LicenseKey,
            SecretItem::LicenseKeyServer,
            SecretItem::PendingLicenseKey,
            SecretItem::InstallNonce,
            SecretItem::EvaluationStart,
            SecretItem::ClientIds,
            SecretItem::Generation,
            SecretItem::Probe,
        ]
        .into_iter()
        .find(|item| item.name() == name)
    }

    /// The exact length a value of this item has. Every store refuses other lengths on `set`,
    /// and the typed getters report a stored value of another length as corrupt, so a
    /// truncated key never reaches a seed.
    pub const fn value_len(self) -> usize {
        match self {
            SecretItem::LicenseKey
            | SecretItem::PendingLicenseKey
            | SecretItem::InstallNonce
            | SecretItem::Probe => 16,
            SecretItem::EvaluationStart => 8,
            SecretItem::Generation => 4,
            SecretItem::ClientIds | SecretItem::LicenseKeyServer => 32,
        }
    }
}

impl std::fmt::Display for SecretItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which store holds the secrets and where, for `lapctl doctor` and the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreDescription {
    /// "Secret Service", "macOS Keychain", "Windows Credential Manager", "insecure file",
    /// "memory".
    pub backend: String,
    /// Who serves it, when that can be told: "gnome-keyring", "KeePassXC", or a note such as
    /// "none on the session bus".
    pub provider: Option<String>,
    /// The bus address or the file (with `~` for the home directory).
    pub location: Option<String>,
    /// False for the insecure file store and the memory store.
    pub protected: bool,
}

impl std::fmt::Display for StoreDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.backend)?;
        if let Some(provider) = &self.provider {
            write!(f, " ({provider})")?;
        }
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

/// Where a product's secrets live. Implementations check the product id and the value length
/// before touching anything.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The stored value, or `None` when the item was never set (or was deleted).
    fn get(
        &self,
        product_id: &str,
        item: SecretItem,
    ) -> Result<Option<Secret<Vec<u8>>>, SecretError>;

    /// Stores `value`, replacing any earlier one. `value` must be [`SecretItem::value_len`]
    /// bytes long.
    fn set(&self, product_id: &str, item: SecretItem, value: &[u8]) -> Result<(), SecretError>;

    /// Forgets the item. Deleting an item that is not there is not an error.
    fn delete(&self, product_id: &str, item: SecretItem) -> Result<(), SecretError>;

    /// The backend and where it is. May ask the platform (a D-Bus round trip), never fails:
    /// what cannot be found out is said in `provider`.
    fn describe(&self) -> StoreDescription;

    /// Forgets every item of the product (uninstalling it). Stops at the first error, so a
    /// locked keyring is reported rather than half-ignored.
    fn forget_product(&self, product_id: &str) -> Result<(), SecretError> {
        for item in SecretItem::PRODUCT_ITEMS {
            self.delete(product_id, item)?;
        }
        Ok(())
    }

    fn get_license_key(&self, product_id: &str) -> Result<Option<Secret<[u8; 16]>>, SecretError> {
        get_array(self, product_id, SecretItem::LicenseKey)
    }

    fn set_license_key(&self, product_id: &str, key: &[u8; 16]) -> Result<(), SecretError> {
        self.set(product_id, SecretItem::LicenseKey, key)
    }

    /// The key entered but not yet accepted (see [`SecretItem::PendingLicenseKey`]).
    fn get_pending_license_key(
        &self,
        product_id: &str,
    ) -> Result<Option<Secret<[u8; 16]>>, SecretError> {
        get_array(self, product_id, SecretItem::PendingLicenseKey)
    }

    fn set_pending_license_key(&self, product_id: &str, key: &[u8; 16]) -> Result<(), SecretError> {
        self.set(product_id, SecretItem::PendingLicenseKey, key)
    }

    /// The server Ed25519 public key the stored license key is bound to.
    fn get_license_key_server(
        &self,
        product_id: &str,
    ) -> Result<Option<Secret<[u8; 32]>>, SecretError> {
        get_array(self, product_id, SecretItem::LicenseKeyServer)
    }

    fn set_license_key_server(
        &self,
        product_id: &str,
        server_ed25519: &[u8; 32],
    ) -> Result<(), SecretError> {
        self.set(product_id, SecretItem::LicenseKeyServer, server_ed25519)
    }

    fn get_install_nonce(&self, product_id: &str) -> Result<Option<Secret<[u8; 16]>>, SecretError> {
        get_array(self, product_id, SecretItem::InstallNonce)
    }

    fn set_install_nonce(&self, product_id: &str, nonce: &[u8; 16]) -> Result<(), SecretError> {
        self.set(product_id, SecretItem::InstallNonce, nonce)
    }

    /// The evaluation start in UNIX seconds.
    fn get_evaluation_start(&self, product_id: &str) -> Result<Option<u64>, SecretError> {
        Ok(
            get_array::<8, _>(self, product_id, SecretItem::EvaluationStart)?
                .map(|bytes| u64::from_le_bytes(*bytes)),
        )
    }

    fn set_evaluation_start(&self, product_id: &str, unix_seconds: u64) -> Result<(), SecretError> {
        self.set(
            product_id,
            SecretItem::EvaluationStart,
            &unix_seconds.to_le_bytes(),
        )
    }

    /// How many answers were accepted for the product (see [`SecretItem::Generation`]).
    fn get_generation(&self, product_id: &str) -> Result<Option<u32>, SecretError> {
        Ok(get_array::<4, _>(self, product_id, SecretItem::Generation)?
            .map(|bytes| u32::from_le_bytes(*bytes)))
    }

    fn set_generation(&self, product_id: &str, generation: u32) -> Result<(), SecretError> {
        self.set(
            product_id,
            SecretItem::Generation,
            &generation.to_le_bytes(),
        )
    }

    /// The client ids the product was provisioned with.
    fn get_client_ids(&self, product_id: &str) -> Result<Option<ClientIds>, SecretError> {
        Ok(
            get_array::<32, _>(self, product_id, SecretItem::ClientIds)?.map(|bytes| {
                let mut ids = ClientIds {
                    base: [0; 16],
                    addon: [0; 16],
                };
                ids.base.copy_from_slice(&bytes[..16]);
                ids.addon.copy_from_slice(&bytes[16..]);
                ids
            }),
        )
    }

    fn set_client_ids(&self, product_id: &str, ids: &ClientIds) -> Result<(), SecretError> {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(&ids.base);
        bytes[16..].copy_from_slice(&ids.addon);
        self.set(product_id, SecretItem::ClientIds, &bytes)
    }
}

/// A product's client ids as kept in the store: the ClientBaseId and the ClientAddOnId (all
/// zero for a base product), each a UUID's 16 bytes in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIds {
    pub base: [u8; 16],
    pub addon: [u8; 16],
}

fn get_array<const N: usize, S: SecretStore + ?Sized>(
    store: &S,
    product_id: &str,
    item: SecretItem,
) -> Result<Option<Secret<[u8; N]>>, SecretError> {
    let Some(value) = store.get(product_id, item)? else {
        return Ok(None);
    };
    let mut array = Secret::new([0u8; N]);
    if value.len() != N {
        return Err(SecretError::Corrupt {
            what: format!(
                "the {item} of {product_id} in the secret store holds {} bytes, not {N}: \
                 it was not written by Lapwing; remove it (`lapctl uninstall {product_id}` \
                 forgets the product's secrets) and install or set it again",
                value.len()
            ),
        });
    }
    array.0.copy_from_slice(&value);
    Ok(Some(array))
}

/// A cheap round trip through `store` (write, read back, delete a [`SecretItem::Probe`] item
/// with a random value), for `lapctl doctor`. Errors are the store's own, which name the fix.
pub fn probe(store: &dyn SecretStore) -> Result<(), SecretError> {
    const PROBE_PRODUCT: &str = "lapwing";
    let mut value = Zeroizing::new([0u8; 16]);
    getrandom::fill(value.as_mut()).map_err(|e| SecretError::Randomness(e.to_string()))?;
    store.set(PROBE_PRODUCT, SecretItem::Probe, value.as_ref())?;
    let read = store.get(PROBE_PRODUCT, SecretItem::Probe);
    // Delete before judging the read, so a failed probe leaves nothing behind.
    let deleted = store.delete(PROBE_PRODUCT, SecretItem::Probe);
    let read = read?;
    deleted?;
    if read.as_ref().map(|read| read.as_slice()) != Some(value.as_slice()) {
        return Err(SecretError::Corrupt {
            what: format!(
                "{}: a value written was not read back the same: the store is not keeping \
                 secrets; restart it (log out and in) or use another store",
                store.describe()
            ),
        });
    }
    if store.get(PROBE_PRODUCT, SecretItem::Probe)?.is_some() {
        return Err(SecretError::Corrupt {
            what: format!(
                "{}: a deleted probe item is still there: the store does not forget secrets, \
                 so uninstalling a product would leave its key behind",
                store.describe()
            ),
        });
    }
    Ok(())
}

/// Checks a product id against the manifest slug `[a-z0-9][a-z0-9-]{0,63}`.
pub fn check_product_id(id: &str) -> Result<(), SecretError> {
    let bytes = id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if valid {
        Ok(())
    } else {
        // Cap what is echoed: the id came from a file or a command line of any size.
        let shown: String = id.chars().take(80).collect();
        Err(SecretError::InvalidProductId { id: shown })
    }
}

/// The checks every store makes before a `set`.
pub(crate) fn check_value(item: SecretItem, value: &[u8]) -> Result<(), SecretError> {
    if value.len() == item.value_len() {
        Ok(())
    } else {
        Err(SecretError::InvalidValue {
            item: item.name(),
            expected: item.value_len(),
            actual: value.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_follow_the_manifest_slug() {
        for good in ["a", "0", "acme-studio", "a-", "x9-y9", &"a".repeat(64)] {
            assert!(check_product_id(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            "-acme",
            "Acme",
            "acme studio",
            "acme:license-key",
            "acme/x",
            "acme\0",
            "acmé",
            "acme_studio",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    check_product_id(bad),
                    Err(SecretError::InvalidProductId { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn item_names_are_stable_and_round_trip() {
        let names: Vec<_> = SecretItem::PRODUCT_ITEMS.iter().map(|i| i.name()).collect();
        assert_eq!(
            names,
            [
                "license-key",
                "license-key-server",
                "pending-license-key",
                "install-nonce",
                "evaluation-start",
                "client-ids",
                "generation"
            ]
        );
        for item in SecretItem::PRODUCT_ITEMS
            .into_iter()
            .chain([SecretItem::Probe])
        {
            assert_eq!(SecretItem::from_name(item.name()), Some(item));
        }
        assert_eq!(SecretItem::from_name("license_key"), None);
    }

    #[test]
    fn client_ids_round_trip_in_wire_order_and_are_forgotten_with_the_product() {
        let store = MemoryStore::new();
        let ids = ClientIds {
            base: [1; 16],
            addon: [2; 16],
        };
        store.set_client_ids("acme-export", &ids).expect("set");
        assert_eq!(store.get_client_ids("acme-export").expect("get"), Some(ids));
        let raw = store
            .get("acme-export", SecretItem::ClientIds)
            .expect("get")
            .expect("stored");
        assert_eq!(&raw[..16], &[1; 16], "the base id comes first");
        store.forget_product("acme-export").expect("forget");
        assert_eq!(store.get_client_ids("acme-export").expect("get"), None);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = Secret::new(b"hunter2-hunter2!".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret([redacted]))");
        assert_eq!(secret.as_slice(), b"hunter2-hunter2!");
    }

    #[test]
    fn description_reads_as_one_line() {
        let description = StoreDescription {
            backend: "Secret Service".into(),
            provider: Some("gnome-keyring".into()),
            location: Some("unix:path=/run/user/1000/bus".into()),
            protected: true,
        };
        assert_eq!(
            description.to_string(),
            "Secret Service (gnome-keyring) at unix:path=/run/user/1000/bus"
        );
    }
}
