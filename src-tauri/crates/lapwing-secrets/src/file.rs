//! The store of last resort: one JSON file, used only when the person asks for it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    Secret, SecretError, SecretItem, SecretStore, StoreDescription, check_product_id, check_value,
};

const SCHEMA: u32 = 1;
const WARNING: &str = "Lapwing's license secrets in PLAIN TEXT (--insecure-file-store): \
    base64 is an encoding, not protection. Anyone who can read this file can use these licenses.";

/// Secrets in one JSON file, for machines where no OS keyring can run (a server without a
/// desktop session, a container) and only when the person asks for it with
/// `--insecure-file-store`.
///
/// # The risk
///
/// The values are in **plain text** (base64 is an encoding, not encryption). Anyone who can
/// read the file can copy the license keys and install nonces and so take over the
/// activations: other processes of the same user, root, backups and synchronised home
/// directories, and anyone holding the disk if it is not encrypted. The OS keyring encrypts
/// its items at rest with the login password and hands them only to the logged-in session.
///
/// # What it does about it
///
/// - The file and its directory are created for the owner only (0600 and 0700), and a file
///   other users may read is refused ([`SecretError::InsecurePermissions`]).
/// - Writes are atomic (a temporary file in the same directory, flushed to disk, renamed over
///   the old one, the directory flushed), and serialised between processes with an advisory
///   lock on `<file>.lock`, so the tray and `lapctl` writing at once lose nothing.
/// - A file that cannot be read as written ([`SecretError::Corrupt`]) is left untouched and
///   named in the error: resetting it would silently lose the keys.
///
/// Format: `{"schema": 1, "warning": "…", "products": {"<id>": {"<item>": "<base64>"}}}`.
#[derive(Debug, Clone)]
pub struct InsecureFileStore {
    path: PathBuf,
}

/// The parsed file. The base64 strings are the secrets in another spelling, so they are wiped
/// when this is dropped.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Contents {
    schema: u32,
    #[serde(default)]
    warning: String,
    #[serde(default)]
    products: BTreeMap<String, BTreeMap<String, String>>,
}

impl Contents {
    fn empty() -> Self {
        let mut contents = Self::default();
        contents.schema = SCHEMA;
        contents
    }
}

impl Drop for Contents {
    fn drop(&mut self) {
        for items in self.products.values_mut() {
            for value in items.values_mut() {
                value.zeroize();
            }
        }
    }
}

impl InsecureFileStore {
    /// A store in `path` (e.g. `~/.local/share/lapwing/secrets.json`). Nothing is touched
    /// until the first call; the file is read again on every call, so changes made by another
    /// process are seen.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn directory(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        name.push(suffix);
        self.directory().join(name)
    }

    /// The file's contents; an absent file is an empty store.
    fn read(&self) -> Result<Contents, SecretError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Contents::empty());
            }
            Err(e) => return Err(SecretError::io(&self.path, e)),
        };
        self.check_mode(&file)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes)
            .map_err(|e| SecretError::io(&self.path, e))?;
        let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| {
            // Only the kind and the place of the error: serde_json's own message quotes the
            // offending value, which may be a secret.
            let kind = match e.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "not in Lapwing's format",
                serde_json::error::Category::Eof => "cut short",
            };
            self.corrupt(&format!(
                "{kind} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if contents.schema != SCHEMA {
            return Err(self.corrupt(&format!(
                "schema {} (this Lapwing reads schema {SCHEMA}; a newer Lapwing may have written it)",
                contents.schema
            )));
        }
        // Every value is checked, not only the one asked for: a damaged file is reported the
        // first time it is read, before anything is written over it.
        for (product, items) in &contents.products {
            for (item, value) in items {
                if BASE64.decode(value).map(Zeroizing::new).is_err() {
                    return Err(self.corrupt(&format!("the {item} of {product} is not base64")));
                }
            }
        }
        Ok(contents)
    }

    #[cfg(unix)]
    fn check_mode(&self, file: &File) -> Result<(), SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| SecretError::io(&self.path, e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::InsecurePermissions {
                path: self.path.clone(),
                mode,
            });
        }
        Ok(())
    }

    #[cfg(not(unix))]
    #[allow(clippy::unused_self)]
    fn check_mode(&self, _file: &File) -> Result<(), SecretError> {
        // Windows: files under the profile are the owner's by inheritance.
        Ok(())
    }

    fn corrupt(&self, defect: &str) -> SecretError {
        SecretError::Corrupt {
            what: format!(
                "the insecure secret file {} is {defect}; it was left as it is: repair it or \
                 restore it from a backup, or move it aside to start again (the products' \
                 license keys will then have to be entered again, and their activations may \
                 take a new seat)",
                self.path.display()
            ),
        }
    }

    /// Runs `change` on the contents under the inter-process lock and writes the result if
    /// `change` says it changed anything.
    fn update(&self, change: impl FnOnce(&mut Contents) -> bool) -> Result<(), SecretError> {
        create_private_dir(self.directory())?;
        let lock_path = self.sibling(".lock");
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| SecretError::io(&lock_path, e))?;
        // Fully qualified: std's own `File::lock` is newer than our MSRV. Released when `lock`
        // is closed at the end of this function.
        fs4::FileExt::lock(&lock).map_err(|e| SecretError::io(&lock_path, e))?;
        let mut contents = self.read()?;
        if change(&mut contents) {
            WARNING.clone_into(&mut contents.warning);
            let bytes = Zeroizing::new(serde_json::to_vec_pretty(&contents).map_err(|e| {
                SecretError::Backend {
                    detail: format!("cannot encode the secret file: {e}"),
                }
            })?);
            self.write_atomically(&bytes)?;
        }
        drop(lock);
        Ok(())
    }

    fn write_atomically(&self, bytes: &[u8]) -> Result<(), SecretError> {
        lapwing_fs::write_atomically(&self.path, bytes, 0o600)
            .map_err(|e| SecretError::io(&self.path, e))
    }
}

/// Options that create files for the owner only, before any byte is written.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn create_private_dir(dir: &Path) -> Result<(), SecretError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| SecretError::io(dir, e))
}

/// `path` with the home directory written as `~`, as people read it.
fn tilde(path: &Path) -> String {
    tilde_under(path, std::env::var_os("HOME").as_deref())
}

fn tilde_under(path: &Path, home: Option<&std::ffi::OsStr>) -> String {
    let home = home.filter(|h| !h.is_empty());
    match home.map(|home| path.strip_prefix(home)) {
        Some(Ok(rest)) => Path::new("~").join(rest).display().to_string(),
        _ => path.display().to_string(),
    }
}

impl SecretStore for InsecureFileStore {
    fn get(
        &self,
        product_id: &str,
        item: SecretItem,
    ) -> Result<Option<Secret<Vec<u8>>>, SecretError> {
        check_product_id(product_id)?;
        // No lock: writers replace the file by rename, so a reader sees the old or the new one.
        let contents = self.read()?;
        let Some(value) = contents
            .products
            .get(product_id)
            .and_then(|items| items.get(item.name()))
        else {
            return Ok(None);
        };
        let bytes = BASE64
            .decode(value)
            .map_err(|_| self.corrupt(&format!("the {item} of {product_id} is not base64")))?;
        Ok(Some(Secret::new(bytes)))
    }

    fn set(&self, product_id: &str, item: SecretItem, value: &[u8]) -> Result<(), SecretError> {
        check_product_id(product_id)?;
        check_value(item, value)?;
        self.update(|contents| {
            let items = contents.products.entry(product_id.to_owned()).or_default();
            if let Some(mut old) = items.insert(item.name().to_owned(), BASE64.encode(value)) {
                old.zeroize();
            }
            true
        })
    }

    fn delete(&self, product_id: &str, item: SecretItem) -> Result<(), SecretError> {
        check_product_id(product_id)?;
        if !self.path.exists() {
            return Ok(());
        }
        self.update(|contents| {
            let Some(items) = contents.products.get_mut(product_id) else {
                return false;
            };
            let Some(mut old) = items.remove(item.name()) else {
                return false;
            };
            old.zeroize();
            if items.is_empty() {
                contents.products.remove(product_id);
            }
            true
        })
    }

    fn describe(&self) -> StoreDescription {
        StoreDescription {
            backend: "insecure file".into(),
            provider: None,
            location: Some(tilde(&self.path)),
            protected: false,
        }
    }
}

#[cfg(test)]
mod tests {
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
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
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
            format!(
                r#"{{"schema": 1, "products": {{"acme": {{"license-key": ["{secret_b64}"]}}}}}}"#
            )
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
        assert_eq!(
            tilde_under(
                Path::new("/home/ada/.local/share/lapwing/secrets.json"),
                home
            ),
            "~/.local/share/lapwing/secrets.json"
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
                && description.to_string().ends_with("lapwing/secrets.json"),
            "{description}"
        );
    }
}
