//! Machine identity for Lapwing (LAP profile §2–3): what a desktop user process can really
//! read about the machine it runs on, and the anchor that MachineHash is computed from.
//!
//! - [`smbios`]: the live table or a dump (raw, Windows `RawSMBIOSData`, `dmidecode
//!   --dump-bin` with `_SM_`/`_SM3_`), walked defensively and decoded with `smbios-lib`:
//!   System UUID in RFC 4122 order and its plausibility, baseboard with placeholder detection,
//!   populated sockets, virtual-machine hints;
//! - [`tpm`]: the TPM 2.0 endorsement key (certificate, persistent key or default template,
//!   all giving the same canonical bytes), on a thread with a deadline; "no TPM" and "no
//!   permission" are states;
//! - [`cpu`]: sockets and physical cores for the seed;
//! - [`os_id`]: the OS installation id, the last resort;
//! - [`anchor`]: source order, verdicts, pinning, the anchor digest;
//! - [`anchor_file`]: the digest root stores for users who cannot read the hardware;
//! - [`identity`]: all of it together, and the report `lapctl machine` prints.
//!
//! Raw identifiers (UUIDs, serials, the EK) never appear in `Debug` output or errors; the
//! report shows them only when asked to.
#![forbid(unsafe_code)]

pub mod anchor;
pub mod anchor_file;
pub mod cpu;
pub mod error;
pub mod identity;
pub mod os_id;
pub mod smbios;
pub mod tpm;
pub mod vm;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use anchor::{AnchorSource, PinOutcome, Reading, Selection, Verdict, anchor_digest, select};
pub use anchor_file::{AnchorFileState, AnchorRecord};
pub use cpu::CpuCounts;
pub use error::MachineError;
pub use identity::{
    Anchor, AnchorPath, Identity, Options, Report, SmbiosInput, anchor_record_to_write, identify,
};
pub use smbios::{LiveSmbios, SmbiosForm, SmbiosInfo, SmbiosVersion};
pub use tpm::{EkMethod, EkOrigin, EkPublic, TpmReading, TpmState, TpmTarget};
