//! The TPM 2.0 endorsement key (EK), the strongest anchor: it survives OS reinstalls and disk
//! swaps.
//!
//! The EK's public key is found in one of three ways, which all give the same canonical bytes
//! (the RSA modulus, big-endian without leading zeros; for ECC, x ‖ y each padded to the
//! curve's size), so whichever one works on a given day, the anchor does not change:
//!
//! 1. the EK certificate in NV (RSA 2048 at 0x01c00002, ECC P-256 at 0x01c0000a): a plain read;
//! 2. the persistent EK at 0x81010001 (ECC: 0x81010002), used only if its public area is
//!    exactly the TCG default template's (so it is the same key the template would give);
//! 3. creating the EK from the TCG default template (RSA 2048 unless the TPM only holds an ECC
//!    certificate): a primary key derived from the endorsement seed, always the same key.
//!
//! Reaching the TPM can hang (a wedged resource manager, a simulator that accepts and never
//! answers), so the work runs on its own thread and the caller waits at most a deadline.
//! "No TPM" and "no permission" are states, not errors.
//!
//! This file holds the deadline; `state` the states and what they carry; `canonical` turns a public key into the
//! canonical bytes, `blocking` makes the TSS calls on the TPM thread.

#[cfg(all(feature = "tpm", target_os = "linux"))]
mod blocking;
mod canonical;
mod state;

use std::time::{Duration, Instant};

#[cfg(all(feature = "tpm", target_os = "linux"))]
pub use canonical::certificate_public_key;
pub use canonical::{ecc_canonical, strip_leading_zeros};
pub use state::{
    DEFAULT_DEVICE, ECC_EK_CERT_INDEX, ECC_EK_PERSISTENT, EkMethod, EkOrigin, EkPublic,
    RSA_EK_CERT_INDEX, RSA_EK_PERSISTENT, TpmState, TpmTarget,
};

/// How long the TPM work may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of one TPM read, with how long it took.
#[derive(Clone, Debug)]
pub struct TpmReading {
    pub state: TpmState,
    pub target: TpmTarget,
    pub elapsed: Duration,
}

/// Reads the EK through `target`, giving up after `timeout`.
pub fn read_ek(target: &TpmTarget, method: EkMethod, timeout: Duration) -> TpmReading {
    let start = Instant::now();
    let state = read_with_deadline(target, method, timeout);
    TpmReading {
        state,
        target: target.clone(),
        elapsed: start.elapsed(),
    }
}

fn read_with_deadline(target: &TpmTarget, method: EkMethod, timeout: Duration) -> TpmState {
    if !cfg!(all(feature = "tpm", target_os = "linux")) {
        return TpmState::Unsupported;
    }
    if let TpmTarget::Device(path) = target {
        // Check the node first: a missing or forbidden device is a state, and the TSS would
        // only report it as a generic I/O error (and log it to stderr).
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return TpmState::Absent,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return TpmState::PermissionDenied;
            }
            Err(e) => return TpmState::Failed(format!("{}: {e}", path.display())),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let target = target.clone();
    let spawned = std::thread::Builder::new()
        .name("lapwing-tpm".to_owned())
        .spawn(move || {
            // The receiver may be gone after a timeout; nothing is left to tell then.
            let _ = tx.send(blocking::read(&target, method));
        });
    if let Err(e) = spawned {
        return TpmState::Failed(format!("cannot start the TPM thread: {e}"));
    }
    // On timeout the thread is left to finish (or hang) on its own: a TSS call cannot be
    // cancelled, and it holds nothing the caller needs.
    match rx.recv_timeout(timeout) {
        Ok(state) => state,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => TpmState::TimedOut,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            TpmState::Failed("the TPM thread ended without an answer".to_owned())
        }
    }
}

#[cfg(not(all(feature = "tpm", target_os = "linux")))]
mod blocking {
    use super::{EkMethod, TpmState, TpmTarget};

    pub(super) fn read(_: &TpmTarget, _: EkMethod) -> TpmState {
        TpmState::Unsupported
    }
}

#[cfg(all(test, feature = "tpm", target_os = "linux"))]
mod tests;
