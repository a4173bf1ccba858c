//! What the rules decide for a request: an answer, or why there is none. A leaf that the
//! rules and the pools both speak in, so neither has to import the other to say it.

use lap_proto::{ServerData, Uuid};

/// Why a request got no answer. Counted and logged; never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not 137..=1200 bytes.
    Length,
    /// Over the per-source rate.
    RateLimited,
    /// Tag, zero DH: not for this server, or damaged.
    Authentication,
    /// Version, Size, Reserved, nil ids.
    Malformed,
    ClockSkew,
    UnknownSku,
    /// A base SKU with an add-on id, or an add-on SKU without one.
    AddonMismatch,
    BadSeed,
    NoEvaluation,
    EvaluationOver,
    /// The SKU's cap on new evaluation machines per window is reached.
    EvaluationCap,
    UnknownKey,
    NoSeat,
    Expired,
    ResponseTooLarge,
    Store,
    /// A request whose ephemeral key was already answered (duplicate or replay).
    Replayed,
    /// Too many requests inside the clock window to remember them all (see `replay`).
    ReplayGuardFull,
    /// A pool license's key without a PoolRequest: pools go to intermediates only (§10).
    PoolOnly,
    /// An intermediate asked for a SKU it serves from a pool it does not hold (never synced,
    /// or past the pool's NotAfter).
    NoPool,
}

impl DropReason {
    pub const ALL: [Self; 20] = [
        Self::Length,
        Self::RateLimited,
        Self::Authentication,
        Self::Malformed,
        Self::ClockSkew,
        Self::UnknownSku,
        Self::AddonMismatch,
        Self::BadSeed,
        Self::NoEvaluation,
        Self::EvaluationOver,
        Self::EvaluationCap,
        Self::UnknownKey,
        Self::NoSeat,
        Self::Expired,
        Self::ResponseTooLarge,
        Self::Store,
        Self::Replayed,
        Self::ReplayGuardFull,
        Self::PoolOnly,
        Self::NoPool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::RateLimited => "rate-limited",
            Self::Authentication => "authentication",
            Self::Malformed => "malformed",
            Self::ClockSkew => "clock-skew",
            Self::UnknownSku => "unknown-sku",
            Self::AddonMismatch => "addon-mismatch",
            Self::BadSeed => "bad-seed",
            Self::NoEvaluation => "no-evaluation",
            Self::EvaluationOver => "evaluation-over",
            Self::EvaluationCap => "evaluation-cap",
            Self::UnknownKey => "unknown-key",
            Self::NoSeat => "no-seat",
            Self::Expired => "expired",
            Self::ResponseTooLarge => "response-too-large",
            Self::Store => "store-error",
            Self::Replayed => "replayed",
            Self::ReplayGuardFull => "replay-guard-full",
            Self::PoolOnly => "pool-only",
            Self::NoPool => "no-pool",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What the server answers a request the rules accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub license_id: Uuid,
    pub server_data: ServerData,
    /// The encoded ServerData, already fitted to the request's room.
    pub server_data_bytes: Vec<u8>,
    /// The license's non-secret reference, for the log.
    pub license_ref: String,
}

/// Encodes ServerData within the room the client left; the Notice is the first to go.
pub(crate) fn fit(data: &mut ServerData, max: usize) -> Result<Vec<u8>, DropReason> {
    let encoded = data.encode().map_err(|_| DropReason::ResponseTooLarge)?;
    if encoded.len() <= max {
        return Ok(encoded);
    }
    if data.notice.take().is_some() {
        let encoded = data.encode().map_err(|_| DropReason::ResponseTooLarge)?;
        if encoded.len() <= max {
            return Ok(encoded);
        }
    }
    Err(DropReason::ResponseTooLarge)
}
