//! An in-memory store for the engine's tests, which can be told to fail the way a real
//! keyring does (locked mid-run, service gone) so that those paths are tested too.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{
    Secret, SecretError, SecretItem, SecretStore, StoreDescription, check_product_id, check_value,
};

/// How a [`MemoryStore`] fails while a failure is set: each gives the error the real keyring
/// gives in that situation, with the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimulatedFailure {
    /// [`SecretError::Locked`].
    Locked,
    /// [`SecretError::NoService`].
    NoService,
    /// [`SecretError::PermissionDenied`].
    PermissionDenied,
}

impl SimulatedFailure {
    fn error(self) -> SecretError {
        match self {
            SimulatedFailure::Locked => SecretError::Locked {
                detail: "simulated: the unlock prompt was dismissed".into(),
            },
            SimulatedFailure::NoService => SecretError::NoService {
                address: Some("simulated".into()),
            },
            SimulatedFailure::PermissionDenied => SecretError::PermissionDenied {
                detail: "simulated".into(),
            },
        }
    }
}

/// Secrets in this process's memory, gone when it is dropped. For tests only: nothing
/// persists.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    items: BTreeMap<(String, SecretItem), Secret<Vec<u8>>>,
    failure: Option<SimulatedFailure>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call fails with [`SecretError::Locked`] and nothing changes.
    pub fn set_locked(&self, locked: bool) {
        self.set_failure(locked.then_some(SimulatedFailure::Locked));
    }

    /// While `Some`, every call (`get`, `set`, `delete`) fails that way and nothing changes.
    pub fn set_failure(&self, failure: Option<SimulatedFailure>) {
        self.state().failure = failure;
    }

    /// The (product id, item) pairs stored, in order; no values. For asserting what the
    /// engine kept or forgot.
    pub fn stored(&self) -> Vec<(String, SecretItem)> {
        self.state().items.keys().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the map whole (every update is one
        // insert or remove), so the poisoned state is still good to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checked(&self, product_id: &str) -> Result<MutexGuard<'_, State>, SecretError> {
        check_product_id(product_id)?;
        let state = self.state();
        match state.failure {
            Some(failure) => Err(failure.error()),
            None => Ok(state),
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        // The count and the failure only: a value must never be printed.
        f.debug_struct("MemoryStore")
            .field("items", &state.items.len())
            .field("failure", &state.failure)
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn get(
        &self,
        product_id: &str,
        item: SecretItem,
    ) -> Result<Option<Secret<Vec<u8>>>, SecretError> {
        let state = self.checked(product_id)?;
        Ok(state.items.get(&(product_id.to_owned(), item)).cloned())
    }

    fn set(&self, product_id: &str, item: SecretItem, value: &[u8]) -> Result<(), SecretError> {
        check_value(item, value)?;
        let mut state = self.checked(product_id)?;
        state
            .items
            .insert((product_id.to_owned(), item), Secret::new(value.to_vec()));
        Ok(())
    }

    fn delete(&self, product_id: &str, item: SecretItem) -> Result<(), SecretError> {
        let mut state = self.checked(product_id)?;
        state.items.remove(&(product_id.to_owned(), item));
        Ok(())
    }

    fn describe(&self) -> StoreDescription {
        StoreDescription {
            backend: "memory".into(),
            provider: Some("tests only: nothing persists".into()),
            location: None,
            protected: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe;

    const KEY: [u8; 16] = *b"KEY-0123456789ab";

    #[test]
    fn round_trip_each_item() {
        let store = MemoryStore::new();
        for item in SecretItem::PRODUCT_ITEMS {
            assert_eq!(store.get("acme", item).expect("get"), None);
            let value = vec![0x5a; item.value_len()];
            store.set("acme", item, &value).expect("set");
            assert_eq!(
                store.get("acme", item).expect("get").as_deref(),
                Some(&value)
            );
            store.delete("acme", item).expect("delete");
            assert_eq!(store.get("acme", item).expect("get"), None);
            store
                .delete("acme", item)
                .expect("deleting a missing item is not an error");
        }
    }

    #[test]
    fn typed_helpers_round_trip() {
        let store = MemoryStore::new();
        store.set_license_key("acme", &KEY).expect("set");
        store.set_install_nonce("acme", &[7; 16]).expect("set");
        store
            .set_evaluation_start("acme", 1_795_000_000)
            .expect("set");
        assert_eq!(
            *store.get_license_key("acme").expect("get").expect("some"),
            KEY
        );
        assert_eq!(
            *store.get_install_nonce("acme").expect("get").expect("some"),
            [7; 16]
        );
        assert_eq!(
            store.get_evaluation_start("acme").expect("get"),
            Some(1_795_000_000)
        );
        // The evaluation start is 8 bytes little-endian, as the profile's integers are.
        assert_eq!(
            store
                .get("acme", SecretItem::EvaluationStart)
                .expect("get")
                .as_deref(),
            Some(&1_795_000_000u64.to_le_bytes().to_vec())
        );
        store.forget_product("acme").expect("forget");
        assert!(store.stored().is_empty());
    }

    #[test]
    fn products_do_not_see_each_other() {
        let store = MemoryStore::new();
        store.set_license_key("acme", &KEY).expect("set");
        assert_eq!(store.get_license_key("other").expect("get"), None);
        store.forget_product("other").expect("forget");
        assert_eq!(
            store.stored(),
            [("acme".to_owned(), SecretItem::LicenseKey)]
        );
    }

    #[test]
    fn wrong_lengths_are_refused_and_never_stored() {
        let store = MemoryStore::new();
        let error = store
            .set("acme", SecretItem::LicenseKey, b"short")
            .expect_err("5 bytes is not a key");
        assert!(matches!(
            error,
            SecretError::InvalidValue {
                expected: 16,
                actual: 5,
                ..
            }
        ));
        assert!(store.stored().is_empty());
    }

    #[test]
    fn invalid_product_ids_are_refused_everywhere() {
        let store = MemoryStore::new();
        for id in ["", "Acme", "acme:license-key", "a b"] {
            assert!(matches!(
                store.get(id, SecretItem::LicenseKey),
                Err(SecretError::InvalidProductId { .. })
            ));
            assert!(matches!(
                store.set(id, SecretItem::LicenseKey, &KEY),
                Err(SecretError::InvalidProductId { .. })
            ));
            assert!(matches!(
                store.delete(id, SecretItem::LicenseKey),
                Err(SecretError::InvalidProductId { .. })
            ));
        }
        assert!(store.stored().is_empty());
    }

    #[test]
    fn a_locked_store_fails_every_call_and_keeps_its_items() {
        let store = MemoryStore::new();
        store.set_license_key("acme", &KEY).expect("set");
        store.set_locked(true);
        assert!(matches!(
            store.get("acme", SecretItem::LicenseKey),
            Err(SecretError::Locked { .. })
        ));
        assert!(matches!(
            store.set_install_nonce("acme", &[1; 16]),
            Err(SecretError::Locked { .. })
        ));
        assert!(matches!(
            store.delete("acme", SecretItem::LicenseKey),
            Err(SecretError::Locked { .. })
        ));
        assert!(matches!(probe(&store), Err(SecretError::Locked { .. })));
        store.set_locked(false);
        assert_eq!(
            *store.get_license_key("acme").expect("get").expect("kept"),
            KEY
        );
        assert_eq!(store.stored().len(), 1, "the locked calls changed nothing");
        store.set_failure(Some(SimulatedFailure::NoService));
        assert!(matches!(
            store.get("acme", SecretItem::LicenseKey),
            Err(SecretError::NoService { .. })
        ));
        store.set_failure(None);
        probe(&store).expect("probe");
        assert_eq!(store.stored().len(), 1, "the probe left nothing behind");
    }

    #[test]
    fn values_never_show_in_debug() {
        let store = MemoryStore::new();
        store.set_license_key("acme", &KEY).expect("set");
        let debug = format!("{store:?}");
        assert_eq!(debug, "MemoryStore { items: 1, failure: None }");
        let value = store.get("acme", SecretItem::LicenseKey).expect("get");
        assert_eq!(format!("{value:?}"), "Some(Secret([redacted]))");
        let key = store.get_license_key("acme").expect("get");
        assert_eq!(format!("{key:?}"), "Some(Secret([redacted]))");
    }
}
