//! Durable state, the data: what Lapwing knows about each product between runs (grants,
//! attempts, backoff, overrides) and how a state file's bytes decode. Reading and writing the
//! file lives in [`store`].

mod store;

pub use store::{
    LoadReport, Rebuild, STATE_FILE, StateError, StateLock, StateStore, prepare_data_dir,
    write_atomically,
};

use std::collections::BTreeMap;

use lap_proto::{LicenseKind, Uuid};

use crate::cause::Cause;
use serde::{Deserialize, Serialize};

/// The schema this version writes. Older schemas are migrated; newer ones are refused.
pub const STATE_SCHEMA: u32 = 1;

pub use lapwing_discovery::ServerSource;

pub use crate::cause::ServerUsed;

/// What the last successful activation granted (decoded from the signed ServerData).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub license_id: Uuid,
    pub server_time: u64,
    /// Local time when it was received.
    pub received_at: u64,
    pub not_after: Option<u64>,
    pub renew_after: Option<u64>,
    pub kind: Option<LicenseKind>,
    pub in_compliance: Option<bool>,
    #[serde(default)]
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub server: Option<ServerUsed>,
    /// True when the license key in use when this was granted was none (an evaluation).
    #[serde(default)]
    pub without_key: bool,
}

impl Grant {
    /// The grant a verified answer's ServerData describes.
    pub fn from_server_data(
        response: &lap_proto::Response,
        data: lap_proto::ServerData,
        received_at: u64,
        server: Option<ServerUsed>,
        without_key: bool,
    ) -> Self {
        Self {
            license_id: response.license_id,
            server_time: response.server_time,
            received_at,
            not_after: data.not_after,
            renew_after: data.renew_after,
            kind: data.kind,
            in_compliance: data.in_compliance,
            features: data.features,
            notice: data.notice,
            server,
            without_key,
        }
    }
}

/// How the last attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: u64,
    pub outcome: AttemptOutcome,
    /// Likely causes, most likely first.
    #[serde(default, deserialize_with = "crate::cause::deserialize_diagnosis")]
    pub diagnosis: Vec<Cause>,
    pub server: Option<ServerUsed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    Activated,
    /// Silence from every server tried.
    NoAnswer,
    /// An answer that failed a check (signature, echo, TLV): named in the diagnosis.
    RejectedAnswer,
    /// Nothing was sent: a local check failed (no server found, bad key, keyring locked).
    NotSent,
}

/// The retry backoff after failures (profile §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub first_failure_at: u64,
    pub failures: u32,
    pub next_at: u64,
}

/// Everything kept per product installation.
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts of one installation, each kept under its own name in the file"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductState {
    pub client_base_id: Uuid,
    /// Nil for a base product.
    pub client_addon_id: Uuid,
    pub grant: Option<Grant>,
    pub last_attempt: Option<Attempt>,
    pub backoff: Option<Backoff>,
    /// Also in the keyring, so deleting this file does not restart an evaluation.
    pub evaluation_started: Option<u64>,
    /// Warning points already shown, e.g. "not-after/30d" (each at most once).
    #[serde(default)]
    pub warnings_sent: Vec<String>,
    pub server_override: Option<String>,
    /// Whether a license key is stored (the key itself lives only in the keyring): lets the
    /// status be read without a keyring round trip per product.
    #[serde(default)]
    pub has_key: bool,
    /// Whether the keyring is known to hold these client ids, so that a lost state file does
    /// not mint new ones (see `client_ids`). False in a state written before the ids were
    /// kept there: the next provisioning writes them and sets it. Left out of the file
    /// while false, so an older Lapwing's file is written back as it was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_ids_in_keyring: bool,
    /// When the license key was last stored (this clock): a key stored after the last grant
    /// won with a key is new, and the first suspect when the server stays silent
    /// (`ranking`). Unknown in an older state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_set_at: Option<u64>,
    /// When `server_override` was last set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_set_at: Option<u64>,
    /// A new license key entered while the stored one holds a working grant, not accepted
    /// yet (the key itself lives only in the keyring). Left out of the file when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_key: Option<PendingKey>,
    /// How many answers this installation accepted for the product (profile 1.1, §9
    /// Generation), sent with every request. Also in the keyring: the higher of the two is
    /// sent, so a lost state file does not make the server see a restored snapshot.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// The MachineHash (hex) sent with the last accepted answer: when this machine's hash
    /// differs, it is sent as PreviousMachineHash so the server can move the seat (§9). Not
    /// a secret: an HMAC of the anchor under the vendor's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_hash: Option<String>,
    /// The last accepted answer kept the LicenseId after PreviousMachineHash was sent: the
    /// server moved this seat to the new hardware. Cleared by the next accepted answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moved_from_previous_hardware: bool,
    /// The last accepted answer carried Duplicate (§9): this installation looks cloned or
    /// restored from a snapshot. Kept until an accepted answer without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// When the product was deactivated on this computer (its seat released, or given up
    /// here): no renewal, retry or warning until it is activated again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<u64>,
    /// The vendor's final release (§9 sunset), verified: it wins over everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<Sunset>,
}

/// What a verified sunset grant grants, as the status shows it (the grant itself is in
/// `activations/<id>.json` and, when imported, in `sunset/<id>.sunset.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sunset {
    /// When the vendor issued it.
    pub issued: u64,
    /// The grant's signature (base64): tells a new grant from the one already taken.
    pub signature: String,
    pub kind: Option<LicenseKind>,
    #[serde(default)]
    pub features: Vec<String>,
    pub notice: Option<String>,
    /// Where it was read from.
    pub source: String,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A license key kept apart until a server accepts it: the previous key and its grant stay
/// in effect meanwhile. Never holds the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingKey {
    /// When it was entered.
    pub since: u64,
    /// How its latest try ended; none before it was tried.
    pub last_try: Option<Attempt>,
}

impl ProductState {
    /// Deactivated on this computer, or released for good by its vendor: no renewal, retry or
    /// warning until it is activated again (a sunset: ever).
    pub fn is_quiet(&self) -> bool {
        self.sunset.is_some() || self.deactivated_at.is_some()
    }

    pub fn new(client_base_id: Uuid, client_addon_id: Uuid) -> Self {
        Self {
            client_base_id,
            client_addon_id,
            grant: None,
            last_attempt: None,
            backoff: None,
            evaluation_started: None,
            warnings_sent: Vec::new(),
            server_override: None,
            has_key: false,
            client_ids_in_keyring: false,
            key_set_at: None,
            override_set_at: None,
            pending_key: None,
            generation: 0,
            machine_hash: None,
            moved_from_previous_hardware: false,
            duplicate: false,
            deactivated_at: None,
            sunset: None,
        }
    }
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    /// The latest wall-clock time ever seen: a clock set before it moved back.
    #[serde(default)]
    pub highest_time_seen: u64,
    pub global_override: Option<String>,
    /// When `global_override` was last set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_override_set_at: Option<u64>,
    /// The machine anchor source chosen at first activation (profile §3: kept while present).
    pub pinned_anchor: Option<String>,
    /// Where an unreadable state file was set aside when this one was rebuilt.
    #[serde(default)]
    pub recovered_from: Option<String>,
    #[serde(default)]
    pub products: BTreeMap<String, ProductState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            schema: STATE_SCHEMA,
            highest_time_seen: 0,
            global_override: None,
            global_override_set_at: None,
            pinned_anchor: None,
            recovered_from: None,
            products: BTreeMap::new(),
        }
    }
}

impl State {
    /// Decodes a state file's bytes. The reason names a place and a category, never the
    /// text itself (a state file holds no secret, but a corrupt one may hold anything).
    pub fn parse(bytes: &[u8]) -> Result<State, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        serde_json::from_str(text).map_err(|e| {
            format!(
                "not a valid state file (line {}, column {}: {})",
                e.line(),
                e.column(),
                classify(&e)
            )
        })
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated",
    }
}

#[cfg(test)]
mod tests;
