//! Products provisioned for the customer's own intermediate server (profile 1.1, §10): the
//! machine policy's `[[provision]]` entries name, per product id or per vendor, the server
//! keys, address or SRV domain and Room that replace the manifest's `[server]`.
//!
//! The choice is the administrator's, made at provisioning time (draft §3): a user cannot
//! point a product at another intermediate, and the manifest's vendor keys are not used for a
//! provisioned product. Its activation record still verifies with the vendor's key built into
//! the product, through the Delegation the intermediate copies into every answer.
//!
//! ```toml
//! [[provision]]
//! product = "acme-studio"              # or: vendor = "Acme" (every product of that vendor)
//! name = "Example Corp license server" # shown as "through Example Corp license server"
//! x25519 = "…32 bytes, hex or base64…" # the intermediate's keys (`lapd keygen`)
//! ed25519 = "…"
//! address = "lap.corp.example:4711"    # and/or srv_domain = "corp.example"
//! response_room = 256                  # at least 256, so the Delegation fits (the default)
//! ```

use lap_proto::ServerPublicKeys;
use serde::Deserialize;

use crate::manifest::{Manifest, decode_key};

/// The Room a provisioned product needs at least: ServerData with a Delegation (156 bytes),
/// NotAfter, RenewAfter, Kind and Features.
pub const MIN_PROVISIONED_ROOM: usize = 256;

/// One `[[provision]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    /// The product id it applies to; or
    pub product: Option<String>,
    /// every product whose manifest names this vendor.
    pub vendor: Option<String>,
    /// What the status calls the server; "your organisation's server" when absent.
    pub name: Option<String>,
    pub x25519: String,
    pub ed25519: String,
    pub address: Option<String>,
    pub srv_domain: Option<String>,
    pub response_room: Option<usize>,
}

/// Why a `[[provision]]` entry is refused: the field and the reason (no key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provision #{index} ({field}): {reason}")]
pub struct ProvisionError {
    /// 1-based position in the file.
    pub index: usize,
    pub field: &'static str,
    pub reason: String,
}

/// What a provisioned product is told to use instead of its manifest's `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub name: String,
    pub keys: ServerPublicKeys,
    pub address: Option<String>,
    pub srv_domain: Option<String>,
    pub response_room: usize,
}

/// The words the status uses for a provisioned product's server when the policy names none.
pub const DEFAULT_NAME: &str = "your organisation's server";

impl Provision {
    /// Checks the entry as [`crate::policy::Policy::parse`] reads it, and returns what it
    /// provisions.
    pub fn check(&self, index: usize) -> Result<Provisioned, ProvisionError> {
        let error = |field: &'static str, reason: &str| ProvisionError {
            index,
            field,
            reason: reason.to_owned(),
        };
        match (&self.product, &self.vendor) {
            (Some(_), Some(_)) => {
                return Err(error("product", "name a product or a vendor, not both"));
            }
            (None, None) => return Err(error("product", "name a product or a vendor")),
            (Some(id), None) if !crate::manifest::is_valid_id(id) => {
                return Err(error("product", "is not a product id"));
            }
            (None, Some(vendor)) if vendor.trim().is_empty() => {
                return Err(error("vendor", "must not be empty"));
            }
            _ => {}
        }
        let key = |field: &'static str, text: &str| {
            decode_key(text).ok_or_else(|| error(field, "must be 32 bytes in hex or base64"))
        };
        let x25519 = key("x25519", &self.x25519)?;
        let ed25519 = key("ed25519", &self.ed25519)?;
        let keys = ServerPublicKeys::from_bytes(x25519, &ed25519)
            .map_err(|_| error("ed25519", "is not a usable Ed25519 public key"))?;
        if let Some(address) = &self.address
            && let Err(e) = lapwing_discovery::parse_host_port(address)
        {
            return Err(error("address", &e.to_string()));
        }
        let srv_domain = self
            .srv_domain
            .as_deref()
            .map(|d| d.trim().trim_end_matches('.').to_owned());
        if srv_domain
            .as_deref()
            .is_some_and(|d| d.is_empty() || d.contains(char::is_whitespace))
        {
            return Err(error("srv_domain", "is not a domain name"));
        }
        if self.address.is_none() && srv_domain.is_none() {
            return Err(error(
                "address",
                "name an address or an srv_domain: an intermediate is not found by the vendor's means",
            ));
        }
        let response_room = self.response_room.unwrap_or(MIN_PROVISIONED_ROOM);
        if response_room < MIN_PROVISIONED_ROOM {
            return Err(error(
                "response_room",
                "must be at least 256: the intermediate's Delegation must fit",
            ));
        }
        if response_room > lap_proto::seed::MAX_RESPONSE_ROOM {
            return Err(error(
                "response_room",
                "is more than a request datagram can carry",
            ));
        }
        Ok(Provisioned {
            name: self
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(DEFAULT_NAME)
                .to_owned(),
            keys,
            address: self.address.as_deref().map(|a| a.trim().to_owned()),
            srv_domain,
            response_room,
        })
    }

    fn applies_to(&self, manifest: &Manifest) -> bool {
        match (&self.product, &self.vendor) {
            (Some(id), _) => *id == manifest.id,
            (None, Some(vendor)) => vendor.trim() == manifest.vendor,
            (None, None) => false,
        }
    }
}

/// The entry for `manifest` and its 1-based position: one naming its product id wins over
/// one naming its vendor; the first of each kind counts.
pub fn find<'p>(entries: &'p [Provision], manifest: &Manifest) -> Option<(usize, &'p Provision)> {
    let mut matching = entries
        .iter()
        .enumerate()
        .filter(|(_, p)| p.applies_to(manifest))
        .map(|(i, p)| (i + 1, p));
    let first = matching.next()?;
    if first.1.product.is_some() {
        return Some(first);
    }
    Some(matching.find(|(_, p)| p.product.is_some()).unwrap_or(first))
}

/// `manifest` as the policy provisions it: its `[server]` replaced, its Room at least what
/// the entry asks, and `through` naming the server. Unchanged when no entry applies.
pub fn apply(entries: &[Provision], mut manifest: Manifest) -> Result<Manifest, ProvisionError> {
    let Some((index, entry)) = find(entries, &manifest) else {
        return Ok(manifest);
    };
    let provisioned = entry.check(index)?;
    manifest.server_keys = provisioned.keys;
    manifest.address = provisioned.address;
    manifest.srv_domain = provisioned.srv_domain;
    manifest.response_room = manifest.response_room.max(provisioned.response_room);
    manifest.through = Some(provisioned.name);
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const X: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn ed25519() -> String {
        hex::encode(
            lap_proto::ServerSecretKeys::from_bytes([3; 32], &[4; 32])
                .public()
                .ed25519_bytes(),
        )
    }

    fn manifest(id: &str, vendor: &str) -> Manifest {
        let keys = lap_proto::ServerSecretKeys::from_bytes([1; 32], &[2; 32]);
        let text = format!(
            "schema = 1\nid = \"{id}\"\nname = \"N\"\nvendor = \"{vendor}\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"lap.vendor.example:4711\"\n",
            hex::encode(keys.public().x25519_bytes()),
            hex::encode(keys.public().ed25519_bytes())
        );
        Manifest::parse(&text, Path::new("m.toml")).expect("valid manifest")
    }

    fn entry(product: Option<&str>, vendor: Option<&str>, address: &str) -> Provision {
        Provision {
            product: product.map(str::to_owned),
            vendor: vendor.map(str::to_owned),
            name: Some("Corp server".into()),
            x25519: X.into(),
            ed25519: ed25519(),
            address: Some(address.into()),
            srv_domain: None,
            response_room: None,
        }
    }

    #[test]
    fn a_provisioned_product_uses_the_intermediate_and_names_it() {
        let entries = [entry(Some("acme-studio"), None, "lap.corp.example:4711")];
        let out = apply(&entries, manifest("acme-studio", "Acme")).expect("applies");
        assert_eq!(out.address.as_deref(), Some("lap.corp.example:4711"));
        assert_eq!(hex::encode(out.server_keys.ed25519_bytes()), ed25519());
        assert_eq!(out.response_room, MIN_PROVISIONED_ROOM);
        assert_eq!(out.through.as_deref(), Some("Corp server"));
        // Another product is left as its manifest says.
        let other = apply(&entries, manifest("acme-paint", "Acme")).expect("applies");
        assert_eq!(other, manifest("acme-paint", "Acme"));
        assert!(other.through.is_none());
    }

    #[test]
    fn the_status_names_the_organisations_server_and_only_then() {
        let entries = [entry(Some("acme-studio"), None, "lap.corp.example:4711")];
        let state = crate::state::State::default();
        let through = |m: Manifest| {
            crate::product_status::product_status(&m, &state, 1_800_000_000, true).through_note()
        };
        assert_eq!(
            through(apply(&entries, manifest("acme-studio", "Acme")).expect("applies")),
            Some("Through Corp server (set up by your administrator)".to_owned())
        );
        assert_eq!(through(manifest("acme-studio", "Acme")), None);
    }

    #[test]
    fn a_product_entry_wins_over_a_vendor_entry_wherever_it_stands() {
        let entries = [
            entry(None, Some("Acme"), "vendor-wide.corp.example:4711"),
            entry(Some("acme-studio"), None, "studio.corp.example:4711"),
        ];
        let studio = apply(&entries, manifest("acme-studio", "Acme")).expect("applies");
        assert_eq!(studio.address.as_deref(), Some("studio.corp.example:4711"));
        let paint = apply(&entries, manifest("acme-paint", "Acme")).expect("applies");
        assert_eq!(
            paint.address.as_deref(),
            Some("vendor-wide.corp.example:4711")
        );
        let other = apply(&entries, manifest("globex", "Globex")).expect("applies");
        assert!(other.through.is_none());
    }

    #[test]
    fn each_bad_entry_is_refused_with_its_field() {
        let good = entry(Some("acme-studio"), None, "lap.corp.example:4711");
        let cases: [(Provision, &str); 6] = [
            (
                Provision {
                    vendor: Some("Acme".into()),
                    ..good.clone()
                },
                "product",
            ),
            (
                Provision {
                    product: None,
                    ..good.clone()
                },
                "product",
            ),
            (
                Provision {
                    x25519: "zz".into(),
                    ..good.clone()
                },
                "x25519",
            ),
            (
                Provision {
                    address: Some("no port".into()),
                    ..good.clone()
                },
                "address",
            ),
            (
                Provision {
                    address: None,
                    ..good.clone()
                },
                "address",
            ),
            (
                Provision {
                    response_room: Some(128),
                    ..good.clone()
                },
                "response_room",
            ),
        ];
        for (bad, field) in cases {
            let error = bad.check(2).expect_err(field);
            assert_eq!(error.field, field, "{error}");
            assert_eq!(error.index, 2);
            assert!(!error.to_string().contains(X), "no key material in {error}");
        }
        assert!(good.check(1).is_ok());
    }

    #[test]
    fn a_manifest_asking_more_room_keeps_it() {
        let mut big = manifest("acme-studio", "Acme");
        big.response_room = 400;
        let out = apply(
            &[entry(Some("acme-studio"), None, "lap.corp.example:4711")],
            big,
        )
        .expect("applies");
        assert_eq!(out.response_room, 400);
    }
}
