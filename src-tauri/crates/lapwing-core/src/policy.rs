//! The machine policy an administrator may set (`/etc/lapwing/policy.toml` on Linux): a
//! server for every product, optionally locked so users cannot override it.
//!
//! ```toml
//! [server]
//! address = "lap.corp.example:4711"   # HOST:PORT
//! locked = true                       # users may not set their own server
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the policy is read from; `LAPWING_POLICY` replaces it.
pub fn policy_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LAPWING_POLICY") {
        return PathBuf::from(path);
    }
    #[cfg(windows)]
    {
        std::env::var_os("ProgramData")
            .map_or_else(|| PathBuf::from("C:\\ProgramData"), PathBuf::from)
            .join("Lapwing\\policy.toml")
    }
    #[cfg(target_os = "macos")]
    {
        PathBuf::from("/Library/Application Support/Lapwing/policy.toml")
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        PathBuf::from("/etc/lapwing/policy.toml")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("machine policy {}: {reason}", path.display())]
pub struct PolicyError {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub server: ServerPolicy,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPolicy {
    pub address: Option<String>,
    #[serde(default)]
    pub locked: bool,
}

impl Policy {
    /// Reads the policy; no file means no policy. A broken file is an error (the
    /// administrator meant something: guessing would be worse).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(PolicyError {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let policy: Self = toml::from_str(&text).map_err(|e| PolicyError {
            path: path.to_owned(),
            reason: e.message().to_owned(),
        })?;
        if policy.server.locked && policy.server.address.is_none() {
            return Err(PolicyError {
                path: path.to_owned(),
                reason: "server.locked needs server.address".into(),
            });
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_missing_valid_and_broken_policies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        assert_eq!(Policy::load(&path).expect("absent"), Policy::default());
        std::fs::write(
            &path,
            "[server]\naddress = \"lap.corp.example:4711\"\nlocked = true\n",
        )
        .expect("write");
        let policy = Policy::load(&path).expect("valid");
        assert_eq!(
            policy.server.address.as_deref(),
            Some("lap.corp.example:4711")
        );
        assert!(policy.server.locked);
        std::fs::write(&path, "[server]\nlocked = true\n").expect("write");
        assert!(
            Policy::load(&path)
                .expect_err("locked without address")
                .to_string()
                .contains("needs server.address")
        );
        std::fs::write(&path, "[server]\nadress = \"x:1\"\n").expect("write");
        assert!(
            Policy::load(&path).is_err(),
            "a misspelt key is not silently ignored"
        );
    }
}
