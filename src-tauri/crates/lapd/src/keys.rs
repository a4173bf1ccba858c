//! The server's key directory: two secret files (0600) and the public `[server]` snippet.

use std::path::{Path, PathBuf};

use lap_proto::ServerSecretKeys;
use zeroize::Zeroizing;

use crate::fsutil::write_atomically;

pub const X25519_FILE: &str = "x25519.key";
pub const ED25519_FILE: &str = "ed25519.key";
pub const PUBLIC_FILE: &str = "server.toml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; pass --force to replace the server's keys (clients provisioned with the old keys will stop activating)"
    )]
    Exists { path: PathBuf },
    #[error("{path} must hold 64 hex digits (a 32-byte key)")]
    Format { path: PathBuf },
    #[error("{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("no randomness available from the operating system: {0}")]
    Random(String),
}

/// The public half as a manifest `[server]` snippet, hex encoded.
pub fn public_snippet(keys: &ServerSecretKeys) -> String {
    format!(
        "# Public keys of this lapd: paste into a product manifest.\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\n",
        hex::encode(keys.public().x25519_bytes()),
        hex::encode(keys.public().ed25519_bytes())
    )
}

/// Draws fresh keys and writes them to `dir`.
pub fn generate(dir: &Path, force: bool) -> Result<ServerSecretKeys, KeyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for name in [X25519_FILE, ED25519_FILE] {
        let path = dir.join(name);
        if path.exists() && !force {
            return Err(KeyError::Exists { path });
        }
    }
    let mut x = Zeroizing::new([0u8; 32]);
    let mut ed = Zeroizing::new([0u8; 32]);
    getrandom::fill(x.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
    getrandom::fill(ed.as_mut_slice()).map_err(|e| KeyError::Random(e.to_string()))?;
    let keys = ServerSecretKeys::from_bytes(*x, &ed);
    for (name, secret) in [(X25519_FILE, &x), (ED25519_FILE, &ed)] {
        let path = dir.join(name);
        let text = Zeroizing::new(format!("{}\n", hex::encode(secret.as_slice())));
        write_atomically(&path, text.as_bytes(), Some(0o600)).map_err(io(&path))?;
    }
    let public = dir.join(PUBLIC_FILE);
    write_atomically(&public, public_snippet(&keys).as_bytes(), Some(0o644))
        .map_err(io(&public))?;
    Ok(keys)
}

/// Loads the keys, refusing secret files that other users could read.
pub fn load(dir: &Path) -> Result<ServerSecretKeys, KeyError> {
    let x = read_secret(&dir.join(X25519_FILE))?;
    let ed = read_secret(&dir.join(ED25519_FILE))?;
    Ok(ServerSecretKeys::from_bytes(*x, &ed))
}

fn read_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), out.as_mut_slice()).map_err(|_| KeyError::Format {
        path: path.to_owned(),
    })?;
    Ok(out)
}

/// Reads public keys from a `[server]` snippet (what `keygen` writes as server.toml).
pub fn load_public(path: &Path) -> Result<([u8; 32], [u8; 32]), KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let format = || KeyError::Format {
        path: path.to_owned(),
    };
    let value: toml::Table = toml::from_str(&text).map_err(|_| format())?;
    let server = value
        .get("server")
        .and_then(toml::Value::as_table)
        .ok_or_else(format)?;
    let read = |name: &str| -> Result<[u8; 32], KeyError> {
        let hex_text = server
            .get(name)
            .and_then(toml::Value::as_str)
            .ok_or_else(format)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).map_err(|_| format())?;
        Ok(out)
    };
    Ok((read("x25519")?, read("ed25519")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_refuse_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = generate(dir.path(), false).expect("generate");
        let loaded = load(dir.path()).expect("load");
        assert_eq!(keys.public(), loaded.public());
        assert!(matches!(
            generate(dir.path(), false),
            Err(KeyError::Exists { .. })
        ));
        let (x, ed) = load_public(&dir.path().join(PUBLIC_FILE)).expect("public snippet");
        assert_eq!(&x, keys.public().x25519_bytes());
        assert_eq!(&ed, keys.public().ed25519_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(X25519_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(
                dir.path().join(ED25519_FILE),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod");
            assert!(matches!(
                load(dir.path()),
                Err(KeyError::Permissions { .. })
            ));
        }
    }

    #[test]
    fn malformed_key_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(dir.path(), false).expect("generate");
        write_atomically(&dir.path().join(X25519_FILE), b"nothex\n", Some(0o600)).expect("write");
        let err = load(dir.path()).expect_err("bad file");
        assert!(err.to_string().contains("x25519.key"), "{err}");
    }
}
