//! The installed products: the directories manifests are read from, every manifest in them
//! read into a [`Catalog`] (a bad one reported, never hiding the others), and the cache that
//! reads them again only when a file changed.
//!
//! Which manifest wins: the directories are in order of precedence, the system folder first.
//! A product installed for everyone cannot be redirected by a per-user manifest with its id
//! (the later one is refused, and says why), and a manifest in the system folder that anyone
//! but the administrator can write is refused (see `system_folder`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::system_folder::{Access, SystemFolder, Trusted};
use super::{Manifest, ManifestError};
use crate::platform::Platform;

/// The directories manifests are read from, in order of precedence: the first one that
/// installs an id wins (the system folder comes first).
pub fn product_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("LAPWING_PRODUCTS_DIR") {
        return vec![PathBuf::from(dir)];
    }
    platform_product_dirs()
}

/// The platform's system folder, whose manifests only the administrator may write: root
/// on Unix; Administrators, SYSTEM and TrustedInstaller on Windows (see [`Trusted::windows`]).
pub fn platform_system_folder() -> Option<SystemFolder> {
    let trusted = Trusted::platform()?;
    platform_product_dirs()
        .into_iter()
        .next()
        .map(|path| SystemFolder { path, trusted })
}

fn platform_product_dirs() -> Vec<PathBuf> {
    if cfg!(any(
        target_os = "linux",
        target_os = "windows",
        target_os = "macos"
    )) {
        product_dirs_on(Platform::CURRENT, |name| std::env::var_os(name))
    } else {
        // No LAP folder convention on other systems: only LAPWING_PRODUCTS_DIR.
        Vec::new()
    }
}

/// The product folders of `platform`, with the environment given, system folder first:
/// `/usr/share/lap/products.d` and `$XDG_DATA_HOME` (or `$HOME/.local/share`)`/lap/products.d`
/// on Linux; `%ProgramData%\LAP\products.d` and `%LOCALAPPDATA%\LAP\products.d` on Windows;
/// `/Library/Application Support/LAP/products.d` and the same under `$HOME` on macOS. A
/// folder whose variable is missing or empty is left out.
fn product_dirs_on(platform: Platform, var: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    // An empty value names no folder: joined, it would make a path relative to wherever the
    // program was started, and manifests there would be read.
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    match platform {
        Platform::Linux => {
            let mut dirs = vec![PathBuf::from("/usr/share/lap/products.d")];
            let data_home = var("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share")));
            if let Some(data_home) = data_home {
                dirs.push(data_home.join("lap/products.d"));
            }
            dirs
        }
        Platform::Windows => {
            let mut dirs = Vec::new();
            if let Some(p) = var("ProgramData") {
                dirs.push(PathBuf::from(p).join("LAP\\products.d"));
            }
            if let Some(p) = var("LOCALAPPDATA") {
                dirs.push(PathBuf::from(p).join("LAP\\products.d"));
            }
            dirs
        }
        Platform::MacOs => {
            let mut dirs = vec![PathBuf::from("/Library/Application Support/LAP/products.d")];
            if let Some(home) = var("HOME") {
                dirs.push(PathBuf::from(home).join("Library/Application Support/LAP/products.d"));
            }
            dirs
        }
    }
}

/// Every product found, and every manifest refused, across the directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// By id.
    pub products: BTreeMap<String, Manifest>,
    pub errors: Vec<ManifestError>,
    /// Add-ons refused because their base product is not installed: add-on id → base id.
    /// They are neither provisioned nor activated until the base is installed (an add-on's
    /// ClientBaseId is its base's, draft §3.1); their errors are in `errors` too.
    pub waiting_for_base: BTreeMap<String, String>,
}

/// Reads every `*.toml` in `dirs` under the platform's system folder rule. Missing
/// directories are fine (nothing installed there).
pub fn scan(dirs: &[PathBuf]) -> Catalog {
    scan_with(dirs, platform_system_folder().as_ref())
}

/// Who first installed an id.
struct Claim {
    file: PathBuf,
    by_system: bool,
}

/// [`scan`] with `system` as the system folder (when it is one of `dirs`).
pub fn scan_with(dirs: &[PathBuf], system: Option<&SystemFolder>) -> Catalog {
    let mut catalog = Catalog::default();
    // Kept for refused system manifests too: one that anyone can write is refused, but a
    // per-user manifest must not take its id over either.
    let mut claims: BTreeMap<String, Claim> = BTreeMap::new();
    for dir in dirs {
        let system = system.filter(|s| s.path == *dir);
        let Some(files) = manifest_files(dir) else {
            continue;
        };
        let folder_refusal = system.and_then(SystemFolder::folder_refusal);
        for file in files {
            let refusal =
                system.and_then(|s| folder_refusal.clone().or_else(|| s.file_refusal(&file)));
            let manifest = match (Manifest::load(&file), refusal) {
                (Err(e), None) => {
                    catalog.errors.push(e);
                    continue;
                }
                (loaded, Some(reason)) => {
                    if let Ok(m) = loaded {
                        claims.entry(m.id).or_insert(Claim {
                            file: file.clone(),
                            by_system: true,
                        });
                    }
                    catalog.errors.push(ManifestError {
                        file,
                        field: "-".into(),
                        reason,
                    });
                    continue;
                }
                (Ok(manifest), None) => manifest,
            };
            if let Some(claim) = claims.get(&manifest.id) {
                catalog.errors.push(ManifestError {
                    reason: shadowed_because(&manifest, claim),
                    file: manifest.file,
                    field: "id".into(),
                });
                continue;
            }
            claims.insert(
                manifest.id.clone(),
                Claim {
                    file: manifest.file.clone(),
                    by_system: system.is_some(),
                },
            );
            catalog.products.insert(manifest.id.clone(), manifest);
        }
    }
    // An add-on whose base is not installed cannot be activated: report it, keep the rest.
    let orphans: Vec<String> = catalog
        .products
        .values()
        .filter(|m| {
            m.addon_of
                .as_ref()
                .is_some_and(|b| !catalog.products.contains_key(b))
        })
        .map(|m| m.id.clone())
        .collect();
    for id in orphans {
        if let Some(m) = catalog.products.remove(&id) {
            if let Some(base) = &m.addon_of {
                catalog.waiting_for_base.insert(id.clone(), base.clone());
            }
            catalog.errors.push(ManifestError {
                file: m.file,
                field: "addon_of".into(),
                reason: format!(
                    "base product {:?} is not installed",
                    m.addon_of.unwrap_or_default()
                ),
            });
        }
    }
    catalog
}

/// The `*.toml` files of `dir`, sorted; `None` when it cannot be read (not there).
fn manifest_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Some(files)
}

/// Why `manifest` loses its id to the one that claimed it first.
fn shadowed_because(manifest: &Manifest, claim: &Claim) -> String {
    if claim.file.parent() == manifest.file.parent() {
        format!(
            "{:?} is already used by {}",
            manifest.id,
            claim.file.display()
        )
    } else if claim.by_system {
        format!(
            "{:?} is installed for everyone by {}: the system manifest wins over a per-user one",
            manifest.id,
            claim.file.display()
        )
    } else {
        format!(
            "{:?} is already installed by {}, whose folder comes first",
            manifest.id,
            claim.file.display()
        )
    }
}

/// What identifies the manifests on disk: each file's and folder's path, modification time,
/// length and access (owner and mode: a `chmod` changes which manifests are trusted).
type Fingerprint = Vec<(PathBuf, Option<std::time::SystemTime>, u64, Option<Access>)>;

fn fingerprint(dirs: &[PathBuf]) -> Fingerprint {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        out.push((dir.clone(), None, 0, Access::of(dir).ok().flatten()));
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let meta = entry.metadata().ok();
                let access = Access::of(&path).ok().flatten();
                out.push((
                    path,
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                    access,
                ));
            }
        }
    }
    out.sort();
    out
}

/// Scans once and again only when a manifest file appears, goes, or changes: parsing every
/// manifest (and checking its keys) on each call would dominate an activation's cost.
#[derive(Debug, Default)]
pub struct ScanCache {
    // Shared, not cloned per call: a catalog of 100 manifests costs more to copy than the
    // activation that needs one of them.
    cached: std::sync::Mutex<Option<(Fingerprint, std::sync::Arc<Catalog>)>>,
}

impl ScanCache {
    pub fn scan(&self, dirs: &[PathBuf]) -> Catalog {
        (*self.scan_shared(dirs)).clone()
    }

    /// The catalog, rescanned only if a manifest file appeared, went or changed.
    pub fn scan_shared(&self, dirs: &[PathBuf]) -> std::sync::Arc<Catalog> {
        let now = fingerprint(dirs);
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, catalog)) = cached.as_ref()
            && *seen == now
        {
            return std::sync::Arc::clone(catalog);
        }
        let catalog = std::sync::Arc::new(scan(dirs));
        *cached = Some((now, std::sync::Arc::clone(&catalog)));
        catalog
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::{self, text};
    use crate::platform::{as_windows, fake_env as env};

    #[test]
    fn each_platform_has_a_system_folder_first_and_a_per_user_one() {
        assert_eq!(
            product_dirs_on(Platform::Linux, env(&[("HOME", "/home/a")])),
            [
                PathBuf::from("/usr/share/lap/products.d"),
                PathBuf::from("/home/a/.local/share/lap/products.d"),
            ]
        );
        assert_eq!(
            product_dirs_on(
                Platform::Linux,
                env(&[("HOME", "/home/a"), ("XDG_DATA_HOME", "/data/a")])
            ),
            [
                PathBuf::from("/usr/share/lap/products.d"),
                PathBuf::from("/data/a/lap/products.d"),
            ]
        );
        assert_eq!(
            product_dirs_on(Platform::MacOs, env(&[("HOME", "/Users/a")])),
            [
                PathBuf::from("/Library/Application Support/LAP/products.d"),
                PathBuf::from("/Users/a/Library/Application Support/LAP/products.d"),
            ]
        );
        let windows = product_dirs_on(
            Platform::Windows,
            env(&[
                ("ProgramData", r"C:\ProgramData"),
                ("LOCALAPPDATA", r"C:\Users\a\AppData\Local"),
                ("HOME", "/home/a"),
            ]),
        );
        let windows: Vec<String> = windows.iter().map(|p| as_windows(p)).collect();
        assert_eq!(
            windows,
            [
                r"C:\ProgramData\LAP\products.d",
                r"C:\Users\a\AppData\Local\LAP\products.d",
            ]
        );
    }

    #[test]
    fn without_its_variable_a_folder_is_left_out() {
        assert_eq!(
            product_dirs_on(Platform::Linux, env(&[])),
            [PathBuf::from("/usr/share/lap/products.d")]
        );
        assert_eq!(
            product_dirs_on(Platform::MacOs, env(&[])),
            [PathBuf::from("/Library/Application Support/LAP/products.d")]
        );
        assert!(product_dirs_on(Platform::Windows, env(&[("HOME", "/home/a")])).is_empty());
        for platform in [Platform::Linux, Platform::MacOs, Platform::Windows] {
            let empty = env(&[
                ("HOME", ""),
                ("XDG_DATA_HOME", ""),
                ("ProgramData", ""),
                ("LOCALAPPDATA", ""),
            ]);
            let dirs = product_dirs_on(platform, empty);
            assert!(
                dirs.iter().all(|d| d.is_absolute()),
                "{platform:?}: an empty variable made {dirs:?}"
            );
        }
        let only_the_users = product_dirs_on(
            Platform::Windows,
            env(&[("LOCALAPPDATA", r"C:\Users\a\AppData\Local")]),
        );
        assert_eq!(
            only_the_users
                .iter()
                .map(|p| as_windows(p))
                .collect::<Vec<_>>(),
            [r"C:\Users\a\AppData\Local\LAP\products.d"]
        );
    }

    #[test]
    fn scan_reports_bad_files_and_keeps_the_good_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.toml"), text("acme-studio", "")).expect("write");
        std::fs::write(dir.path().join("b.toml"), "schema = 1\nid = ").expect("write");
        std::fs::write(
            dir.path().join("c.toml"),
            text("acme-export", "addon_of = \"acme-studio\""),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("d.toml"),
            text("orphan", "addon_of = \"missing\""),
        )
        .expect("write");
        std::fs::write(dir.path().join("e.toml"), text("acme-studio", "")).expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let catalog = scan(&[dir.path().to_owned(), dir.path().join("absent")]);
        assert_eq!(
            catalog.products.keys().collect::<Vec<_>>(),
            ["acme-export", "acme-studio"]
        );
        let fields: Vec<(&str, &str)> = catalog
            .errors
            .iter()
            .map(|e| {
                (
                    e.file.file_name().and_then(|f| f.to_str()).unwrap_or(""),
                    e.field.as_str(),
                )
            })
            .collect();
        assert!(fields.contains(&("b.toml", "-")), "{fields:?}");
        assert!(fields.contains(&("d.toml", "addon_of")), "{fields:?}");
        assert_eq!(
            catalog.waiting_for_base.get("orphan").map(String::as_str),
            Some("missing")
        );
        assert_eq!(catalog.waiting_for_base.len(), 1);
        assert!(fields.contains(&("e.toml", "id")), "{fields:?}");
        assert_eq!(catalog.errors.len(), 3);
    }

    #[test]
    fn the_cache_notices_added_changed_and_removed_manifests() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = vec![dir.path().to_owned()];
        let text = |id: &str, name: &str| {
            format!(
                "schema = 1\nid = \"{id}\"\nname = \"{name}\"\nvendor = \"V\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\n",
                tests::X,
                tests::ED
            )
        };
        let cache = ScanCache::default();
        assert!(cache.scan(&dirs).products.is_empty());
        std::fs::write(dir.path().join("a.toml"), text("a", "First")).expect("write");
        assert_eq!(cache.scan(&dirs).products["a"].name, "First");
        std::fs::write(dir.path().join("a.toml"), text("a", "Second name")).expect("write");
        assert_eq!(
            cache.scan(&dirs).products["a"].name,
            "Second name",
            "a changed length is noticed"
        );
        std::fs::remove_file(dir.path().join("a.toml")).expect("remove");
        assert!(cache.scan(&dirs).products.is_empty());
    }

    /// A temporary "system" folder and a per-user one; the system folder's expected owner is
    /// whoever owns the folder, so the test runs as any user.
    #[cfg(unix)]
    struct Folders {
        _dir: tempfile::TempDir,
        system: SystemFolder,
        user: PathBuf,
    }

    #[cfg(unix)]
    fn folders() -> Folders {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let system = dir.path().join("system");
        let user = dir.path().join("user");
        for folder in [&system, &user] {
            std::fs::create_dir(folder).expect("mkdir");
            std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let owner = std::fs::metadata(&system).expect("metadata").uid();
        Folders {
            _dir: dir,
            system: SystemFolder {
                path: system,
                trusted: Trusted::Uid(owner),
            },
            user,
        }
    }

    #[cfg(unix)]
    fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[cfg(unix)]
    fn scan_both(f: &Folders) -> Catalog {
        scan_with(&[f.system.path.clone(), f.user.clone()], Some(&f.system))
    }

    #[cfg(unix)]
    #[test]
    fn the_system_manifest_wins_over_a_per_user_one() {
        let f = folders();
        let system_file = f.system.path.join("acme.toml");
        write_mode(&system_file, &text("acme-studio", ""), 0o644);
        // A per-user manifest with the same id, pointing elsewhere: sorted after, read after,
        // and still it must not win (today's "later wins" let it).
        let user_file = f.user.join("acme.toml");
        write_mode(
            &user_file,
            &text("acme-studio", "").replace("127.0.0.1:4711", "203.0.113.9:4711"),
            0o644,
        );
        write_mode(&f.user.join("own.toml"), &text("own-tool", ""), 0o644);
        let catalog = scan_both(&f);
        assert_eq!(catalog.products["acme-studio"].file, system_file);
        assert_eq!(
            catalog.products["acme-studio"].address.as_deref(),
            Some("127.0.0.1:4711")
        );
        assert!(
            catalog.products.contains_key("own-tool"),
            "per-user products still install"
        );
        let [refused] = &catalog.errors[..] else {
            panic!("{:?}", catalog.errors)
        };
        assert_eq!(refused.file, user_file);
        assert_eq!(refused.field, "id");
        assert_eq!(
            refused.reason,
            format!(
                "\"acme-studio\" is installed for everyone by {}: the system manifest wins over a per-user one",
                system_file.display()
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_system_manifest_others_can_write_is_refused_and_keeps_its_id() {
        let f = folders();
        write_mode(
            &f.system.path.join("a.toml"),
            &text("acme-studio", ""),
            0o666,
        );
        write_mode(
            &f.system.path.join("b.toml"),
            &text("acme-export", ""),
            0o644,
        );
        write_mode(&f.user.join("a.toml"), &text("acme-studio", ""), 0o644);
        let catalog = scan_both(&f);
        assert_eq!(catalog.products.keys().collect::<Vec<_>>(), ["acme-export"]);
        let reasons: Vec<(&str, &str)> = catalog
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason.as_str()))
            .collect();
        assert!(
            reasons.contains(&(
                "-",
                "refused: a manifest in the system folder must be writable only by root, and it is writable by its group and every user (mode 0666)"
                    .replace("root", &match f.system.trusted { Trusted::Uid(0) => "root".to_owned(), Trusted::Uid(uid) => format!("uid {uid}"), Trusted::Sids(_) => unreachable!("a Unix folder") })
                    .as_str()
            )),
            "{reasons:?}"
        );
        // The per-user manifest does not take over the id of the refused system one.
        assert!(
            reasons
                .iter()
                .any(|(field, reason)| *field == "id" && reason.contains("installed for everyone")),
            "{reasons:?}"
        );
        assert_eq!(catalog.errors.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_system_folder_others_can_write_or_not_owned_by_the_administrator_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let f = folders();
        write_mode(
            &f.system.path.join("a.toml"),
            &text("acme-studio", ""),
            0o644,
        );
        assert!(
            scan_both(&f).errors.is_empty(),
            "a sound system folder is trusted"
        );

        std::fs::set_permissions(&f.system.path, std::fs::Permissions::from_mode(0o775))
            .expect("chmod");
        let catalog = scan_both(&f);
        assert!(catalog.products.is_empty());
        assert_eq!(catalog.errors.len(), 1);
        assert!(
            catalog.errors[0]
                .reason
                .ends_with("and it is writable by its group (mode 0775)"),
            "{}",
            catalog.errors[0]
        );
        assert!(catalog.errors[0].reason.contains("the system folder"));

        std::fs::set_permissions(&f.system.path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let Trusted::Uid(owner) = f.system.trusted else {
            unreachable!("a Unix folder")
        };
        let someone_else = SystemFolder {
            trusted: Trusted::Uid(owner.wrapping_add(1000)),
            ..f.system.clone()
        };
        let catalog = scan_with(std::slice::from_ref(&f.system.path), Some(&someone_else));
        assert!(catalog.products.is_empty());
        assert!(
            catalog.errors[0]
                .reason
                .contains(&format!("it is owned by uid {owner}, not uid")),
            "{}",
            catalog.errors[0]
        );
        // The same folder as a per-user one is not held to the rule.
        let catalog = scan_with(std::slice::from_ref(&f.system.path), None);
        assert!(catalog.products.contains_key("acme-studio"));
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_notices_a_change_of_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let f = folders();
        let file = f.system.path.join("a.toml");
        write_mode(&file, &text("acme-studio", ""), 0o644);
        let dirs = [f.system.path.clone()];
        let cache = ScanCache::default();
        let first = fingerprint(&dirs);
        assert_eq!(cache.scan(&dirs).products.len(), 1);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert_ne!(fingerprint(&dirs), first);
    }
}
