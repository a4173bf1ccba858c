//! The causes of a failed attempt, most likely first: ranked by what the evidence shows, in
//! one place, so the tray, `lapctl` and `doctor` all name the same cause first.
//!
//! The order, strongest evidence first:
//! 1. What the network said: a machine that refused the request (ICMP port unreachable:
//!    nothing listens there) or no route to a server. Not a guess: the request never reached
//!    a server, so no key, evaluation or clock can explain it.
//! 2. A clock measured off by a time server: the server ignores such requests.
//! 3. Answers that came but failed their checks.
//! 4. What changed just before: a server override set after the last accepted grant, then a
//!    license key stored after it (or never accepted yet); an older override when it was the
//!    only server asked.
//! 5. Servers that stayed silent, then an older override that fell silent with them.
//! 6. A key the server has accepted before: it is still possible that it was revoked or its
//!    seats taken, but silence is then more likely the network's.
//! 7. A clock found right, synchronized, or not checked: last (it rules the clock out, or
//!    says why it could not).
//!
//! Pure: the engine gathers the evidence, this module orders it.

use crate::cause::{Cause, ServerUsed};
use crate::retry::NetworkSaid;
use lapwing_discovery::ServerSource;

/// One server asked, and what the network said about it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTried {
    pub server: ServerUsed,
    pub network: Option<NetworkSaid>,
}

/// What the attempt asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Asked {
    /// An evaluation: no key was sent.
    Evaluation,
    /// A license key stored since the last grant won with a key, or never accepted yet.
    #[default]
    NewKey,
    /// A license key a server has accepted since it was stored: a refusal of it is then
    /// not the likely cause of silence.
    AcceptedKey,
}

/// What is known about an attempt that got no valid answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub asked: Asked,
    /// The server override was set after the last accepted grant (or nothing was ever
    /// granted through it).
    pub override_new: bool,
    /// Every server asked, in the order asked.
    pub tried: Vec<ServerTried>,
    /// Answers that came but failed their checks.
    pub rejections: Vec<Cause>,
    /// Overrides whose host could not be found (`override-not-found`), ranked with the
    /// overrides that did not answer.
    pub overrides_not_found: Vec<Cause>,
    /// The server was forced for this run (`lapctl activate --server`): it is not the
    /// person's override, whatever its source says, and is not called one.
    pub forced: bool,
}

/// The causes of a failed attempt, most likely first (see the module's order). The clock's
/// finding is added afterwards with [`place_clock`]: it is checked only once the servers
/// have been silent.
pub fn rank(evidence: Evidence) -> Vec<Cause> {
    let Evidence {
        asked,
        override_new,
        tried,
        rejections,
        forced,
        overrides_not_found,
    } = evidence;
    let mut ranked: Vec<Cause> = tried
        .iter()
        .filter_map(|t| {
            let address = t.server.address.clone();
            t.network.map(|said| match said {
                NetworkSaid::Refused => Cause::ServerRefused { address },
                NetworkSaid::NoRoute => Cause::NoRoute { address },
            })
        })
        .collect();
    ranked.extend(rejections);
    let silent: Vec<ServerUsed> = tried
        .iter()
        .filter(|t| t.network.is_none())
        .map(|t| t.server.clone())
        .collect();
    let overrides: Vec<Cause> = if forced {
        Vec::new()
    } else {
        overrides_not_found
            .into_iter()
            .chain(silent_overrides(&tried, None))
            .collect()
    };
    // Only a server that received the request can have refused a key or an evaluation:
    // when every server refused it or could not be reached, neither is a cause.
    let request_cause = (!silent.is_empty()).then_some(match asked {
        Asked::Evaluation => Cause::EvaluationMayNotBeOffered,
        Asked::NewKey | Asked::AcceptedKey => Cause::KeyMayBeRefused,
    });
    let request_is_new = asked != Asked::AcceptedKey;
    // An override that was the only server asked is the one to look at; one that kept
    // working before and fell silent with every other server is not singled out: the
    // silence is then more likely the network's than the override's.
    let only_overrides_asked = tried
        .iter()
        .all(|t| t.server.source == ServerSource::Override);
    if override_new {
        ranked.extend(overrides.iter().cloned());
    }
    if request_is_new {
        ranked.extend(request_cause.clone());
    }
    if !override_new && only_overrides_asked {
        ranked.extend(overrides.iter().cloned());
    }
    if !silent.is_empty() {
        ranked.push(Cause::Unreachable { tried: silent });
    }
    if !override_new && !only_overrides_asked {
        ranked.extend(overrides);
    }
    if !request_is_new {
        ranked.extend(request_cause);
    }
    ranked
}

/// The overrides asked that did not give the winning answer (`winner`: the address that
/// did, if any): said even when another server then activated the product.
pub fn silent_overrides(tried: &[ServerTried], winner: Option<&str>) -> Vec<Cause> {
    tried
        .iter()
        .filter(|t| t.server.source == ServerSource::Override)
        .filter(|t| winner != Some(t.server.address.as_str()))
        .map(|t| Cause::OverrideSilent {
            address: t.server.address.clone(),
        })
        .collect()
}

/// Adds a clock check's finding to a ranked diagnosis: a clock measured off goes after what
/// the network said (a refusal is not the clock's doing) and before everything else; any
/// other finding goes last.
pub fn place_clock(diagnosis: &mut Vec<Cause>, clock: Cause) {
    if matches!(clock, Cause::ClockOff { .. }) {
        let after = diagnosis
            .iter()
            .take_while(|c| matches!(c, Cause::ServerRefused { .. } | Cause::NoRoute { .. }))
            .count();
        diagnosis.insert(after, clock);
    } else {
        diagnosis.push(clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(address: &str, source: ServerSource, network: Option<NetworkSaid>) -> ServerTried {
        ServerTried {
            server: ServerUsed {
                address: address.into(),
                source,
            },
            network,
        }
    }

    fn codes(causes: &[Cause]) -> Vec<&'static str> {
        causes.iter().map(Cause::code).collect()
    }

    fn silence(asked: Asked) -> Evidence {
        Evidence {
            asked,
            tried: vec![tried("10.0.0.1:4711", ServerSource::Manifest, None)],
            ..Evidence::default()
        }
    }

    fn clock_off() -> Cause {
        Cause::ClockOff {
            offset_secs: 600,
            server: "ntp.test:123".into(),
        }
    }

    #[test]
    fn a_refusal_is_named_first_and_rules_out_key_and_clock() {
        let evidence = Evidence {
            tried: vec![tried(
                "127.0.0.1:9",
                ServerSource::Manifest,
                Some(NetworkSaid::Refused),
            )],
            ..Evidence::default()
        };
        let mut ranked = rank(evidence);
        assert_eq!(codes(&ranked), ["server-refused"]);
        assert_eq!(
            ranked[0].to_string(),
            "nothing listens at 127.0.0.1:9: the server is not running there (its machine refused the request)"
        );
        place_clock(&mut ranked, clock_off());
        assert_eq!(codes(&ranked), ["server-refused", "clock-off"]);
    }

    #[test]
    fn no_route_comes_before_the_servers_that_were_only_silent() {
        let evidence = Evidence {
            tried: vec![
                tried("10.0.0.1:4711", ServerSource::Srv, None),
                tried(
                    "10.9.9.9:4711",
                    ServerSource::Manifest,
                    Some(NetworkSaid::NoRoute),
                ),
            ],
            ..Evidence::default()
        };
        let ranked = rank(evidence);
        assert_eq!(
            codes(&ranked),
            ["no-route", "key-may-be-refused", "unreachable"]
        );
        assert_eq!(
            ranked[2],
            Cause::Unreachable {
                tried: vec![ServerUsed {
                    address: "10.0.0.1:4711".into(),
                    source: ServerSource::Srv
                }]
            },
            "only the silent servers are called unreachable"
        );
    }

    #[test]
    fn a_new_key_is_named_first_and_an_accepted_one_after_the_network() {
        assert_eq!(
            codes(&rank(silence(Asked::NewKey))),
            ["key-may-be-refused", "unreachable"]
        );
        let accepted = silence(Asked::AcceptedKey);
        assert_eq!(
            codes(&rank(accepted)),
            ["unreachable", "key-may-be-refused"]
        );
        assert_eq!(
            codes(&rank(silence(Asked::Evaluation))),
            ["evaluation-may-not-be-offered", "unreachable"]
        );
    }

    #[test]
    fn a_new_override_is_named_first_an_older_one_after_the_key() {
        let with_override = |override_new| Evidence {
            override_new,
            tried: vec![
                tried("192.0.2.7:4711", ServerSource::Override, None),
                tried("10.0.0.1:4711", ServerSource::Manifest, None),
            ],
            ..Evidence::default()
        };
        assert_eq!(
            codes(&rank(with_override(true))),
            ["override-silent", "key-may-be-refused", "unreachable"]
        );
        assert_eq!(
            codes(&rank(with_override(false))),
            ["key-may-be-refused", "unreachable", "override-silent"],
            "an older override silent with every other server is not blamed first"
        );
        let alone = Evidence {
            override_new: false,
            tried: vec![tried("192.0.2.7:4711", ServerSource::Override, None)],
            ..Evidence::default()
        };
        assert_eq!(
            codes(&rank(alone)),
            ["key-may-be-refused", "override-silent", "unreachable"],
            "the only server asked is the one to look at"
        );
    }

    #[test]
    fn answers_that_failed_their_checks_come_after_the_network_and_before_guesses() {
        let rejected = Cause::DatagramsRejected {
            count: 2,
            address: "10.0.0.1:4711".into(),
            last_error: "authentication failed".into(),
        };
        let evidence = Evidence {
            rejections: vec![rejected.clone()],
            ..silence(Asked::NewKey)
        };
        let ranked = rank(evidence);
        assert_eq!(ranked.first(), Some(&rejected));
    }

    #[test]
    fn the_clock_comes_first_only_when_measured_off() {
        let mut ranked = rank(silence(Asked::NewKey));
        place_clock(&mut ranked, clock_off());
        assert_eq!(
            codes(&ranked),
            ["clock-off", "key-may-be-refused", "unreachable"]
        );
        for fine in [
            Cause::ClockSynchronized,
            Cause::ClockNotChecked {
                reason: "no time server is named".into(),
            },
        ] {
            let mut ranked = rank(silence(Asked::NewKey));
            place_clock(&mut ranked, fine.clone());
            assert_eq!(ranked.last(), Some(&fine));
            assert_eq!(ranked.first(), Some(&Cause::KeyMayBeRefused));
        }
    }

    #[test]
    fn an_override_that_lost_to_another_server_is_still_named() {
        let asked = [
            tried("192.0.2.7:4711", ServerSource::Override, None),
            tried("10.0.0.1:4711", ServerSource::Manifest, None),
        ];
        assert_eq!(
            silent_overrides(&asked, Some("10.0.0.1:4711")),
            [Cause::OverrideSilent {
                address: "192.0.2.7:4711".into()
            }]
        );
        assert!(silent_overrides(&asked, Some("192.0.2.7:4711")).is_empty());
    }

    #[test]
    fn an_override_that_was_not_found_is_ranked_as_an_override() {
        let not_found = Cause::OverrideNotFound {
            address: "lap.corp.invalid:4711".into(),
            reason: "DNS lookup of lap.corp.invalid failed: no such host".into(),
        };
        let evidence = Evidence {
            override_new: true,
            overrides_not_found: vec![not_found.clone()],
            ..silence(Asked::NewKey)
        };
        let ranked = rank(evidence);
        assert_eq!(ranked.first(), Some(&not_found));
        assert_eq!(
            not_found.to_string(),
            "the server override lap.corp.invalid:4711 could not be found (DNS lookup of lap.corp.invalid failed: no such host): correct it, or clear it to use the product's servers (`lapctl server clear`)"
        );
    }

    #[test]
    fn a_server_forced_for_one_run_is_not_called_an_override() {
        let evidence = Evidence {
            forced: true,
            tried: vec![tried("192.0.2.7:4711", ServerSource::Override, None)],
            ..silence(Asked::NewKey)
        };
        assert_eq!(
            codes(&rank(evidence)),
            ["key-may-be-refused", "unreachable"]
        );
    }
}
