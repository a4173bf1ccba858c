//! What discovery answers (candidates in order, and what was left out and why), the settings
//! it starts from, and the precedence rules between the manual override and machine policy.
//! Everything here is pure, so the rules are tested without a network.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::DiscoveryError;
use crate::local::{LocalAddresses, local_kind};

/// How a server was found. The words are the ones `lapctl status --json` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerSource {
    /// The user's manual override (per product, else global).
    Override,
    /// The machine policy's server (a default, or locked).
    Policy,
    /// DNS SRV `_lap._udp.<srv_domain>` from the manifest.
    Srv,
    /// DNS-SD: unicast in the system's search domains, or mDNS on the local link.
    DnsSd,
    /// The manifest's fixed `address`.
    Manifest,
}

impl ServerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Override => "override",
            Self::Policy => "policy",
            Self::Srv => "srv",
            Self::DnsSd => "dns-sd",
            Self::Manifest => "manifest",
        }
    }

    /// Where in the profile's order a server found this way stands.
    pub fn stage(self) -> Stage {
        match self {
            Self::Override | Self::Policy => Stage::Manual,
            Self::Srv => Stage::Srv,
            Self::DnsSd => Stage::DnsSd,
            Self::Manifest => Stage::Manifest,
        }
    }
}

/// The profile's order of sources (§6), most preferred first: the manual choice (the
/// override, else the policy's server; one slot), SRV, DNS-SD, the manifest's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Manual,
    Srv,
    DnsSd,
    Manifest,
}

impl Stage {
    /// Every stage, most preferred first.
    pub const ALL: [Self; 4] = [Self::Manual, Self::Srv, Self::DnsSd, Self::Manifest];
}

/// What one source of a running discovery reports ([`crate::Discovery::sources`]), as it
/// happens: servers found (a source may report several times, e.g. mDNS instances as they
/// answer), and the end of the source. What a source left out comes with its `Found`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Found(Stage, Discovered),
    Done(Stage),
}

impl std::fmt::Display for ServerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server address to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub address: SocketAddr,
    /// The host as written (override, policy, manifest) or found (SRV target, DNS-SD host),
    /// without a trailing dot, for display.
    pub host: String,
    pub source: ServerSource,
    /// How exactly it was found, one line for people, e.g.
    /// `SRV _lap._udp.acme.example priority 10 weight 5 → lap1.acme.example:4711`.
    pub detail: String,
    /// How long the network said this answer holds (the least TTL of the records it came
    /// from; for mDNS the host records' TTL); `None` for an address a person wrote.
    #[serde(skip)]
    pub ttl: Option<Duration>,
}

/// Something a source offered that gave no candidate, and why. `lapctl doctor` prints these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub source: ServerSource,
    /// What was left out: the text as written, a DNS name, an mDNS instance.
    pub subject: String,
    #[serde(serialize_with = "as_display")]
    pub reason: DiscoveryError,
}

fn as_display<S: Serializer>(value: &DiscoveryError, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.source, self.subject, self.reason)
    }
}

/// The answer: servers to try in this order ("first that answers"), and what was left out.
/// Discovery itself never fails: each source's failure is one entry in `skipped`, so a dead
/// DNS server cannot hide the manifest's address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Discovered {
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
}

impl Discovered {
    /// Appends `other` after `self`. A candidate whose address is already listed is dropped:
    /// the first position wins, so a server found both by SRV and as the manifest's address
    /// is tried once, as early as its best source puts it.
    pub fn append(&mut self, other: Discovered) {
        for candidate in other.candidates {
            self.push(candidate);
        }
        self.skipped.extend(other.skipped);
    }

    /// Adds one candidate at the end unless its address is already listed.
    pub fn push(&mut self, candidate: Candidate) {
        if !self
            .candidates
            .iter()
            .any(|c| c.address == candidate.address)
        {
            self.candidates.push(candidate);
        }
    }

    /// Drops the candidates at local addresses (see [`crate::local`]) unless they are
    /// allowed; each one dropped is logged and reported in `skipped`.
    pub(crate) fn without_local(mut self, local: LocalAddresses) -> Self {
        if local == LocalAddresses::Allow {
            return self;
        }
        let mut kept = Vec::with_capacity(self.candidates.len());
        for candidate in std::mem::take(&mut self.candidates) {
            match local_kind(candidate.address.ip()) {
                None => kept.push(candidate),
                Some(kind) => {
                    tracing::info!(
                        address = %candidate.address,
                        host = %candidate.host,
                        source = %candidate.source,
                        %kind,
                        "dropped a local address found on the network"
                    );
                    self.skip(
                        candidate.source,
                        format!("{} ({})", candidate.host, candidate.detail),
                        DiscoveryError::LocalAddress {
                            address: candidate.address,
                            kind,
                        },
                    );
                }
            }
        }
        self.candidates = kept;
        self
    }

    /// Keeps the first `limit` candidates; the rest are reported in one entry per source.
    pub(crate) fn capped(mut self, limit: usize) -> Self {
        if self.candidates.len() <= limit {
            return self;
        }
        let left_out = self.candidates.split_off(limit);
        let mut sources: Vec<ServerSource> = Vec::new();
        for c in &left_out {
            if !sources.contains(&c.source) {
                sources.push(c.source);
            }
        }
        for source in sources {
            let addresses: Vec<String> = left_out
                .iter()
                .filter(|c| c.source == source)
                .map(|c| c.address.to_string())
                .collect();
            tracing::info!(%source, left_out = addresses.len(), limit, "too many servers");
            self.skip(
                source,
                addresses.join(", "),
                DiscoveryError::TooMany { limit },
            );
        }
        self
    }

    pub(crate) fn skip(
        &mut self,
        source: ServerSource,
        subject: impl Into<String>,
        reason: DiscoveryError,
    ) {
        self.skipped.push(Skipped {
            source,
            subject: subject.into(),
            reason,
        });
    }

    pub(crate) fn only_skipped(
        source: ServerSource,
        subject: impl Into<String>,
        reason: DiscoveryError,
    ) -> Self {
        let mut out = Self::default();
        out.skip(source, subject, reason);
        out
    }
}

/// Where servers may come from for one product. Addresses are `HOST:PORT` as the user, the
/// administrator or the manifest wrote them; they are validated here again (a hand-edited
/// file may be wrong) and a bad one is reported in [`Discovered::skipped`]. An empty or
/// blank string counts as not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// `lapctl server set --product ID HOST:PORT`.
    pub product_override: Option<String>,
    /// `lapctl server set HOST:PORT`.
    pub global_override: Option<String>,
    /// The machine policy's server.
    pub policy_server: Option<String>,
    /// The machine policy forbids user overrides.
    pub policy_locked: bool,
    /// The manifest's `[server] srv_domain`.
    pub srv_domain: Option<String>,
    /// The manifest's `[server] address`.
    pub manifest_address: Option<String>,
    /// The machine policy's `[discovery] allow_local_addresses`: local addresses found on
    /// the network (see [`crate::local`]) are used instead of dropped.
    pub allow_local_addresses: bool,
}

/// The one manually chosen server, if any, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manual<'a> {
    pub source: ServerSource,
    pub text: &'a str,
    pub detail: &'static str,
}

/// What the settings say before any lookup: the manual slot, notes about settings that lose,
/// and whether automatic discovery (SRV, DNS-SD, manifest) runs at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan<'a> {
    pub manual: Option<Manual<'a>>,
    pub notes: Discovered,
    pub automatic: bool,
}

fn set(value: Option<&String>) -> Option<&str> {
    value.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The precedence rules (profile §6, "a machine policy can set or lock it"):
///
/// | policy | user override | first candidate | then |
/// |---|---|---|---|
/// | locked, with a server | ignored (reported as refused) | the policy's server | nothing else |
/// | locked, no server | ignored (reported as refused) | — | SRV, DNS-SD, manifest |
/// | not locked, with a server | set | the override | SRV, DNS-SD, manifest |
/// | not locked, with a server | not set | the policy's server | SRV, DNS-SD, manifest |
/// | none | set | the override | SRV, DNS-SD, manifest |
///
/// "The override" is the product's if set, else the global one. So an unlocked policy server
/// is a default that fills the override's slot; a user override replaces it (it is not tried
/// as well), and a lock turns the policy server into the only server. A lock without a server
/// means "no manual choice on this machine": automatic discovery only.
pub(crate) fn plan(settings: &ServerSettings) -> Plan<'_> {
    let product = set(settings.product_override.as_ref());
    let global = set(settings.global_override.as_ref());
    let policy = set(settings.policy_server.as_ref());
    let mut notes = Discovered::default();

    if settings.policy_locked {
        let refused = DiscoveryError::RefusedByPolicy {
            locked_to: policy.map(str::to_owned),
        };
        for text in [product, global].into_iter().flatten() {
            notes.skip(ServerSource::Override, text, refused.clone());
        }
        return Plan {
            manual: policy.map(|text| Manual {
                source: ServerSource::Policy,
                text,
                detail: "machine policy (locked)",
            }),
            notes,
            automatic: policy.is_none(),
        };
    }

    let manual = match (product, global) {
        (Some(text), other) => {
            if let Some(other) = other {
                notes.skip(
                    ServerSource::Override,
                    other,
                    DiscoveryError::Superseded {
                        by: "the product's override",
                    },
                );
            }
            Some(Manual {
                source: ServerSource::Override,
                text,
                detail: "manual override for this product",
            })
        }
        (None, Some(text)) => Some(Manual {
            source: ServerSource::Override,
            text,
            detail: "manual override (all products)",
        }),
        (None, None) => None,
    };
    let manual = match (manual, policy) {
        (Some(manual), Some(policy)) => {
            notes.skip(
                ServerSource::Policy,
                policy,
                DiscoveryError::Superseded {
                    by: "the user's override",
                },
            );
            Some(manual)
        }
        (Some(manual), None) => Some(manual),
        (None, Some(text)) => Some(Manual {
            source: ServerSource::Policy,
            text,
            detail: "machine policy default",
        }),
        (None, None) => None,
    };
    Plan {
        manual,
        notes,
        automatic: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        product: Option<&str>,
        global: Option<&str>,
        policy: Option<&str>,
        locked: bool,
    ) -> ServerSettings {
        ServerSettings {
            product_override: product.map(Into::into),
            global_override: global.map(Into::into),
            policy_server: policy.map(Into::into),
            policy_locked: locked,
            srv_domain: Some("acme.example".into()),
            manifest_address: Some("lap.acme.example:4711".into()),
            allow_local_addresses: false,
        }
    }

    fn manual(plan: &Plan<'_>) -> Option<(ServerSource, String)> {
        plan.manual.as_ref().map(|m| (m.source, m.text.to_owned()))
    }

    fn notes(plan: &Plan<'_>) -> Vec<(ServerSource, String, DiscoveryError)> {
        plan.notes
            .skipped
            .iter()
            .map(|s| (s.source, s.subject.clone(), s.reason.clone()))
            .collect()
    }

    #[test]
    fn nothing_manual_means_automatic_only() {
        let s = settings(None, None, None, false);
        let p = plan(&s);
        assert_eq!(manual(&p), None);
        assert!(p.automatic);
        assert!(p.notes.skipped.is_empty());
    }

    #[test]
    fn product_override_beats_global_and_policy_default() {
        let s = settings(
            Some("p.example:1"),
            Some("g.example:2"),
            Some("pol.example:3"),
            false,
        );
        let p = plan(&s);
        assert_eq!(
            manual(&p),
            Some((ServerSource::Override, "p.example:1".into()))
        );
        assert!(p.automatic);
        assert_eq!(
            notes(&p),
            vec![
                (
                    ServerSource::Override,
                    "g.example:2".into(),
                    DiscoveryError::Superseded {
                        by: "the product's override"
                    }
                ),
                (
                    ServerSource::Policy,
                    "pol.example:3".into(),
                    DiscoveryError::Superseded {
                        by: "the user's override"
                    }
                ),
            ]
        );
    }

    #[test]
    fn global_override_when_no_product_override() {
        let p_settings = settings(None, Some("g.example:2"), None, false);
        let p = plan(&p_settings);
        assert_eq!(
            manual(&p),
            Some((ServerSource::Override, "g.example:2".into()))
        );
        assert_eq!(
            p.manual.as_ref().map(|m| m.detail),
            Some("manual override (all products)")
        );
    }

    #[test]
    fn unlocked_policy_is_the_default_in_the_override_slot() {
        let s = settings(None, None, Some("pol.example:3"), false);
        let p = plan(&s);
        assert_eq!(
            manual(&p),
            Some((ServerSource::Policy, "pol.example:3".into()))
        );
        assert!(p.automatic, "a default does not stop SRV, DNS-SD, manifest");
        assert!(p.notes.skipped.is_empty());
    }

    #[test]
    fn locked_policy_is_the_only_server_and_refuses_overrides() {
        let s = settings(
            Some("p.example:1"),
            Some("g.example:2"),
            Some("pol.example:3"),
            true,
        );
        let p = plan(&s);
        assert_eq!(
            manual(&p),
            Some((ServerSource::Policy, "pol.example:3".into()))
        );
        assert!(!p.automatic, "locked: nothing else is tried");
        let refused = DiscoveryError::RefusedByPolicy {
            locked_to: Some("pol.example:3".into()),
        };
        assert_eq!(
            notes(&p),
            vec![
                (
                    ServerSource::Override,
                    "p.example:1".into(),
                    refused.clone()
                ),
                (
                    ServerSource::Override,
                    "g.example:2".into(),
                    refused.clone()
                ),
            ]
        );
        assert_eq!(
            refused.to_string(),
            "refused: the machine policy locks the server to pol.example:3"
        );
    }

    #[test]
    fn lock_without_server_refuses_overrides_but_keeps_automatic_discovery() {
        let s = settings(None, Some("g.example:2"), None, true);
        let p = plan(&s);
        assert_eq!(manual(&p), None);
        assert!(p.automatic);
        assert_eq!(
            notes(&p),
            vec![(
                ServerSource::Override,
                "g.example:2".into(),
                DiscoveryError::RefusedByPolicy { locked_to: None }
            )]
        );
    }

    #[test]
    fn blank_strings_are_unset() {
        let s = settings(Some("  "), Some(""), Some("pol.example:3"), false);
        let p = plan(&s);
        assert_eq!(
            manual(&p),
            Some((ServerSource::Policy, "pol.example:3".into()))
        );
        assert!(p.notes.skipped.is_empty());
    }

    fn cand(addr: &str, source: ServerSource) -> Candidate {
        Candidate {
            address: addr.parse().expect("valid address"),
            host: addr.into(),
            source,
            detail: String::new(),
            ttl: None,
        }
    }

    #[test]
    fn duplicates_keep_their_first_position() {
        let mut out = Discovered::default();
        out.append(Discovered {
            candidates: vec![
                cand("127.0.0.2:4711", ServerSource::Srv),
                cand("[::1]:4711", ServerSource::Srv),
                cand("127.0.0.2:4711", ServerSource::Srv),
            ],
            skipped: vec![],
        });
        out.append(Discovered {
            candidates: vec![
                cand("127.0.0.9:4711", ServerSource::Manifest),
                cand("[::1]:4711", ServerSource::Manifest),
                cand("127.0.0.2:4712", ServerSource::Manifest),
            ],
            skipped: vec![],
        });
        let got: Vec<(String, ServerSource)> = out
            .candidates
            .iter()
            .map(|c| (c.address.to_string(), c.source))
            .collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.2:4711".into(), ServerSource::Srv),
                ("[::1]:4711".into(), ServerSource::Srv),
                ("127.0.0.9:4711".into(), ServerSource::Manifest),
                ("127.0.0.2:4712".into(), ServerSource::Manifest),
            ],
            "same address once, at its first place; another port is another server"
        );
    }

    #[test]
    fn source_words_are_the_status_words() {
        for (source, word) in [
            (ServerSource::Override, "override"),
            (ServerSource::Policy, "policy"),
            (ServerSource::Srv, "srv"),
            (ServerSource::DnsSd, "dns-sd"),
            (ServerSource::Manifest, "manifest"),
        ] {
            assert_eq!(
                serde_json::to_string(&source).expect("serde"),
                format!("\"{word}\"")
            );
            assert_eq!(source.to_string(), word);
            assert_eq!(
                serde_json::from_str::<ServerSource>(&format!("\"{word}\"")).expect("serde"),
                source
            );
        }
        let skipped = Skipped {
            source: ServerSource::Manifest,
            subject: "x".into(),
            reason: DiscoveryError::Mdns("boom".into()),
        };
        assert_eq!(
            serde_json::to_value(&skipped).expect("serde"),
            serde_json::json!({"source": "manifest", "subject": "x", "reason": "mDNS: boom"})
        );
    }
}
