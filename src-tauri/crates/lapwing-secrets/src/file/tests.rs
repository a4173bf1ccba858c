//! The file store's contract: round trips, a private file (a readable one refused), a
//! corrupt file named and left untouched, concurrent writers, no value in any description.

use super::*;
use crate::probe;

const KEY: [u8; 16] = *b"KEY-0123456789ab";

fn store() -> (tempfile::TempDir, InsecureFileStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = InsecureFileStore::new(dir.path().join("lapwing").join("secrets.json"));
    (dir, store)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_each_item_and_delete_is_idempotent() {
    let (_dir, store) = store();
    for item in SecretItem::PRODUCT_ITEMS {
        store
            .delete("acme", item)
            .expect("deleting from no file at all");
        assert_eq!(store.get("acme", item).expect("get"), None);
        let value: Vec<u8> = (0..item.value_len())
            .map(|i| u8::try_from(i).unwrap_or(0) ^ 0xa5)
            .collect();
        store.set("acme", item, &value).expect("set");
        assert_eq!(
            store.get("acme", item).expect("get").as_deref(),
            Some(&value)
        );
        // A second store on the same file (another process) sees it.
        let other = InsecureFileStore::new(store.path());
        assert_eq!(
            other.get("acme", item).expect("get").as_deref(),
            Some(&value)
        );
        store.delete("acme", item).expect("delete");
        assert_eq!(store.get("acme", item).expect("get"), None);
        store
            .delete("acme", item)
            .expect("deleting a missing item is not an error");
    }
    store
        .set_evaluation_start("acme", u64::MAX - 1)
        .expect("set");
    assert_eq!(
        store.get_evaluation_start("acme").expect("get"),
        Some(u64::MAX - 1)
    );
}

#[test]
fn products_do_not_see_each_other() {
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    store.set_license_key("other", &[9; 16]).expect("set");
    store.forget_product("other").expect("forget");
    assert_eq!(store.get_license_key("other").expect("get"), None);
    assert_eq!(
        *store.get_license_key("acme").expect("get").expect("kept"),
        KEY
    );
}

#[cfg(unix)]
#[test]
fn file_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(store.path()), 0o600);
    assert_eq!(mode(store.directory()), 0o700);
    assert_eq!(mode(&store.sibling(".lock")), 0o600);
}

#[cfg(unix)]
#[test]
fn a_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = store
        .get_license_key("acme")
        .expect_err("0644 must be refused");
    assert!(
        matches!(error, SecretError::InsecurePermissions { mode: 0o644, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[test]
fn writes_leave_no_temporary_files() {
    let (_dir, store) = store();
    for i in 0..20u8 {
        store.set_install_nonce("acme", &[i; 16]).expect("set");
    }
    store
        .delete("acme", SecretItem::InstallNonce)
        .expect("delete");
    assert_eq!(
        names_in(store.directory()),
        ["secrets.json", "secrets.json.lock"]
    );
}

#[test]
fn the_file_says_it_is_plain_text_and_holds_base64() {
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    let text = std::fs::read_to_string(store.path()).expect("read");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["schema"], 1);
    assert!(
        json["warning"]
            .as_str()
            .expect("warning")
            .contains("PLAIN TEXT")
    );
    assert_eq!(json["products"]["acme"]["license-key"], BASE64.encode(KEY));
}

#[test]
fn a_corrupt_file_is_an_error_naming_it_and_is_left_untouched() {
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    let valid = std::fs::read(store.path()).expect("read");
    let secret_b64 = BASE64.encode(KEY);
    let cases: Vec<Vec<u8>> = vec![
        valid[..valid.len() / 2].to_vec(),
        b"".to_vec(),
        b"\xff\xfe garbage".to_vec(),
        br#"{"schema": 2, "products": {}}"#.to_vec(),
        br#"{"schema": 1, "products": {"acme": {"license-key": "not base64!"}}}"#.to_vec(),
        format!(r#"{{"schema": 1, "products": {{"acme": "{secret_b64}"}}}}"#).into_bytes(),
        format!(r#"{{"schema": 1, "products": {{"acme": {{"license-key": ["{secret_b64}"]}}}}}}"#)
            .into_bytes(),
    ];
    for bytes in cases {
        std::fs::write(store.path(), &bytes).expect("write");
        let calls: [(&str, Result<(), SecretError>); 4] = [
            ("get", store.get("acme", SecretItem::LicenseKey).map(drop)),
            ("set", store.set_install_nonce("acme", &[1; 16])),
            ("delete", store.delete("acme", SecretItem::LicenseKey)),
            ("probe", probe(&store)),
        ];
        for (call, result) in calls {
            let error = result.expect_err(call);
            let text = error.to_string();
            assert!(
                matches!(error, SecretError::Corrupt { .. }),
                "{call}: {error:?}"
            );
            assert!(
                text.contains(&store.path().display().to_string()),
                "{call}: {text}"
            );
            assert!(text.contains("left as it is"), "{call}: {text}");
            assert!(
                !text.contains(&secret_b64),
                "{call}: the value leaked: {text}"
            );
        }
        assert_eq!(
            std::fs::read(store.path()).expect("read"),
            bytes,
            "the file was changed"
        );
    }
}

#[test]
fn concurrent_writers_lose_nothing() {
    let (_dir, store) = store();
    std::thread::scope(|scope| {
        for t in 0..8u8 {
            let store = InsecureFileStore::new(store.path());
            scope.spawn(move || {
                for i in 0..10u8 {
                    store
                        .set_install_nonce(&format!("p{t}-{i}"), &[t; 16])
                        .expect("set");
                }
            });
        }
    });
    for t in 0..8u8 {
        for i in 0..10u8 {
            let nonce = store.get_install_nonce(&format!("p{t}-{i}")).expect("get");
            assert_eq!(nonce.as_deref(), Some(&[t; 16]), "p{t}-{i} was lost");
        }
    }
    assert_eq!(
        names_in(store.directory()),
        ["secrets.json", "secrets.json.lock"]
    );
}

#[test]
fn values_never_show_in_debug_or_description() {
    let (_dir, store) = store();
    store.set_license_key("acme", &KEY).expect("set");
    let shown = format!(
        "{store:?} {} {:?}",
        store.describe(),
        store.get_license_key("acme").expect("get")
    );
    assert!(
        !shown.contains("KEY-") && !shown.contains(&BASE64.encode(KEY)),
        "{shown}"
    );
    probe(&store).expect("probe");
    assert_eq!(store.get("lapwing", SecretItem::Probe).expect("get"), None);
}

#[test]
fn description_shows_home_as_tilde() {
    let home = Some(std::ffi::OsStr::new("/home/ada"));
    // `~` is joined with the platform's separator (the Windows build runs this under Wine).
    let expected = if cfg!(windows) {
        "~\\.local/share/lapwing/secrets.json"
    } else {
        "~/.local/share/lapwing/secrets.json"
    };
    assert_eq!(
        tilde_under(
            Path::new("/home/ada/.local/share/lapwing/secrets.json"),
            home
        ),
        expected
    );
    assert_eq!(
        tilde_under(Path::new("/home/adam/s.json"), home),
        "/home/adam/s.json"
    );
    assert_eq!(tilde_under(Path::new("/srv/s.json"), None), "/srv/s.json");
    let (_dir, store) = store();
    let description = store.describe();
    assert_eq!(description.backend, "insecure file");
    assert!(!description.protected);
    assert!(
        description.to_string().starts_with("insecure file at ")
            && description.to_string().ends_with(
                &Path::new("lapwing")
                    .join("secrets.json")
                    .display()
                    .to_string()
            ),
        "{description}"
    );
}
