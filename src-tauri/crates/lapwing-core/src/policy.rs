//! The machine policy an administrator may set (`/etc/lapwing/policy.toml` on Linux): a
//! server for every product (optionally locked so users cannot override it), which
//! notifications the desktop shows, and whether products may start an evaluation.
//! `installers/policy.example.toml` documents every key.
//!
//! ```toml
//! [server]
//! address = "lap.corp.example:4711"   # HOST:PORT
//! locked = true                       # users may not set their own server
//! fallback_when_override_silent = true # a user's override that does not answer: try discovery
//!
//! [notifications]
//! enabled = true                      # false: no desktop notification at all
//! warnings = true                     # false: no "ends in …" warnings (profile §8 points)
//!
//! [evaluation]
//! allowed = false                     # products never start an evaluation: a key is needed
//!
//! [discovery]
//! allow_local_addresses = true        # use loopback/link-local servers found by DNS or mDNS
//!
//! [clock]
//! time_server = "ntp.corp.example:123" # asked (one SNTP query) when a server stays silent
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::manifest::{SystemFolder, Trusted};
use crate::platform::Platform;

/// Where the policy is read from; `LAPWING_POLICY` replaces it.
pub fn policy_path() -> PathBuf {
    policy_path_for(Platform::CURRENT, |name| std::env::var_os(name))
}

/// [`policy_path`] on `platform`, with the environment given: `LAPWING_POLICY`, else
/// `%ProgramData%\Lapwing\policy.toml` (Windows' default `C:\ProgramData` when the variable
/// is missing), `/Library/Application Support/Lapwing/policy.toml` on macOS,
/// `/etc/lapwing/policy.toml` on Linux.
pub fn policy_path_for(platform: Platform, var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(path) = var("LAPWING_POLICY") {
        return PathBuf::from(path);
    }
    match platform {
        Platform::Windows => var("ProgramData")
            .map_or_else(|| PathBuf::from("C:\\ProgramData"), PathBuf::from)
            .join("Lapwing\\policy.toml"),
        Platform::MacOs => PathBuf::from("/Library/Application Support/Lapwing/policy.toml"),
        Platform::Linux => PathBuf::from("/etc/lapwing/policy.toml"),
    }
}

/// The rule `path` is held to when it is the platform's own policy file (in a folder only
/// administrators may write); `None` for a file `LAPWING_POLICY` names instead, which is a
/// test's or one person's own choice and governs only the processes given it.
fn guard_for(path: &Path) -> Option<SystemFolder> {
    let platform_path = policy_path_for(Platform::CURRENT, |name| {
        (name != "LAPWING_POLICY")
            .then(|| std::env::var_os(name))
            .flatten()
    });
    if path != platform_path {
        return None;
    }
    Some(SystemFolder {
        path: path.parent()?.to_owned(),
        trusted: Trusted::platform()?,
    })
}

#[derive(Debug, thiserror::Error)]
#[error("machine policy {}: {reason}", path.display())]
pub struct PolicyError {
    pub path: PathBuf,
    pub reason: String,
}

// Unknown keys are refused everywhere (`deny_unknown_fields`): a misspelt `[evaluation]
// alowed = false` silently ignored would leave evaluations on against the administrator's will.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub server: ServerPolicy,
    #[serde(default)]
    pub notifications: NotificationPolicy,
    #[serde(default)]
    pub evaluation: EvaluationPolicy,
    #[serde(default)]
    pub discovery: DiscoveryPolicy,
    #[serde(default)]
    pub clock: ClockPolicy,
    /// Products provisioned for the customer's intermediate server (`crate::provision`).
    #[serde(default)]
    pub provision: Vec<crate::provision::Provision>,
}

/// How this machine's clock is checked when a server stays silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockPolicy {
    /// A time server, `HOST:PORT` (NTP's port is 123), asked with one SNTP query to measure
    /// the clock. Preferred to the system's own (systemd-timesyncd's `NTP=`), which is used
    /// when this is not set.
    pub time_server: Option<String>,
}

/// What discovery may use of what the network says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryPolicy {
    /// `true`: loopback, unspecified, multicast, broadcast and link-local addresses found by
    /// DNS SRV, DNS-SD or mDNS are used (a LAP server on this machine or its link). By
    /// default they are dropped, so a hostile DNS server or LAN cannot point the app at a
    /// local service; the override, the policy's server and the manifest's address are
    /// never dropped.
    pub allow_local_addresses: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPolicy {
    pub address: Option<String>,
    #[serde(default)]
    pub locked: bool,
    /// When a user's server override does not answer: `true` (the default), the servers
    /// discovery finds are tried next, and the status says the override did not answer and
    /// which server did; `false`, nothing else is asked and the attempt fails, the override
    /// named first.
    #[serde(default = "fallback_by_default")]
    pub fallback_when_override_silent: bool,
}

fn fallback_by_default() -> bool {
    true
}

impl Default for ServerPolicy {
    fn default() -> Self {
        Self {
            address: None,
            locked: false,
            fallback_when_override_silent: fallback_by_default(),
        }
    }
}

/// Which of the engine's events reach the person. The warning points themselves are fixed by
/// the profile (§8: 60 and 30 days, weekly, daily, hourly): a policy may silence them, not
/// move them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationPolicy {
    /// `false`: the engine gives no event at all (warnings, recoveries, "needs you"); the
    /// status still says everything.
    pub enabled: bool,
    /// `false`: no warnings before an end (licenses renewed centrally, say); the other events
    /// still come.
    pub warnings: bool,
}

impl Default for NotificationPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            warnings: true,
        }
    }
}

impl NotificationPolicy {
    /// Whether "ends in …" warnings are shown (and so worth waking up for).
    pub fn warnings_shown(&self) -> bool {
        self.enabled && self.warnings
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationPolicy {
    /// `false`: no product starts an evaluation (nothing is sent without a key), and one
    /// already running no longer counts: the product is unlicensed until a key is entered.
    pub allowed: bool,
}

impl Default for EvaluationPolicy {
    fn default() -> Self {
        Self { allowed: true }
    }
}

impl Policy {
    /// Reads the policy; no file means no policy. A broken file is an error (the
    /// administrator meant something: guessing would be worse). The platform's own policy
    /// file is held to the products folder's rule (see [`guard_for`]).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::load_guarded(path, guard_for(path).as_ref())
    }

    /// [`Policy::load`], refusing a file that exists when anyone but `guard`'s administrators
    /// may write it or its folder: the policy locks the server, provisions products and turns
    /// evaluations off for every account, so a user who could write it could send everyone's
    /// keys to a server of their own.
    pub fn load_guarded(path: &Path, guard: Option<&SystemFolder>) -> Result<Self, PolicyError> {
        if let Some(guard) = guard
            && path.exists()
            && let Some(reason) = guard
                .folder_refusal()
                .or_else(|| guard.refusal_of(path, "it"))
        {
            return Err(PolicyError {
                path: path.to_owned(),
                reason,
            });
        }
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
        Self::parse(&text, path)
    }

    /// Validates policy text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError {
            path: path.to_owned(),
            // The line, so the administrator finds the key the message names.
            reason: match e.span() {
                Some(span) => format!(
                    "line {}: {}",
                    text[..span.start.min(text.len())].matches('\n').count() + 1,
                    e.message()
                ),
                None => e.message().to_owned(),
            },
        })?;
        if let Some(server) = &policy.clock.time_server
            && let Err(e) = lapwing_discovery::parse_host_port(server)
        {
            return Err(PolicyError {
                path: path.to_owned(),
                reason: format!("clock.time_server: {e}"),
            });
        }
        for (index, entry) in policy.provision.iter().enumerate() {
            entry.check(index + 1).map_err(|e| PolicyError {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        }
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
    use crate::platform::{as_windows, fake_env as env};

    #[test]
    fn each_platform_reads_the_policy_from_its_machine_wide_folder() {
        assert_eq!(
            policy_path_for(Platform::Linux, env(&[])),
            PathBuf::from("/etc/lapwing/policy.toml")
        );
        assert_eq!(
            policy_path_for(Platform::MacOs, env(&[("HOME", "/Users/a")])),
            PathBuf::from("/Library/Application Support/Lapwing/policy.toml"),
            "the machine's folder, not the user's"
        );
        let windows = |vars| as_windows(&policy_path_for(Platform::Windows, env(vars)));
        assert_eq!(
            windows(&[("ProgramData", r"D:\Data")]),
            r"D:\Data\Lapwing\policy.toml"
        );
        assert_eq!(
            windows(&[]),
            r"C:\ProgramData\Lapwing\policy.toml",
            "Windows' default when the variable is missing"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_policy_anyone_but_the_administrator_may_write_is_refused() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("lapwing");
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = folder.join("policy.toml");
        let me = std::fs::metadata(&folder).expect("metadata").uid();
        let guard = |uid| SystemFolder {
            path: folder.clone(),
            trusted: Trusted::Uid(uid),
        };
        let chmod = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };

        // No file: no policy, whoever may write the folder (nothing to trust or distrust).
        assert_eq!(
            Policy::load_guarded(&path, Some(&guard(me.wrapping_add(1)))).expect("absent"),
            Policy::default()
        );
        std::fs::write(&path, "[evaluation]\nallowed = false\n").expect("write");
        chmod(&path, 0o644);
        let policy = Policy::load_guarded(&path, Some(&guard(me))).expect("trusted");
        assert!(!policy.evaluation.allowed);

        chmod(&path, 0o666);
        let refused = Policy::load_guarded(&path, Some(&guard(me))).expect_err("world-writable");
        assert!(
            refused
                .to_string()
                .ends_with("refused: it must be writable only by uid {me}, and it is writable by its group and every user (mode 0666)".replace("uid {me}", &if me == 0 { "root".to_owned() } else { format!("uid {me}") }).as_str()),
            "{refused}"
        );
        chmod(&path, 0o644);
        chmod(&folder, 0o777);
        let refused = Policy::load_guarded(&path, Some(&guard(me))).expect_err("folder");
        assert!(
            refused.to_string().contains("refused: the system folder")
                && refused
                    .to_string()
                    .contains("writable by its group and every user"),
            "{refused}"
        );
        chmod(&folder, 0o755);
        let refused =
            Policy::load_guarded(&path, Some(&guard(me.wrapping_add(1)))).expect_err("owner");
        assert!(
            refused
                .to_string()
                .contains(&format!("it is owned by uid {me}")),
            "{refused}"
        );
        // A file LAPWING_POLICY names is the person's own choice: not held to the rule.
        chmod(&path, 0o666);
        assert!(Policy::load_guarded(&path, None).is_ok());
        assert!(guard_for(&path).is_none(), "not the platform's own file");
    }

    #[test]
    fn lapwing_policy_replaces_the_path_on_every_platform() {
        for platform in [Platform::Linux, Platform::MacOs, Platform::Windows] {
            assert_eq!(
                policy_path_for(
                    platform,
                    env(&[
                        ("LAPWING_POLICY", "/tmp/p.toml"),
                        ("ProgramData", r"D:\Data")
                    ])
                ),
                PathBuf::from("/tmp/p.toml")
            );
        }
    }

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

    /// The documented example is the implementation's: it reads as the defaults, and its
    /// commented-out server reads too.
    #[test]
    fn the_installed_example_reads_as_documented() {
        let example = include_str!("../../../../installers/policy.example.toml");
        assert_eq!(load(example).expect("example"), Policy::default());
        let with_server = example
            .replace(
                "# address = \"lap.corp.example:4711\"\n",
                "address = \"lap.corp.example:4711\"\n",
            )
            .replace("# time_server = ", "time_server = ")
            .replace("locked = false", "locked = true");
        let policy = load(&with_server).expect("example with a server");
        assert_eq!(
            policy.server.address.as_deref(),
            Some("lap.corp.example:4711")
        );
        assert!(policy.server.locked);
        assert_eq!(
            policy.clock.time_server.as_deref(),
            Some("ntp.corp.example:123")
        );

        // The commented-out provisioning, with real keys in place of the placeholders.
        let keys = lap_proto::ServerSecretKeys::from_bytes([5; 32], &[6; 32]);
        let provisioned = example
            .replace("# [[provision]]", "[[provision]]")
            .replace("# product = ", "product = ")
            .replace("# name = ", "name = ")
            .replace("# x25519 = ", "x25519 = ")
            .replace("# ed25519 = ", "ed25519 = ")
            .replace(
                "# address = \"lap.corp.example:4711\"          #",
                "address = \"lap.corp.example:4711\" #",
            )
            .replace("# response_room = ", "response_room = ")
            .replace(
                "INTERMEDIATE_X25519",
                &hex::encode(keys.public().x25519_bytes()),
            )
            .replace(
                "INTERMEDIATE_ED25519",
                &hex::encode(keys.public().ed25519_bytes()),
            );
        let policy = load(&provisioned).expect("example with a provisioned product");
        assert_eq!(policy.provision.len(), 1, "{provisioned}");
        let entry = policy.provision[0].check(1).expect("a valid entry");
        assert_eq!(entry.name, "Example Corp license server");
        assert_eq!(entry.address.as_deref(), Some("lap.corp.example:4711"));
        assert_eq!(entry.response_room, 256);
    }

    fn load(text: &str) -> Result<Policy, PolicyError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).expect("write");
        Policy::load(&path)
    }

    #[test]
    fn notifications_and_evaluations_default_to_on() {
        let policy = load("").expect("empty");
        assert!(policy.notifications.enabled && policy.notifications.warnings);
        assert!(policy.notifications.warnings_shown());
        assert!(policy.evaluation.allowed);
        // A section with only some of its keys keeps the others' defaults.
        let policy = load("[notifications]\nwarnings = false\n").expect("valid");
        assert!(policy.notifications.enabled);
        assert!(!policy.notifications.warnings_shown());
    }

    #[test]
    fn each_key_is_read() {
        let policy = load(
            "[notifications]\nenabled = false\nwarnings = true\n[evaluation]\nallowed = false\n\
             [discovery]\nallow_local_addresses = true\n",
        )
        .expect("valid");
        assert!(policy.discovery.allow_local_addresses);
        assert!(!load("").expect("empty").discovery.allow_local_addresses);
        assert!(!policy.notifications.enabled);
        assert!(
            !policy.notifications.warnings_shown(),
            "disabled notifications silence warnings too"
        );
        assert!(!policy.evaluation.allowed);
    }

    #[test]
    fn falling_back_past_a_silent_override_is_on_unless_turned_off() {
        assert!(
            load("")
                .expect("empty")
                .server
                .fallback_when_override_silent
        );
        assert!(
            load("[server]\nlocked = false\n")
                .expect("valid")
                .server
                .fallback_when_override_silent
        );
        let off = load("[server]\nfallback_when_override_silent = false\n").expect("valid");
        assert!(!off.server.fallback_when_override_silent);
    }

    #[test]
    fn the_time_server_is_read_and_checked() {
        assert_eq!(load("").expect("empty").clock.time_server, None);
        let policy = load("[clock]\ntime_server = \"ntp.corp.example:123\"\n").expect("valid");
        assert_eq!(
            policy.clock.time_server.as_deref(),
            Some("ntp.corp.example:123")
        );
        let e = load("[clock]\ntime_server = \"ntp.corp.example\"\n")
            .expect_err("no port")
            .to_string();
        assert!(e.contains("clock.time_server"), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_line() {
        let cases = [
            ("[evaluation]\nalowed = false\n", "alowed", "line 2"),
            (
                "[notifications]\nenabled = true\nwarn_days = [30, 7, 1]\n",
                "warn_days",
                "line 3",
            ),
            ("[updates]\nchannel = \"beta\"\n", "updates", "line 1"),
            ("[evaluation]\nallowed = \"no\"\n", "bool", "line 2"),
        ];
        for (text, names, line) in cases {
            let e = load(text).expect_err(text).to_string();
            assert!(e.contains(names) && e.contains(line), "{text:?}: {e}");
        }
    }
}
