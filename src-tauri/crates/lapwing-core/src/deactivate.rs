//! Deactivating a product on this computer (profile 1.1, §9 release): ask the server that
//! granted it to free the seat, or give it up here only. A deactivated product gets no
//! renewal, retry or warning until it is activated again.

use serde::Serialize;

use crate::apply::{Attempted, Outcome, apply};
use crate::cause::Cause;
use crate::engine::{Engine, EngineError};
use crate::ranking::Asked;
use crate::records::{records_dir, remove_record};
use crate::state::StateError;
use lap_proto::Intent;

/// What [`Engine::deactivate`] is asked to do besides the release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeactivateOptions {
    /// Also forget the license key (otherwise kept, to activate again later).
    pub remove_key: bool,
    /// Ask no server: remove the activation here only. The seat stays taken on the server
    /// until its lease runs out.
    pub anyway: bool,
}

/// How a deactivation ended. Serialized with `outcome`: `released`, `kept`, `unanswered`,
/// `deactivated-here`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Deactivation {
    /// The server freed the seat: the activation is removed, the product is deactivated.
    Released,
    /// The server answered with an ordinary grant (it cannot or may not release the seat):
    /// the activation stands, renewed by that answer. `notice` is the server's reason, if
    /// it gave one.
    Kept { notice: Option<String> },
    /// No server answered: nothing was changed. `cause` is the most likely reason.
    Unanswered { cause: Option<Cause> },
    /// No server was asked: the activation was removed here only, and the seat stays taken
    /// on the server until its lease runs out.
    DeactivatedHere,
}

/// What a person reads when a vendor's server answered a release with an ordinary grant and
/// no Notice.
pub const CANNOT_RELEASE: &str = "this vendor's server cannot release seats";

/// What giving up the activation here only means for the seat.
pub const SEAT_STAYS_TAKEN: &str = "the seat stays taken on the server until its lease runs out (the vendor's setting, by default 90 days past the license's end or 180 days)";

impl Deactivation {
    /// One sentence for a person, worded alike in the tray and `lapctl`.
    pub fn sentence(&self, name: &str) -> String {
        match self {
            Self::Released => format!(
                "{name} was deactivated on this computer: its seat is free for another computer"
            ),
            Self::Kept { notice } => format!(
                "{name} stays activated: {}",
                notice.as_deref().unwrap_or(CANNOT_RELEASE)
            ),
            Self::Unanswered { cause } => format!(
                "Nothing was changed: no server answered the release of {name}{}; you can deactivate it here anyway ({SEAT_STAYS_TAKEN})",
                cause
                    .as_ref()
                    .map(|c| format!(" ({})", c.short()))
                    .unwrap_or_default()
            ),
            Self::DeactivatedHere => {
                format!("{name} was deactivated on this computer; {SEAT_STAYS_TAKEN}")
            }
        }
    }
}

impl Engine {
    /// Deactivates a product on this computer. Without `anyway`, sends a release (Intent 1,
    /// CurrentLicenseId = the grant's LicenseId) to the servers that granted it, through the
    /// same discovery and retries as an activation:
    /// - Released: the activation record and the grant are removed, the product is
    ///   deactivated (the key is kept unless `remove_key`);
    /// - an ordinary grant: kept, and stored as any renewal;
    /// - silence: nothing is changed.
    ///
    /// With `anyway`, no server is asked: the record and the grant are removed here.
    pub async fn deactivate(
        &self,
        id: &str,
        options: DeactivateOptions,
    ) -> Result<Deactivation, EngineError> {
        let manifest = self.manifest(id)?;
        if options.anyway {
            self.deactivate_here(id, options.remove_key)?;
            return Ok(Deactivation::DeactivatedHere);
        }
        let lock = self.state_store().lock()?;
        let (state, _) = self.state_store().load(&lock)?;
        drop(lock);
        let product = state
            .products
            .get(id)
            // A sunset holds no seat: the vendor's servers are gone.
            .filter(|p| p.grant.is_some() && p.sunset.is_none())
            .cloned()
            .ok_or_else(|| EngineError::NotActivated(id.to_owned()))?;
        let policy = self.policy()?;
        let facts = self
            .config()
            .identity
            .read(state.pinned_anchor.as_deref())?;
        let key = self.stored_key(id)?;
        let nonce = self.install_nonce(id)?;
        let now = self.config().clock.now();
        let outcome = self
            .exchange(
                &manifest,
                key.as_ref(),
                &facts,
                nonce,
                &product,
                &policy,
                &state,
                None,
                Asked::AcceptedKey,
                Intent::Release,
            )
            .await?;
        let deactivation = match &outcome {
            Outcome::Released { .. } => {
                // The record first: the state never says "deactivated" while the product
                // can still read a grant; a failure here leaves the state as it was, and a
                // release asked again is answered the same (idempotent).
                remove_record(&self.config().data_dir, id).map_err(|source| StateError::Io {
                    path: records_dir(&self.config().data_dir),
                    source,
                })?;
                Deactivation::Released
            }
            Outcome::Accepted { grant, record, .. } => {
                crate::records::write_records(&self.config().data_dir, &[record.as_ref()])
                    .pop()
                    .unwrap_or_else(|| Err(std::io::Error::other("no record written")))
                    .map_err(|source| StateError::Io {
                        path: records_dir(&self.config().data_dir),
                        source,
                    })?;
                Deactivation::Kept {
                    notice: grant.notice.clone(),
                }
            }
            // Silence changes nothing: not even the backoff (the activation is as it was).
            Outcome::Failed { diagnosis, .. } => {
                return Ok(Deactivation::Unanswered {
                    cause: diagnosis.first().cloned(),
                });
            }
            // Not an exchange's outcome (see `Engine::attempt`).
            Outcome::Sunset => return Err(EngineError::NotActivated(id.to_owned())),
            Outcome::NotSent(cause) => {
                return Ok(Deactivation::Unanswered {
                    cause: Some(cause.clone()),
                });
            }
        };
        let attempted = Attempted {
            at: now,
            evaluation_started: None,
            outcome,
            pending: None,
        };
        let anchor_source = facts.anchor_source.as_str();
        self.state_store()
            .update(|state| apply(state, id, &attempted, anchor_source))?;
        if deactivation == Deactivation::Released && options.remove_key {
            self.remove_key(id)?;
        }
        Ok(deactivation)
    }

    /// Removes the activation here only: the record, then the grant; the product is
    /// deactivated. The server is not told.
    fn deactivate_here(&self, id: &str, remove_key: bool) -> Result<(), EngineError> {
        let data_dir = &self.config().data_dir;
        remove_record(data_dir, id).map_err(|source| StateError::Io {
            path: records_dir(data_dir),
            source,
        })?;
        let now = self.config().clock.now();
        let (known, _) = self.state_store().update(|state| {
            let Some(p) = state.products.get_mut(id) else {
                return false;
            };
            {
                p.grant = None;
                p.backoff = None;
                p.last_attempt = None;
                p.warnings_sent.clear();
                p.moved_from_previous_hardware = false;
                p.duplicate = false;
                p.deactivated_at = Some(now);
            }
            true
        })?;
        if !known {
            return Err(EngineError::NotActivated(id.to_owned()));
        }
        if remove_key {
            self.remove_key(id)?;
        }
        Ok(())
    }
}
