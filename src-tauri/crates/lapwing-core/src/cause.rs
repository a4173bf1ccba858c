//! Why an attempt did not activate: one typed cause per reason, with the data it names.
//!
//! Consumers decide on the variant (which window a notification opens, whether the scheduler
//! has already told the person); the sentence a person reads comes from `Display`, here and
//! nowhere else, so rewording a sentence changes no decision. Serialized, each cause is an
//! object with a stable `code`, its data fields, and `message` (the sentence): scripts and the
//! UI key on `code` and show `message`.

use std::borrow::Cow;
use std::fmt;

use lapwing_discovery::ServerSource;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A server used for an attempt (also named by the causes that concern it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerUsed {
    pub address: String,
    pub source: ServerSource,
}

/// A discovery entry that gave no server, and why (discovery's own error, as text: the
/// cause outlives the run that found it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedServer {
    pub source: ServerSource,
    /// What was left out: the text as written, a DNS name, an mDNS instance.
    pub subject: String,
    pub reason: String,
}

impl fmt::Display for SkippedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.source, self.subject, self.reason)
    }
}

impl From<&lapwing_discovery::Skipped> for SkippedServer {
    fn from(skipped: &lapwing_discovery::Skipped) -> Self {
        Self {
            source: skipped.source,
            subject: skipped.subject.clone(),
            reason: skipped.reason.to_string(),
        }
    }
}

/// One likely cause of a failed or unsent attempt. The variant names are the codes, in
/// kebab-case (see [`Cause::code`]); a code once published never changes. Exhaustive on
/// purpose: a new cause must be given its window and its words wherever causes are matched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Cause {
    /// Silence, and the clock not checked: what an older Lapwing guessed first. No longer
    /// given (the clock is blamed only when measured off), still read from state files.
    ClockMayBeOff,
    /// Silence, and a time server measured this machine's clock off by more than the server
    /// allows: the likely cause, named first. Positive: this clock is ahead.
    ClockOff { offset_secs: i64, server: String },
    /// Silence, and a time server measured this machine's clock right: not the cause.
    ClockRight { offset_secs: i64, server: String },
    /// Silence, and the system says its clock is synchronized (no time server was measured).
    ClockSynchronized,
    /// Silence, and the clock could not be checked, with why.
    ClockNotChecked { reason: String },
    /// Not sent: the clock is behind a time already seen (an accepted answer's ServerTime,
    /// a record's, the state's last write) by more than a slip explains.
    ClockMovedBack { by_secs: u64 },
    /// Silence with a key: the server drops keys it does not accept without a word.
    KeyMayBeRefused,
    /// Silence without a key: the server may offer no evaluation.
    EvaluationMayNotBeOffered,
    /// Silence from every server tried, in the order tried.
    Unreachable { tried: Vec<ServerUsed> },
    /// A signed answer whose ServerData failed its checks; the previous grant stands.
    InvalidServerData { address: String, error: String },
    /// Datagrams that arrived but failed their checks, with the last reason.
    DatagramsRejected {
        count: u64,
        address: String,
        last_error: String,
    },
    /// Not sent: the machine policy forbids evaluations and no key is stored.
    EvaluationDisabled,
    /// Not sent: no key, and the product offers no evaluation.
    NoLicenseKey,
    /// Not sent: the evaluation is over and no key is stored.
    EvaluationEnded,
    /// Not sent: the manifest names another server key than the one the stored license key
    /// was entered for; the person confirms by entering the key again.
    ServerKeyChanged,
    /// Not sent: discovery found no server; what it left out, and why.
    NoServerFound { skipped: Vec<SkippedServer> },
    /// The license has expired (said when nothing more specific is known).
    LicenseExpired,
    /// A sentence recorded by an older Lapwing, whose state files kept diagnoses as text.
    Recorded { message: String },
    /// The machine at `address` said nothing listens on that port (ICMP port unreachable):
    /// the server is not running there. Evidence, not a guess: named first.
    ServerRefused { address: String },
    /// The network said there is no route to `address` (ICMP host or network unreachable,
    /// or no route at all).
    NoRoute { address: String },
    /// The person's server override did not answer. Said also when another server then
    /// answered (the machine policy lets the client fall back to discovery).
    OverrideSilent { address: String },
    /// The person's server override names a host that could not be found (DNS), with why.
    OverrideNotFound { address: String, reason: String },
}

impl Cause {
    /// The stable code scripts and the UI key on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ClockMayBeOff => "clock-may-be-off",
            Self::ClockOff { .. } => "clock-off",
            Self::ClockRight { .. } => "clock-right",
            Self::ClockSynchronized => "clock-synchronized",
            Self::ClockNotChecked { .. } => "clock-not-checked",
            Self::ClockMovedBack { .. } => "clock-moved-back",
            Self::KeyMayBeRefused => "key-may-be-refused",
            Self::EvaluationMayNotBeOffered => "evaluation-may-not-be-offered",
            Self::Unreachable { .. } => "unreachable",
            Self::InvalidServerData { .. } => "invalid-server-data",
            Self::DatagramsRejected { .. } => "datagrams-rejected",
            Self::EvaluationDisabled => "evaluation-disabled",
            Self::NoLicenseKey => "no-license-key",
            Self::EvaluationEnded => "evaluation-ended",
            Self::ServerKeyChanged => "server-key-changed",
            Self::NoServerFound { .. } => "no-server-found",
            Self::LicenseExpired => "license-expired",
            Self::Recorded { .. } => "recorded",
            Self::ServerRefused { .. } => "server-refused",
            Self::NoRoute { .. } => "no-route",
            Self::OverrideSilent { .. } => "override-silent",
            Self::OverrideNotFound { .. } => "override-not-found",
        }
    }

    /// A few words for where a sentence does not fit (the tray menu's line): the sentence's
    /// gist, without the advice.
    pub fn short(&self) -> Cow<'static, str> {
        match self {
            Self::ClockMayBeOff => "this machine's clock may be off".into(),
            Self::ClockOff { .. } => "this machine's clock is off".into(),
            Self::ClockRight { .. } | Self::ClockSynchronized => "the clock is right".into(),
            Self::ClockNotChecked { .. } => "the clock could not be checked".into(),
            Self::ClockMovedBack { .. } => "this machine's clock was moved back".into(),
            Self::KeyMayBeRefused => "key not accepted".into(),
            Self::EvaluationMayNotBeOffered => "no evaluation offered".into(),
            Self::Unreachable { .. } => "no answer from the server".into(),
            Self::InvalidServerData { .. } | Self::DatagramsRejected { .. } => {
                "the server's answer was refused".into()
            }
            Self::EvaluationDisabled => {
                "evaluation disabled by the administrator (machine policy)".into()
            }
            Self::NoLicenseKey => "no license key".into(),
            Self::EvaluationEnded => "the evaluation has ended".into(),
            Self::ServerKeyChanged => "the server key changed: enter the key again".into(),
            Self::NoServerFound { .. } => "no server found".into(),
            Self::LicenseExpired => "the license has expired".into(),
            // An older Lapwing's sentence: its first clause is all the structure it has.
            Self::Recorded { message } => message
                .split_once(": ")
                .map_or(message.as_str(), |(head, _)| head)
                .trim()
                .to_owned()
                .into(),
            Self::ServerRefused { .. } => "the server is not running".into(),
            Self::NoRoute { .. } => "no route to the server".into(),
            Self::OverrideSilent { .. } => "the server override did not answer".into(),
            Self::OverrideNotFound { .. } => "the server override was not found".into(),
        }
    }

    /// The likely causes of silence from every server tried, with no other evidence, most
    /// likely first (profile §1: never a bare "network error"); the engine ranks what it knows
    /// with [`crate::ranking::rank`]. The clock is not among them: it is checked after the
    /// silence, and [`crate::ranking::place_clock`] puts what the check found where it belongs.
    pub fn of_silence(has_key: bool, tried: Vec<ServerUsed>) -> Vec<Self> {
        vec![
            if has_key {
                Self::KeyMayBeRefused
            } else {
                Self::EvaluationMayNotBeOffered
            },
            Self::Unreachable { tried },
        ]
    }

    /// The causes whose sentence has no data: an older state file's text that is exactly one
    /// of these sentences reads back as the cause itself.
    fn fixed() -> [Self; 9] {
        [
            Self::ClockMayBeOff,
            Self::ClockSynchronized,
            Self::KeyMayBeRefused,
            Self::EvaluationMayNotBeOffered,
            Self::EvaluationDisabled,
            Self::NoLicenseKey,
            Self::EvaluationEnded,
            Self::ServerKeyChanged,
            Self::LicenseExpired,
        ]
    }

    /// What an older state file's diagnosis sentence becomes.
    pub fn from_recorded(message: String) -> Self {
        Self::fixed()
            .into_iter()
            .find(|cause| cause.to_string() == message)
            .unwrap_or(Self::Recorded { message })
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClockMayBeOff => f.write_str(
                "this machine's clock may be off: the server ignores requests more than 30 s away from its time (`lapctl doctor` compares it with a time server)",
            ),
            Self::ClockOff {
                offset_secs,
                server,
            } => write!(
                f,
                "this machine's clock is {} {} the time server {server} (measured): the server ignores requests more than 30 s away from its time; set the clock (turn network time on)",
                span(offset_secs.unsigned_abs()),
                if *offset_secs > 0 { "ahead of" } else { "behind" }
            ),
            Self::ClockRight {
                offset_secs,
                server,
            } => write!(
                f,
                "this machine's clock is within {} of the time server {server} (measured): not the cause",
                span(offset_secs.unsigned_abs())
            ),
            Self::ClockSynchronized => f.write_str(
                "this machine's clock is synchronized with network time (the system says so): not the cause",
            ),
            Self::ClockNotChecked { reason } => write!(
                f,
                "this machine's clock could not be checked ({reason}): the server ignores requests more than 30 s away from its time"
            ),
            Self::ClockMovedBack { by_secs } => write!(
                f,
                "this machine's clock is {} behind a time it has already seen (a server's answer or its own earlier run): nothing was sent; set the clock to the right time",
                span(*by_secs)
            ),
            Self::KeyMayBeRefused => f.write_str(
                "the license key may not be accepted for this product, or has no free seat: check it with your vendor",
            ),
            Self::EvaluationMayNotBeOffered => f.write_str(
                "the server may not offer an evaluation for this product: enter a license key",
            ),
            Self::Unreachable { tried } => {
                f.write_str("the server may be unreachable: no answer from ")?;
                for (n, server) in tried.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} ({})", server.address, server.source)?;
                }
                Ok(())
            }
            Self::InvalidServerData { address, error } => write!(
                f,
                "{address} sent a signed answer with invalid ServerData ({error}); the previous activation stands"
            ),
            Self::DatagramsRejected {
                count,
                address,
                last_error,
            } => write!(
                f,
                "{count} datagram(s) from {address} failed their checks ({last_error}): not from this product's server, or damaged"
            ),
            Self::EvaluationDisabled => f.write_str(
                "evaluation disabled by the administrator (machine policy): enter a license key",
            ),
            Self::NoLicenseKey => {
                f.write_str("no license key: enter one with `lapctl key set` or from the tray")
            }
            Self::EvaluationEnded => f.write_str("the evaluation has ended: enter a license key"),
            Self::ServerKeyChanged => f.write_str(
                "this product's server key changed since the license key was entered: enter the key again to confirm (`lapctl key set` or from the tray)",
            ),
            Self::NoServerFound { skipped } => {
                f.write_str("no server found: set one with `lapctl server set HOST:PORT`")?;
                for (n, entry) in skipped.iter().enumerate() {
                    f.write_str(if n == 0 { " (" } else { "; " })?;
                    write!(f, "{entry}")?;
                }
                if !skipped.is_empty() {
                    f.write_str(")")?;
                }
                Ok(())
            }
            Self::LicenseExpired => f.write_str("the license has expired"),
            Self::Recorded { message } => f.write_str(message),
            Self::ServerRefused { address } => write!(
                f,
                "nothing listens at {address}: the server is not running there (its machine refused the request)"
            ),
            Self::NoRoute { address } => write!(
                f,
                "no route to {address}: the network cannot reach that address (check the network connection or VPN)"
            ),
            Self::OverrideSilent { address } => write!(
                f,
                "the server override {address} did not answer: correct it, or clear it to use the product's servers (`lapctl server clear`)"
            ),
            Self::OverrideNotFound { address, reason } => write!(
                f,
                "the server override {address} could not be found ({reason}): correct it, or clear it to use the product's servers (`lapctl server clear`)"
            ),
        }
    }
}

/// A duration as a person reads it: seconds up to five minutes (the offsets that matter
/// against the server's 30 s are read exactly), then minutes, hours, days
/// (rounded down: "3 days" for 3 days and 5 hours).
pub fn span(secs: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 3_600;
    const DAY: u64 = 86_400;
    let (n, unit) = match secs {
        0..300 => return format!("{secs} s"),
        300..7_200 => (secs / MINUTE, "min"),
        7_200..172_800 => (secs / HOUR, "hours"),
        _ => (secs / DAY, "days"),
    };
    format!("{n} {unit}")
}

/// `{"code": …, <data fields>, "message": <the sentence>}`. Written by hand because `message`
/// is not a field: it is derived, and ignored when read back.
impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", self.code())?;
        match self {
            Self::ClockMayBeOff
            | Self::ClockSynchronized
            | Self::KeyMayBeRefused
            | Self::EvaluationMayNotBeOffered
            | Self::EvaluationDisabled
            | Self::NoLicenseKey
            | Self::EvaluationEnded
            | Self::ServerKeyChanged
            | Self::LicenseExpired
            // Its one field is the message itself, written below.
            | Self::Recorded { .. } => {}
            Self::ClockOff {
                offset_secs,
                server,
            }
            | Self::ClockRight {
                offset_secs,
                server,
            } => {
                map.serialize_entry("offset_secs", offset_secs)?;
                map.serialize_entry("server", server)?;
            }
            Self::ClockNotChecked { reason } => map.serialize_entry("reason", reason)?,
            Self::ClockMovedBack { by_secs } => map.serialize_entry("by_secs", by_secs)?,
            Self::Unreachable { tried } => map.serialize_entry("tried", tried)?,
            Self::InvalidServerData { address, error } => {
                map.serialize_entry("address", address)?;
                map.serialize_entry("error", error)?;
            }
            Self::DatagramsRejected {
                count,
                address,
                last_error,
            } => {
                map.serialize_entry("count", count)?;
                map.serialize_entry("address", address)?;
                map.serialize_entry("last_error", last_error)?;
            }
            Self::NoServerFound { skipped } => map.serialize_entry("skipped", skipped)?,
            Self::ServerRefused { address }
            | Self::NoRoute { address }
            | Self::OverrideSilent { address } => map.serialize_entry("address", address)?,
            Self::OverrideNotFound { address, reason } => {
                map.serialize_entry("address", address)?;
                map.serialize_entry("reason", reason)?;
            }
        }
        map.serialize_entry("message", &self.to_string())?;
        map.end()
    }
}

/// A diagnosis as stored: a typed cause, the sentence an older Lapwing wrote, or a cause a
/// newer Lapwing knows and this one does not (its sentence is kept).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Typed(Cause),
    Sentence(String),
    Unknown { message: String },
}

/// Reads a diagnosis list, typed or as an older Lapwing wrote it (sentences): a state file
/// from before the causes were typed still loads, and is not set aside as corrupt.
pub fn deserialize_diagnosis<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Cause>, D::Error> {
    let stored = Vec::<Stored>::deserialize(deserializer)?;
    Ok(stored
        .into_iter()
        .map(|entry| match entry {
            Stored::Typed(cause) => cause,
            Stored::Sentence(text) => Cause::from_recorded(text),
            Stored::Unknown { message } => Cause::Recorded { message },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(address: &str, source: ServerSource) -> ServerUsed {
        ServerUsed {
            address: address.into(),
            source,
        }
    }

    /// One of each variant, with its code. Written out by hand: the codes are a published
    /// interface, so a renamed variant must fail here, not silently change a code.
    fn every_cause() -> Vec<(Cause, &'static str)> {
        vec![
            (Cause::ClockMayBeOff, "clock-may-be-off"),
            (
                Cause::ClockOff {
                    offset_secs: -420,
                    server: "ntp.corp.example:123".into(),
                },
                "clock-off",
            ),
            (
                Cause::ClockRight {
                    offset_secs: 2,
                    server: "ntp.corp.example:123".into(),
                },
                "clock-right",
            ),
            (Cause::ClockSynchronized, "clock-synchronized"),
            (
                Cause::ClockNotChecked {
                    reason: "no time server named".into(),
                },
                "clock-not-checked",
            ),
            (Cause::ClockMovedBack { by_secs: 7_200 }, "clock-moved-back"),
            (Cause::KeyMayBeRefused, "key-may-be-refused"),
            (
                Cause::EvaluationMayNotBeOffered,
                "evaluation-may-not-be-offered",
            ),
            (
                Cause::Unreachable {
                    tried: vec![
                        server("10.0.0.1:4711", ServerSource::Srv),
                        server("10.0.0.2:4711", ServerSource::Manifest),
                    ],
                },
                "unreachable",
            ),
            (
                Cause::InvalidServerData {
                    address: "10.0.0.1:4711".into(),
                    error: "NotAfter is already past".into(),
                },
                "invalid-server-data",
            ),
            (
                Cause::DatagramsRejected {
                    count: 3,
                    address: "10.0.0.1:4711".into(),
                    last_error: "authentication failed".into(),
                },
                "datagrams-rejected",
            ),
            (Cause::EvaluationDisabled, "evaluation-disabled"),
            (Cause::NoLicenseKey, "no-license-key"),
            (Cause::EvaluationEnded, "evaluation-ended"),
            (Cause::ServerKeyChanged, "server-key-changed"),
            (
                Cause::NoServerFound {
                    skipped: vec![SkippedServer {
                        source: ServerSource::Srv,
                        subject: "_lap._udp.acme.example".into(),
                        reason: "no SRV record".into(),
                    }],
                },
                "no-server-found",
            ),
            (Cause::LicenseExpired, "license-expired"),
            (
                Cause::Recorded {
                    message: "an older sentence".into(),
                },
                "recorded",
            ),
            (
                Cause::ServerRefused {
                    address: "127.0.0.1:9".into(),
                },
                "server-refused",
            ),
            (
                Cause::NoRoute {
                    address: "10.0.0.1:4711".into(),
                },
                "no-route",
            ),
            (
                Cause::OverrideSilent {
                    address: "10.0.0.9:4711".into(),
                },
                "override-silent",
            ),
            (
                Cause::OverrideNotFound {
                    address: "lap.corp.invalid:4711".into(),
                    reason: "DNS lookup of lap.corp.invalid failed: no such host".into(),
                },
                "override-not-found",
            ),
        ]
    }

    #[test]
    fn every_cause_has_its_stable_code_in_code_and_in_json() {
        let causes = every_cause();
        let mut codes: Vec<&str> = causes.iter().map(|(_, code)| *code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), causes.len(), "codes are distinct");
        for (cause, code) in causes {
            assert_eq!(cause.code(), code, "{cause:?}");
            let json = serde_json::to_value(&cause).expect("serializes");
            assert_eq!(json["code"], code, "{json}");
            assert_eq!(json["message"], cause.to_string(), "{json}");
            let back: Cause = serde_json::from_value(json.clone()).expect("reads back");
            assert_eq!(back, cause, "{json}");
        }
    }

    #[test]
    fn causes_carry_their_data_as_fields() {
        let json = serde_json::to_value(Cause::DatagramsRejected {
            count: 3,
            address: "10.0.0.1:4711".into(),
            last_error: "authentication failed".into(),
        })
        .expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "code": "datagrams-rejected",
                "count": 3,
                "address": "10.0.0.1:4711",
                "last_error": "authentication failed",
                "message": "3 datagram(s) from 10.0.0.1:4711 failed their checks (authentication failed): not from this product's server, or damaged",
            })
        );
        let json = serde_json::to_value(Cause::Unreachable {
            tried: vec![server("10.0.0.1:4711", ServerSource::Override)],
        })
        .expect("serializes");
        assert_eq!(json["tried"][0]["address"], "10.0.0.1:4711");
        assert_eq!(json["tried"][0]["source"], "override");
    }

    #[test]
    fn the_message_is_ignored_when_read_back() {
        let cause: Cause = serde_json::from_str(
            r#"{"code": "evaluation-ended", "message": "an edited sentence"}"#,
        )
        .expect("reads");
        assert_eq!(cause, Cause::EvaluationEnded);
        assert_eq!(
            cause.to_string(),
            "the evaluation has ended: enter a license key"
        );
    }

    #[test]
    fn sentences_name_their_data() {
        assert_eq!(
            Cause::Unreachable {
                tried: vec![
                    server("10.0.0.1:4711", ServerSource::Srv),
                    server("10.0.0.2:4711", ServerSource::Manifest),
                ]
            }
            .to_string(),
            "the server may be unreachable: no answer from 10.0.0.1:4711 (srv), 10.0.0.2:4711 (manifest)"
        );
        let skipped = |subject: &str| SkippedServer {
            source: ServerSource::Srv,
            subject: subject.into(),
            reason: "no SRV record".into(),
        };
        assert_eq!(
            Cause::NoServerFound { skipped: vec![] }.to_string(),
            "no server found: set one with `lapctl server set HOST:PORT`"
        );
        assert_eq!(
            Cause::NoServerFound {
                skipped: vec![skipped("a.example"), skipped("b.example")]
            }
            .to_string(),
            "no server found: set one with `lapctl server set HOST:PORT` (srv a.example: no SRV record; srv b.example: no SRV record)"
        );
    }

    #[derive(Deserialize)]
    struct Holder(#[serde(deserialize_with = "deserialize_diagnosis")] Vec<Cause>);

    #[test]
    fn older_sentences_read_as_their_cause_or_as_recorded_text() {
        let old = serde_json::json!([
            "evaluation disabled by the administrator (machine policy): enter a license key",
            "no server found: set one with `lapctl server set HOST:PORT` (srv x: y)",
            {"code": "from-a-newer-lapwing", "message": "a newer sentence"},
        ]);
        let Holder(causes) = serde_json::from_value(old).expect("reads");
        assert_eq!(
            causes,
            [
                Cause::EvaluationDisabled,
                Cause::Recorded {
                    message:
                        "no server found: set one with `lapctl server set HOST:PORT` (srv x: y)"
                            .into()
                },
                Cause::Recorded {
                    message: "a newer sentence".into()
                },
            ]
        );
        assert_eq!(causes[1].short(), "no server found");
        assert_eq!(causes[1].code(), "recorded");
    }

    #[test]
    fn the_clock_is_named_first_only_when_measured_off() {
        let silence = || Cause::of_silence(true, Vec::new());
        let off = Cause::ClockOff {
            offset_secs: 3 * 86_400,
            server: "ntp.corp.example:123".into(),
        };
        let mut diagnosis = silence();
        crate::ranking::place_clock(&mut diagnosis, off.clone());
        assert_eq!(diagnosis.first(), Some(&off));
        assert_eq!(
            off.to_string(),
            "this machine's clock is 3 days ahead of the time server ntp.corp.example:123 (measured): the server ignores requests more than 30 s away from its time; set the clock (turn network time on)"
        );
        for fine in [
            Cause::ClockRight {
                offset_secs: -1,
                server: "ntp.corp.example:123".into(),
            },
            Cause::ClockSynchronized,
            Cause::ClockNotChecked {
                reason: "no time server named".into(),
            },
        ] {
            let mut diagnosis = silence();
            crate::ranking::place_clock(&mut diagnosis, fine.clone());
            assert_eq!(diagnosis.first(), Some(&Cause::KeyMayBeRefused), "{fine:?}");
            assert_eq!(diagnosis.last(), Some(&fine));
        }
        assert!(
            !silence().iter().any(|c| c.to_string().contains("clock")),
            "silence alone blames no clock"
        );
        let back = serde_json::to_value(Cause::ClockMovedBack { by_secs: 7_500 }).expect("json");
        assert_eq!(back["by_secs"], 7_500);
        assert!(
            back["message"]
                .as_str()
                .is_some_and(|m| m.contains("2 hours behind")),
            "{back}"
        );
    }

    #[test]
    fn spans_read_as_a_person_says_them() {
        let cases = [
            (0, "0 s"),
            (120, "120 s"),
            (299, "299 s"),
            (300, "5 min"),
            (7_199, "119 min"),
            (7_200, "2 hours"),
            (172_799, "47 hours"),
            (3 * 86_400 + 5 * 3_600, "3 days"),
        ];
        for (secs, text) in cases {
            assert_eq!(span(secs), text, "{secs}");
        }
    }

    #[test]
    fn short_forms_are_the_gist() {
        assert_eq!(
            Cause::NoServerFound { skipped: vec![] }.short(),
            "no server found"
        );
        assert_eq!(Cause::NoLicenseKey.short(), "no license key");
        assert_eq!(
            Cause::EvaluationDisabled.short(),
            "evaluation disabled by the administrator (machine policy)"
        );
        assert_eq!(Cause::EvaluationEnded.short(), "the evaluation has ended");
    }
}
