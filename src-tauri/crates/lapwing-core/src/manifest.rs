//! Product manifests (profile §6): one TOML file per installed product.
//!
//! A bad manifest is reported with its file, field and reason and never hides the others.
//!
//! This file reads and checks one manifest; `installed` finds every installed one, and
//! `system_folder` says when a manifest installed for everyone can be trusted.

mod installed;
mod system_folder;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use lap_proto::{ServerPublicKeys, Uuid};
use serde::Deserialize;

pub use installed::{Catalog, ScanCache, platform_system_folder, product_dirs, scan, scan_with};
pub use system_folder::{Access, SystemFolder, Trusted, untrusted_because};

/// The Room a manifest gets when it names none (profile §2).
pub const DEFAULT_RESPONSE_ROOM: usize = lap_proto::seed::DEFAULT_RESPONSE_ROOM;

/// Why one manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {field}: {reason}", file.display())]
pub struct ManifestError {
    pub file: PathBuf,
    /// The TOML field at fault, or `-` for the file as a whole.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    schema: u32,
    id: String,
    name: String,
    vendor: String,
    sku: String,
    addon_of: Option<String>,
    #[serde(default)]
    evaluation_days: u32,
    response_room: Option<usize>,
    server: RawServer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    x25519: String,
    ed25519: String,
    srv_domain: Option<String>,
    address: Option<String>,
}

/// A validated product manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Stable slug, unique on the machine.
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub sku: Uuid,
    /// The base product's id, for an add-on.
    pub addon_of: Option<String>,
    pub evaluation_days: u32,
    pub response_room: usize,
    pub server_keys: ServerPublicKeys,
    pub srv_domain: Option<String>,
    pub address: Option<String>,
    /// Where it was read from.
    pub file: PathBuf,
    /// The customer's intermediate server the machine policy provisioned this product for
    /// (`crate::provision`), by the name the status shows; `None`: the vendor's own servers.
    pub through: Option<String>,
}

/// True for the manifest id (and keyring account) alphabet: `[a-z0-9][a-z0-9-]{0,63}`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

pub(crate) fn decode_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        return Some(out);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

impl Manifest {
    /// Reads and validates one manifest file.
    pub fn load(file: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(file).map_err(|e| ManifestError {
            file: file.to_owned(),
            field: "-".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, file)
    }

    /// Validates manifest text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        let error = |field: &str, reason: String| ManifestError {
            file: file.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            // serde names the field in its message; keep the message, which holds no secrets.
            error("-", e.message().to_owned())
        })?;
        if raw.schema != 1 {
            return Err(error(
                "schema",
                format!(
                    "schema {} is not supported (this Lapwing reads schema 1)",
                    raw.schema
                ),
            ));
        }
        if !is_valid_id(&raw.id) {
            return Err(error(
                "id",
                format!(
                    "{:?} is not a slug of lowercase letters, digits and dashes (at most 64)",
                    raw.id
                ),
            ));
        }
        for (field, value) in [("name", &raw.name), ("vendor", &raw.vendor)] {
            if value.trim().is_empty() {
                return Err(error(field, "must not be empty".into()));
            }
        }
        let sku: Uuid = raw
            .sku
            .parse()
            .map_err(|_| error("sku", format!("{:?} is not a UUID", raw.sku)))?;
        if sku.is_nil() {
            return Err(error("sku", "must not be the nil UUID".into()));
        }
        if let Some(base) = &raw.addon_of {
            if !is_valid_id(base) {
                return Err(error("addon_of", format!("{base:?} is not a product id")));
            }
            if *base == raw.id {
                return Err(error(
                    "addon_of",
                    "a product cannot be an add-on of itself".into(),
                ));
            }
        }
        let response_room = raw.response_room.unwrap_or(DEFAULT_RESPONSE_ROOM);
        if response_room > lap_proto::seed::MAX_RESPONSE_ROOM {
            return Err(error(
                "response_room",
                format!(
                    "{response_room} is more than {} (the request would not fit one datagram)",
                    lap_proto::seed::MAX_RESPONSE_ROOM
                ),
            ));
        }
        let x25519 = decode_key(&raw.server.x25519).ok_or_else(|| {
            error(
                "server.x25519",
                "must be 32 bytes in hex (64 digits) or base64".into(),
            )
        })?;
        let ed25519 = decode_key(&raw.server.ed25519).ok_or_else(|| {
            error(
                "server.ed25519",
                "must be 32 bytes in hex (64 digits) or base64".into(),
            )
        })?;
        let server_keys = ServerPublicKeys::from_bytes(x25519, &ed25519).map_err(|e| {
            error(
                "server.ed25519",
                format!("not a usable Ed25519 public key ({e})"),
            )
        })?;
        let srv_domain = raw
            .server
            .srv_domain
            .map(|d| d.trim().trim_end_matches('.').to_owned());
        if srv_domain
            .as_deref()
            .is_some_and(|d| d.is_empty() || d.contains(char::is_whitespace))
        {
            return Err(error("server.srv_domain", "is not a domain name".into()));
        }
        if srv_domain.is_none() && raw.server.address.is_none() {
            // Discovery by DNS-SD alone is allowed, but a manifest with neither is usually a
            // mistake: say so early rather than fail at first activation.
            tracing::debug!(file = %file.display(), "manifest names neither srv_domain nor address");
        }
        Ok(Self {
            id: raw.id,
            name: raw.name.trim().to_owned(),
            vendor: raw.vendor.trim().to_owned(),
            sku,
            addon_of: raw.addon_of,
            evaluation_days: raw.evaluation_days,
            response_room,
            server_keys,
            srv_domain,
            address: raw.server.address.map(|a| a.trim().to_owned()),
            file: file.to_owned(),
            through: None,
        })
    }

    pub fn is_addon(&self) -> bool {
        self.addon_of.is_some()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const X: &str = "4954728102f02d2917df9aabf24634d4a3a3b83312273e818e40da0cf2755623";
    pub(crate) const ED: &str = "a72f4e02db405c0582a48e79f4830538bccc150e4ccda0404e03f4a190e12356";

    pub(crate) fn text(id: &str, extra: &str) -> String {
        format!(
            "schema = 1\nid = \"{id}\"\nname = \"Acme Studio\"\nvendor = \"Acme\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\n{extra}\n[server]\nx25519 = \"{X}\"\ned25519 = \"{ED}\"\naddress = \"127.0.0.1:4711\"\n"
        )
    }

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("acme.toml"))
    }

    #[test]
    fn a_valid_manifest_reads_with_defaults() {
        let m = parse(&text("acme-studio", "")).expect("valid");
        assert_eq!(m.id, "acme-studio");
        assert_eq!(m.response_room, 128);
        assert_eq!(m.evaluation_days, 0);
        assert_eq!(hex::encode(m.server_keys.x25519_bytes()), X);
        assert_eq!(m.address.as_deref(), Some("127.0.0.1:4711"));
        assert!(!m.is_addon());
    }

    #[test]
    fn keys_may_be_base64() {
        let b64 = |h: &str| {
            base64::engine::general_purpose::STANDARD.encode(hex::decode(h).expect("hex"))
        };
        let t = text("acme", "").replace(X, &b64(X)).replace(ED, &b64(ED));
        let m = parse(&t).expect("base64 keys");
        assert_eq!(hex::encode(m.server_keys.ed25519_bytes()), ED);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases = [
            (text("Acme Studio", ""), "id"),
            (
                text("acme", "").replace("schema = 1", "schema = 2"),
                "schema",
            ),
            (
                text("acme", "").replace("6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11", "nope"),
                "sku",
            ),
            (text("acme", "").replace(X, "abcd"), "server.x25519"),
            (
                text("acme", "").replace(ED, &"00".repeat(32)),
                "server.ed25519",
            ),
            (text("acme", "response_room = 5000"), "response_room"),
            (text("acme", "addon_of = \"acme\""), "addon_of"),
            (text("acme", "colour = \"blue\""), "-"),
            ("schema = 1".to_owned(), "-"),
        ];
        for (text, field) in cases {
            let err = parse(&text).expect_err(&text);
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().starts_with("acme.toml: "), "{err}");
        }
    }

    #[test]
    fn ids_are_slugs() {
        for ok in ["a", "acme-studio", "x1", &"a".repeat(64)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "-a", "Acme", "a_b", "a b", "a/b", &"a".repeat(65), "é"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
