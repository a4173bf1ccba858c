//! The OS keyring through the `keyring` crate: the Secret Service on Linux, the login keychain
//! on macOS, Credential Manager on Windows.

use crate::keyring_os::KeyringOs;
use crate::{
    Secret, SecretError, SecretItem, SecretStore, StoreDescription, check_product_id, check_value,
};

/// Secrets in the OS keyring, each an item with service [`SERVICE`](crate::SERVICE) and account
/// `<product-id>:<item>` (on Linux the Secret Service attributes `service` and `username`, in the
/// default collection, normally the "login" keyring).
///
/// Every call connects anew: on Linux a D-Bus connection and an encrypted session per call.
/// That keeps no stale connection across a keyring restart or a session change, at the cost
/// measured in the crate's tests (a few milliseconds per call in release builds).
#[derive(Debug, Clone)]
pub struct KeyringStore {
    // Constructed only by `new`, which refuses platforms without a backend.
    _private: (),
}

impl KeyringStore {
    /// The OS keyring of this platform. Nothing is contacted yet (see [`crate::probe`]).
    ///
    /// Fails with [`SecretError::Unsupported`] where this build has no backend: the keyring
    /// crate would fall back to an in-memory mock there, and secrets would vanish on exit.
    pub fn new() -> Result<Self, SecretError> {
        if KeyringOs::CURRENT.has_backend() {
            Ok(Self { _private: () })
        } else {
            Err(SecretError::Unsupported)
        }
    }
}

fn account(product_id: &str, item: SecretItem) -> String {
    // Product ids never contain ':', so the account names exactly one (product, item).
    format!("{product_id}:{}", item.name())
}

impl SecretStore for KeyringStore {
    fn get(
        &self,
        product_id: &str,
        item: SecretItem,
    ) -> Result<Option<Secret<Vec<u8>>>, SecretError> {
        check_product_id(product_id)?;
        let account = account(product_id, item);
        match platform::entry(&account)?.get_secret() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(map_error(error, &account)),
        }
    }

    fn set(&self, product_id: &str, item: SecretItem, value: &[u8]) -> Result<(), SecretError> {
        check_product_id(product_id)?;
        check_value(item, value)?;
        let account = account(product_id, item);
        platform::entry(&account)?
            .set_secret(value)
            .map_err(|error| map_error(error, &account))
    }

    fn delete(&self, product_id: &str, item: SecretItem) -> Result<(), SecretError> {
        check_product_id(product_id)?;
        let account = account(product_id, item);
        let entry = platform::entry(&account)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            // Duplicates (made by another tool, or by two writers racing to create the item):
            // forgetting means forgetting all of them.
            Err(keyring::Error::Ambiguous(_)) => platform::delete_all(&entry, &account),
            Err(error) => Err(map_error(error, &account)),
        }
    }

    fn describe(&self) -> StoreDescription {
        platform::describe()
    }
}

/// Maps the keyring crate's error to ours. The platform's boxed error is inspected first
/// (locked, no bus, no service …); what it cannot place keeps the keyring's own message.
/// No arm copies a value: `BadEncoding` carries the bytes and is reduced to a sentence.
fn map_error(error: keyring::Error, account: &str) -> SecretError {
    match error {
        keyring::Error::PlatformFailure(inner) => platform::classify(inner.as_ref())
            .unwrap_or_else(|| SecretError::Backend {
                detail: inner.to_string(),
            }),
        keyring::Error::NoStorageAccess(inner) => platform::classify(inner.as_ref())
            .unwrap_or_else(|| SecretError::Unavailable {
                detail: inner.to_string(),
            }),
        keyring::Error::Ambiguous(found) => SecretError::Corrupt {
            what: format!(
                "{} keyring items have service \"{}\" and account \"{account}\", where Lapwing \
                 keeps one: delete the extra ones (Seahorse \"Passwords and Keys\", or \
                 `lapctl uninstall` and install again)",
                found.len(),
                crate::SERVICE
            ),
        },
        keyring::Error::BadEncoding(_) => SecretError::Backend {
            detail: "the keyring returned text where bytes were expected".into(),
        },
        keyring::Error::TooLong(attribute, limit) => SecretError::Backend {
            detail: format!("{attribute} exceeds the keyring's limit of {limit}"),
        },
        keyring::Error::Invalid(attribute, reason) => SecretError::Backend {
            detail: format!("{attribute}: {reason}"),
        },
        // `NoEntry` is handled by every caller; anything newer keeps its own message.
        other => SecretError::Backend {
            detail: other.to_string(),
        },
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use keyring::secret_service::SsCredential;
    use zbus::DBusError as _;

    use crate::error::session_bus_address;
    use crate::keyring_os::KeyringOs;
    use crate::{SecretError, StoreDescription};

    const SECRETS_NAME: &str = "org.freedesktop.secrets";

    pub(super) fn entry(account: &str) -> Result<keyring::Entry, SecretError> {
        // Built directly rather than through `Entry::new`, so that a default credential
        // builder installed elsewhere in the process (the keyring crate keeps one globally)
        // can never redirect Lapwing's secrets into a mock.
        let credential = SsCredential::new_with_target(None, crate::SERVICE, account)
            .map_err(|e| super::map_error(e, account))?;
        Ok(keyring::Entry::new_with_credential(Box::new(credential)))
    }

    pub(super) fn delete_all(entry: &keyring::Entry, account: &str) -> Result<(), SecretError> {
        match entry.get_credential().downcast_ref::<SsCredential>() {
            Some(credential) => credential
                .delete_all_passwords()
                .map_err(|e| super::map_error(e, account)),
            None => Err(SecretError::Backend {
                detail: "the keyring entry is not a Secret Service item".into(),
            }),
        }
    }

    /// Places the Secret Service client's error. `None`: not one of its errors (the keyring
    /// crate then keeps its message).
    pub(super) fn classify(
        inner: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<SecretError> {
        use secret_service::Error as Ss;
        let error = inner.downcast_ref::<Ss>()?;
        Some(match error {
            Ss::Unavailable => SecretError::NoSessionBus {
                address: session_bus_address(),
            },
            Ss::Locked => SecretError::Locked {
                detail: "the Secret Service reports the keyring locked".into(),
            },
            Ss::Prompt => SecretError::Locked {
                detail: "the unlock prompt was dismissed or could not be shown".into(),
            },
            Ss::NoResult => SecretError::NoDefaultCollection,
            Ss::Zbus(error) => classify_zbus(error),
            Ss::ZbusFdo(error) => by_name(
                error.name().as_str(),
                error.description().unwrap_or_default(),
            ),
            Ss::Crypto(what) => SecretError::Backend {
                detail: format!("the encrypted session with the Secret Service failed: {what}"),
            },
            other => SecretError::Backend {
                detail: other.to_string(),
            },
        })
    }

    fn classify_zbus(error: &zbus::Error) -> SecretError {
        match error {
            zbus::Error::MethodError(name, description, _) => {
                by_name(name.as_str(), description.as_deref().unwrap_or_default())
            }
            zbus::Error::FDO(error) => by_name(
                error.name().as_str(),
                error.description().unwrap_or_default(),
            ),
            zbus::Error::InputOutput(io) => match io.kind() {
                std::io::ErrorKind::PermissionDenied => SecretError::PermissionDenied {
                    detail: format!("the session bus socket: {io}"),
                },
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    SecretError::NoSessionBus {
                        address: session_bus_address(),
                    }
                }
                _ => SecretError::Backend {
                    detail: format!("the session bus: {io}"),
                },
            },
            other => SecretError::Backend {
                detail: other.to_string(),
            },
        }
    }

    /// By the D-Bus error name, which is what providers agree on.
    fn by_name(name: &str, description: &str) -> SecretError {
        let detail = if description.is_empty() {
            name.to_owned()
        } else {
            format!("{name}: {description}")
        };
        match name {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => SecretError::NoService {
                address: session_bus_address(),
            },
            // The bus knew a provider but could not start it.
            n if n.starts_with("org.freedesktop.DBus.Error.Spawn.") => SecretError::NoService {
                address: session_bus_address(),
            },
            "org.freedesktop.DBus.Error.AccessDenied" | "org.freedesktop.DBus.Error.AuthFailed" => {
                SecretError::PermissionDenied { detail }
            }
            "org.freedesktop.Secret.Error.IsLocked" => SecretError::Locked { detail },
            "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
                SecretError::Backend {
                    detail: format!("the Secret Service did not answer in time ({detail})"),
                }
            }
            _ => SecretError::Backend { detail },
        }
    }

    /// Which program owns `org.freedesktop.secrets` on the session bus, read from /proc.
    pub(super) fn describe() -> StoreDescription {
        let location = session_bus_address();
        let provider = match find_provider() {
            Ok(provider) => provider,
            Err(error) => format!("cannot ask the session bus: {error}"),
        };
        StoreDescription {
            backend: KeyringOs::CURRENT.backend_name().into(),
            provider: Some(provider),
            location,
            protected: true,
        }
    }

    fn find_provider() -> zbus::Result<String> {
        let connection = zbus::blocking::Connection::session()?;
        let bus = zbus::blocking::fdo::DBusProxy::new(&connection)?;
        let name = zbus::names::BusName::try_from(SECRETS_NAME)?;
        if !bus.name_has_owner(name.clone())? {
            let activatable = bus
                .list_activatable_names()?
                .iter()
                .any(|n| n.as_str() == SECRETS_NAME);
            return Ok(if activatable {
                "not running; the bus starts it on first use".into()
            } else {
                "none on the session bus".into()
            });
        }
        let pid = bus.get_connection_unix_process_id(name)?;
        Ok(program_name(pid).map_or_else(|| format!("process {pid}"), |p| friendly(&p)))
    }

    fn program_name(pid: u32) -> Option<String> {
        // argv[0] rather than `comm`, which the kernel cuts to 15 bytes ("gnome-keyring-d").
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv0 = cmdline.split(|b| *b == 0).next()?;
        let name = std::path::Path::new(std::str::from_utf8(argv0).ok()?)
            .file_name()?
            .to_str()?
            .to_owned();
        (!name.is_empty()).then_some(name)
    }

    fn friendly(program: &str) -> String {
        match program {
            "gnome-keyring-daemon" | "gnome-keyring-d" => "gnome-keyring".into(),
            "keepassxc" | "KeePassXC" => "KeePassXC".into(),
            p if p.starts_with("kwalletd") || p == "ksecretd" => "KWallet".into(),
            p => p.to_owned(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn dbus_error_names_map_to_causes() {
            assert!(matches!(
                by_name("org.freedesktop.DBus.Error.ServiceUnknown", "x"),
                SecretError::NoService { .. }
            ));
            assert!(matches!(
                by_name("org.freedesktop.DBus.Error.Spawn.ChildExited", "x"),
                SecretError::NoService { .. }
            ));
            assert!(matches!(
                by_name("org.freedesktop.DBus.Error.AccessDenied", "x"),
                SecretError::PermissionDenied { .. }
            ));
            assert!(matches!(
                by_name("org.freedesktop.Secret.Error.IsLocked", ""),
                SecretError::Locked { .. }
            ));
            assert!(matches!(
                by_name("org.example.Odd", "x"),
                SecretError::Backend { .. }
            ));
        }

        #[test]
        fn secret_service_errors_are_placed_through_the_keyring_box() {
            // The keyring crate boxes secret-service's error; if its version ever differs from
            // ours the downcast fails and everything would read as `Backend`.
            let boxed: Box<dyn std::error::Error + Send + Sync> =
                Box::new(secret_service::Error::Prompt);
            assert!(matches!(
                classify(boxed.as_ref()),
                Some(SecretError::Locked { .. })
            ));
            let boxed: Box<dyn std::error::Error + Send + Sync> =
                Box::new(secret_service::Error::Unavailable);
            assert!(matches!(
                classify(boxed.as_ref()),
                Some(SecretError::NoSessionBus { .. })
            ));
        }

        #[test]
        fn provider_names_read_as_products() {
            assert_eq!(friendly("gnome-keyring-daemon"), "gnome-keyring");
            assert_eq!(friendly("kwalletd6"), "KWallet");
            assert_eq!(friendly("oddsecretd"), "oddsecretd");
        }
    }
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
mod platform {
    use crate::keyring_os::KeyringOs;
    use crate::{SecretError, StoreDescription};

    pub(super) fn entry(account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(crate::SERVICE, account).map_err(|e| super::map_error(e, account))
    }

    pub(super) fn delete_all(_entry: &keyring::Entry, account: &str) -> Result<(), SecretError> {
        // Keychain and Credential Manager items are unique per (service, account).
        Err(SecretError::Backend {
            detail: format!("several keyring items for {account}"),
        })
    }

    pub(super) fn classify(
        _inner: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<SecretError> {
        None
    }

    pub(super) fn describe() -> StoreDescription {
        StoreDescription {
            backend: KeyringOs::CURRENT.backend_name().into(),
            provider: None,
            location: None,
            protected: true,
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use crate::keyring_os::KeyringOs;
    use crate::{SecretError, StoreDescription};

    pub(super) fn entry(_account: &str) -> Result<keyring::Entry, SecretError> {
        Err(SecretError::Unsupported)
    }

    pub(super) fn delete_all(_entry: &keyring::Entry, _account: &str) -> Result<(), SecretError> {
        Err(SecretError::Unsupported)
    }

    pub(super) fn classify(
        _inner: &(dyn std::error::Error + Send + Sync + 'static),
    ) -> Option<SecretError> {
        None
    }

    pub(super) fn describe() -> StoreDescription {
        StoreDescription {
            backend: KeyringOs::CURRENT.backend_name().into(),
            provider: Some(format!(
                "no OS keyring backend for {}",
                std::env::consts::OS
            )),
            location: None,
            protected: false,
        }
    }
}

/// Credential Manager for real: these run in the Windows build under Wine
/// (`cargo xtask windows`), whose advapi32 implements `CredWrite`/`CredRead`/`CredDelete`.
#[cfg(all(test, target_os = "windows"))]
mod windows_tests {
    use super::*;
    use crate::SecretStore;

    /// One test at a time in Credential Manager: under Wine, a read that ran while the other
    /// test wrote the probe's item was once answered with the probe's value (a CI run on
    /// 2026-12-03). What these tests check is one caller's round trip, not Wine's locking.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn exclusive() -> std::sync::MutexGuard<'static, ()> {
        ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A product id of its own per run: the Wine prefix keeps Credential Manager between runs.
    fn fresh_product() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("wine-unit-{nanos:x}")
    }

    #[test]
    fn a_secret_is_written_read_back_and_forgotten_in_credential_manager() {
        let _one = exclusive();
        let store = KeyringStore::new().expect("Windows has a backend");
        assert_eq!(store.describe().backend, "Windows Credential Manager");
        let product = fresh_product();
        assert!(
            store
                .get(&product, SecretItem::LicenseKey)
                .expect("read")
                .is_none()
        );
        let key = [0x5a_u8; 16];
        store
            .set(&product, SecretItem::LicenseKey, &key)
            .expect("written");
        let read = store.get(&product, SecretItem::LicenseKey).expect("read");
        assert_eq!(read.as_deref().map(Vec::as_slice), Some(&key[..]));
        // Items are apart per (product, item).
        assert!(
            store
                .get(&product, SecretItem::InstallNonce)
                .expect("read")
                .is_none()
        );
        store
            .delete(&product, SecretItem::LicenseKey)
            .expect("deleted");
        assert!(
            store
                .get(&product, SecretItem::LicenseKey)
                .expect("read")
                .is_none()
        );
        // Forgetting what is not there is not an error.
        store
            .delete(&product, SecretItem::LicenseKey)
            .expect("deleted again");
    }

    #[test]
    fn the_doctor_probe_round_trips() {
        let _one = exclusive();
        crate::probe(&KeyringStore::new().expect("backend")).expect("probe");
    }
}
