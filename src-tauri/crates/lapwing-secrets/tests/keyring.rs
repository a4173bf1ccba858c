//! `KeyringStore` against a real gnome-keyring on a private session bus (see
//! `lapwing_secrets::test_util`): each test re-runs itself in a child process whose
//! `DBUS_SESSION_BUS_ADDRESS` is that bus.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lapwing_secrets::test_util::{Setup, in_private_session, lock_session_keyring};
use lapwing_secrets::{KeyringStore, SecretError, SecretItem, SecretStore, probe};
use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

const KEY: [u8; 16] = *b"KEY-0123456789ab";

fn store() -> KeyringStore {
    KeyringStore::new().expect("Linux has a keyring backend")
}

/// The Secret Service items with Lapwing's attributes for `account`, found over D-Bus
/// without the keyring crate: (unlocked, locked) object paths.
fn items_for(account: &str) -> (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) {
    let connection = Connection::session().expect("session bus");
    let attributes = HashMap::from([("service", "lapwing"), ("username", account)]);
    connection
        .call_method(
            Some("org.freedesktop.secrets"),
            "/org/freedesktop/secrets",
            Some("org.freedesktop.Secret.Service"),
            "SearchItems",
            &(attributes,),
        )
        .expect("SearchItems")
        .body()
        .deserialize()
        .expect("(ao, ao)")
}

#[test]
fn round_trip_each_item() {
    in_private_session(Setup::Unlocked, "round_trip_each_item", || {
        let store = store();
        for item in SecretItem::PRODUCT_ITEMS {
            let account = format!("acme-studio:{}", item.name());
            assert_eq!(store.get("acme-studio", item).expect("get"), None);
            let first = vec![0x11; item.value_len()];
            let second: Vec<u8> = (0..item.value_len())
                .map(|i| u8::try_from(i * 13 % 256).unwrap_or(0))
                .collect();
            store.set("acme-studio", item, &first).expect("set");
            store
                .set("acme-studio", item, &second)
                .expect("set again replaces");
            assert_eq!(
                store.get("acme-studio", item).expect("get").as_deref(),
                Some(&second)
            );
            // Exactly one item, under the attributes the docs promise.
            assert_eq!(items_for(&account).0.len(), 1, "{account}");
            store.delete("acme-studio", item).expect("delete");
            assert_eq!(store.get("acme-studio", item).expect("get"), None);
            assert_eq!(items_for(&account).0.len(), 0, "{account} left behind");
            store
                .delete("acme-studio", item)
                .expect("deleting a missing item is not an error");
        }
        store.set_license_key("acme-studio", &KEY).expect("set");
        store
            .set_evaluation_start("acme-studio", 1_795_000_000)
            .expect("set");
        assert_eq!(
            *store
                .get_license_key("acme-studio")
                .expect("get")
                .expect("some"),
            KEY
        );
        assert_eq!(
            store.get_evaluation_start("acme-studio").expect("get"),
            Some(1_795_000_000)
        );
        store.forget_product("acme-studio").expect("forget");
        assert_eq!(store.get_license_key("acme-studio").expect("get"), None);
        probe(&store).expect("probe");
        assert_eq!(
            items_for("lapwing:probe").0.len(),
            0,
            "the probe left its item"
        );
    });
}

#[test]
fn products_do_not_see_each_other() {
    in_private_session(Setup::Unlocked, "products_do_not_see_each_other", || {
        let store = store();
        store.set_license_key("acme", &KEY).expect("set");
        store.set_license_key("acme-export", &[2; 16]).expect("set");
        // "acme" is a prefix of "acme-export": the attributes must match exactly.
        assert_eq!(
            *store.get_license_key("acme").expect("get").expect("some"),
            KEY
        );
        assert_eq!(store.get_license_key("other").expect("get"), None);
        store.forget_product("acme-export").expect("forget");
        assert_eq!(store.get_license_key("acme-export").expect("get"), None);
        assert_eq!(
            *store.get_license_key("acme").expect("get").expect("kept"),
            KEY
        );
    });
}

#[test]
fn invalid_product_ids_never_reach_the_keyring() {
    in_private_session(
        Setup::Unlocked,
        "invalid_product_ids_never_reach_the_keyring",
        || {
            let store = store();
            for id in ["", "Acme", "acme:license-key", "*", "acme\nx"] {
                let error = store.set(id, SecretItem::LicenseKey, &KEY).expect_err(id);
                assert!(
                    matches!(error, SecretError::InvalidProductId { .. }),
                    "{id:?}: {error:?}"
                );
            }
            let connection = Connection::session().expect("session bus");
            let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) = connection
                .call_method(
                    Some("org.freedesktop.secrets"),
                    "/org/freedesktop/secrets",
                    Some("org.freedesktop.Secret.Service"),
                    "SearchItems",
                    &(HashMap::from([("service", "lapwing")]),),
                )
                .expect("SearchItems")
                .body()
                .deserialize()
                .expect("(ao, ao)");
            assert!(
                unlocked.is_empty() && locked.is_empty(),
                "something was stored"
            );
        },
    );
}

fn assert_locked(result: Result<(), SecretError>, call: &str) {
    let error = result.expect_err(call);
    let text = error.to_string();
    assert!(
        matches!(error, SecretError::Locked { .. }),
        "{call}: {error:?}"
    );
    assert!(text.starts_with("the keyring is locked"), "{call}: {text}");
    assert!(
        text.contains("gnome-keyring-daemon --unlock"),
        "{call}: {text}"
    );
    assert!(text.contains("--insecure-file-store"), "{call}: {text}");
    assert!(!text.contains("KEY-"), "{call}: a value leaked: {text}");
}

#[test]
fn a_keyring_locked_mid_run_gives_locked_with_the_fix() {
    in_private_session(
        Setup::Unlocked,
        "a_keyring_locked_mid_run_gives_locked_with_the_fix",
        || {
            let store = store();
            store
                .set_license_key("acme", &KEY)
                .expect("set while unlocked");
            lock_session_keyring();
            // The stored item is locked now (read), the collection too (create), and delete must
            // not claim success for an item it could not remove.
            assert_locked(store.get("acme", SecretItem::LicenseKey).map(drop), "get");
            assert_locked(store.set_license_key("acme", &[3; 16]), "set existing");
            assert_locked(store.set_install_nonce("acme", &[4; 16]), "set new");
            assert_locked(store.delete("acme", SecretItem::LicenseKey), "delete");
            assert_locked(probe(&store), "probe");
        },
    );
}

#[test]
fn a_keyring_locked_from_the_start_gives_locked() {
    in_private_session(
        Setup::Locked,
        "a_keyring_locked_from_the_start_gives_locked",
        || {
            let store = store();
            assert_locked(store.set_license_key("acme", &KEY), "set");
            assert_locked(probe(&store), "probe");
        },
    );
}

#[test]
fn no_secret_service_on_the_bus_gives_no_service() {
    in_private_session(
        Setup::NoSecretService,
        "no_secret_service_on_the_bus_gives_no_service",
        || {
            let store = store();
            let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("set by the harness");
            let calls: [(&str, Result<(), SecretError>); 4] = [
                ("get", store.get("acme", SecretItem::LicenseKey).map(drop)),
                ("set", store.set_license_key("acme", &KEY)),
                ("delete", store.delete("acme", SecretItem::LicenseKey)),
                ("probe", probe(&store)),
            ];
            for (call, result) in calls {
                let error = result.expect_err(call);
                let text = error.to_string();
                assert!(
                    matches!(error, SecretError::NoService { .. }),
                    "{call}: {error:?}"
                );
                assert!(
                    text.starts_with("no Secret Service on the session bus"),
                    "{call}: {text}"
                );
                assert!(
                    text.contains(&address),
                    "{call}: the bus is not named: {text}"
                );
                assert!(text.contains("gnome-keyring"), "{call}: {text}");
            }
            let description = store.describe();
            assert_eq!(
                description.provider.as_deref(),
                Some("none on the session bus")
            );
        },
    );
}

#[test]
fn no_session_bus_gives_no_session_bus() {
    in_private_session(Setup::NoBus, "no_session_bus_gives_no_session_bus", || {
        let store = store();
        let error = store.set_license_key("acme", &KEY).expect_err("no bus");
        let text = error.to_string();
        assert!(
            matches!(error, SecretError::NoSessionBus { .. }),
            "{error:?}"
        );
        assert!(
            text.contains("no-bus-here"),
            "the address is not named: {text}"
        );
        assert!(matches!(
            probe(&store),
            Err(SecretError::NoSessionBus { .. })
        ));
        let description = store.describe().to_string();
        assert!(
            description.starts_with("Secret Service (cannot ask the session bus"),
            "{description}"
        );
    });
}

#[test]
fn no_keyring_at_all_gives_no_default_collection() {
    in_private_session(
        Setup::NoKeyring,
        "no_keyring_at_all_gives_no_default_collection",
        || {
            let store = store();
            let error = store.set_license_key("acme", &KEY).expect_err("no keyring");
            assert!(
                matches!(error, SecretError::NoDefaultCollection),
                "{error:?}"
            );
            assert!(error.to_string().contains("Set as default"), "{error}");
            assert!(matches!(
                store.get("acme", SecretItem::LicenseKey),
                Err(SecretError::NoDefaultCollection)
            ));
        },
    );
}

#[test]
fn describe_names_gnome_keyring_and_the_bus() {
    in_private_session(
        Setup::Unlocked,
        "describe_names_gnome_keyring_and_the_bus",
        || {
            let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("set by the harness");
            let description = store().describe();
            assert_eq!(
                description.to_string(),
                format!("Secret Service (gnome-keyring) at {address}")
            );
            assert!(description.protected);
        },
    );
}

#[test]
fn duplicates_are_reported_and_all_deleted() {
    in_private_session(
        Setup::Unlocked,
        "duplicates_are_reported_and_all_deleted",
        || {
            let store = store();
            store.set_license_key("acme", &KEY).expect("set");
            create_duplicate("acme:license-key");
            assert_eq!(items_for("acme:license-key").0.len(), 2);
            let error = store.get_license_key("acme").expect_err("two items");
            let text = error.to_string();
            assert!(matches!(error, SecretError::Corrupt { .. }), "{error:?}");
            assert!(text.starts_with("2 keyring items"), "{text}");
            store
                .delete("acme", SecretItem::LicenseKey)
                .expect("delete removes both");
            assert_eq!(items_for("acme:license-key").0.len(), 0);
        },
    );
}

/// A second item with Lapwing's attributes, as another tool could make it.
fn create_duplicate(account: &str) {
    let connection = Connection::session().expect("session bus");
    let reply = connection
        .call_method(
            Some("org.freedesktop.secrets"),
            "/org/freedesktop/secrets",
            Some("org.freedesktop.Secret.Service"),
            "OpenSession",
            &("plain", zbus::zvariant::Value::from("")),
        )
        .expect("OpenSession");
    let (_, session): (zbus::zvariant::OwnedValue, OwnedObjectPath) =
        reply.body().deserialize().expect("(v, o)");
    let collection: OwnedObjectPath = connection
        .call_method(
            Some("org.freedesktop.secrets"),
            "/org/freedesktop/secrets",
            Some("org.freedesktop.Secret.Service"),
            "ReadAlias",
            &("default",),
        )
        .expect("ReadAlias")
        .body()
        .deserialize()
        .expect("o");
    let attributes = HashMap::from([
        ("service", "lapwing"),
        ("username", account),
        ("target", "default"),
    ]);
    let properties: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::from([
        (
            "org.freedesktop.Secret.Item.Label",
            zbus::zvariant::Value::from("duplicate"),
        ),
        (
            "org.freedesktop.Secret.Item.Attributes",
            zbus::zvariant::Value::from(attributes),
        ),
    ]);
    let secret = (
        session,
        Vec::<u8>::new(),
        b"DUPLICATE-VALUE!".to_vec(),
        "text/plain",
    );
    connection
        .call_method(
            Some("org.freedesktop.secrets"),
            collection.as_str(),
            Some("org.freedesktop.Secret.Collection"),
            "CreateItem",
            &(properties, secret, false),
        )
        .expect("CreateItem");
}

#[test]
fn concurrent_products_are_all_kept() {
    in_private_session(Setup::Unlocked, "concurrent_products_are_all_kept", || {
        std::thread::scope(|scope| {
            for t in 0..6u8 {
                scope.spawn(move || {
                    let store = store();
                    let id = format!("product-{t}");
                    store.set_license_key(&id, &[t; 16]).expect("set");
                    store.set_install_nonce(&id, &[t ^ 0xff; 16]).expect("set");
                });
            }
        });
        let store = store();
        for t in 0..6u8 {
            let id = format!("product-{t}");
            assert_eq!(
                *store.get_license_key(&id).expect("get").expect("kept"),
                [t; 16]
            );
            assert_eq!(
                *store.get_install_nonce(&id).expect("get").expect("kept"),
                [t ^ 0xff; 16]
            );
        }
    });
}

/// Times a get and a set through the real keyring; printed for the README's figures (run with
/// `--nocapture`), with a bound loose enough for a loaded CI machine that still catches a
/// call that waits on a timeout.
#[test]
fn get_and_set_timings() {
    in_private_session(Setup::Unlocked, "get_and_set_timings", || {
        const RUNS: usize = 15;
        let store = store();
        let mut sets = Vec::with_capacity(RUNS);
        let mut gets = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let value = [u8::try_from(i).unwrap_or(0); 16];
            let start = Instant::now();
            store.set_install_nonce("timing", &value).expect("set");
            sets.push(start.elapsed());
            let start = Instant::now();
            let read = store.get_install_nonce("timing").expect("get");
            gets.push(start.elapsed());
            assert_eq!(read.as_deref(), Some(&value));
        }
        sets.sort();
        gets.sort();
        let median = |v: &[Duration]| v[v.len() / 2];
        println!(
            "keyring timings over {RUNS} runs: set median {:?} (max {:?}), get median {:?} (max {:?})",
            median(&sets),
            sets[RUNS - 1],
            median(&gets),
            gets[RUNS - 1]
        );
        assert!(
            median(&sets) < Duration::from_secs(2),
            "set is slow: {sets:?}"
        );
        assert!(
            median(&gets) < Duration::from_secs(2),
            "get is slow: {gets:?}"
        );
    });
}
