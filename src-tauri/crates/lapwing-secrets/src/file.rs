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
    #[allow(
        clippy::unused_self,
        clippy::unnecessary_wraps,
        reason = "one signature with the Unix version, which reads the mode and can refuse"
    )]
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
    #[cfg_attr(not(unix), allow(unused_mut, reason = "only Unix sets a mode"))]
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
mod tests;
