//! Putting it together: read every source, choose the anchor (with pinning and the anchor
//! file), count CPUs, flag VMs, and report all of it.
//!
//! This file holds what is read; `model` holds the result; the submodules do one step each:
//! `readings` (each source's state as a [`Reading`]), `choice` (choosing the anchor with
//! pinning and the anchor file, and the record root writes) and `report` (what
//! `lapctl machine` prints).

mod choice;
mod model;
mod readings;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use crate::anchor::AnchorSource;
use crate::anchor_file;
use crate::error::MachineError;
use crate::os_id;
use crate::smbios::{self, LiveSmbios};
use crate::tpm::{self, EkMethod, TpmTarget};

pub use choice::{anchor_record_to_write, resolve};
pub use model::{Anchor, AnchorPath, Identity};
pub use report::{
    AnchorFileReport, AnchorReport, BoardReport, OsIdReport, Report, SmbiosReport, SourceReport,
    TpmReport,
};

/// Where the SMBIOS table comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmbiosInput {
    /// The live table; on Linux the directory holding `smbios_entry_point` and `DMI`.
    Live(PathBuf),
    /// A dump file instead of the live table.
    File(PathBuf),
    /// A directory laid out as Linux's sysfs (`smbios_entry_point`, `DMI`), read as the live
    /// table on every platform: what `LAPWING_SMBIOS_DIR` names.
    SysfsDir(PathBuf),
}

/// What to read and how.
#[derive(Clone, Debug)]
pub struct Options {
    pub smbios: SmbiosInput,
    /// `None`: do not consult the TPM (it then counts as absent).
    pub tpm: Option<TpmTarget>,
    pub ek_method: EkMethod,
    pub tpm_timeout: Duration,
    /// The OS id file (Linux; other platforms ask the system).
    pub machine_id: PathBuf,
    /// `None`: do not consult an anchor file.
    pub anchor_file: Option<PathBuf>,
    /// The source chosen at first activation; without one, the anchor file's source is the
    /// machine's pin.
    pub pinned: Option<AnchorSource>,
}

impl Options {
    /// The real machine, with the environment's overrides: `LAPWING_SMBIOS_DIR`,
    /// `LAPWING_TCTI` (or `TPM2TOOLS_TCTI`, `TCTI`), `LAPWING_TPM_DEVICE`,
    /// `LAPWING_MACHINE_ID_FILE`, `LAPWING_ANCHOR_FILE`.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self {
            smbios: std::env::var_os("LAPWING_SMBIOS_DIR").map_or_else(
                || SmbiosInput::Live(PathBuf::from(smbios::LINUX_SMBIOS_DIR)),
                |dir| SmbiosInput::SysfsDir(PathBuf::from(dir)),
            ),
            tpm: Some(TpmTarget::from_env()),
            ek_method: EkMethod::Auto,
            tpm_timeout: tpm::DEFAULT_TIMEOUT,
            machine_id: var("LAPWING_MACHINE_ID_FILE", os_id::LINUX_MACHINE_ID),
            anchor_file: Some(anchor_file::default_path()),
            pinned: None,
        }
    }
}

/// Reads the machine. Fails only when a dump file was asked for and cannot be read; anything
/// missing or forbidden on the machine itself is a state in the result.
pub fn identify(options: &Options) -> Result<Identity, MachineError> {
    let (smbios_file, smbios) = match &options.smbios {
        SmbiosInput::Live(dir) => (None, smbios::read_live(dir)),
        SmbiosInput::SysfsDir(dir) => (None, smbios::read_sysfs(dir)),
        SmbiosInput::File(path) => (
            Some(path.clone()),
            LiveSmbios::Available(smbios::read_dump(path)?),
        ),
    };
    let tpm = options
        .tpm
        .as_ref()
        .map(|target| tpm::read_ek(target, options.ek_method, options.tpm_timeout));
    let os_id = os_id::read(&options.machine_id);
    let anchor_file = options
        .anchor_file
        .as_ref()
        .map(|path| (path.clone(), anchor_file::read(path)));
    Ok(resolve(
        smbios_file,
        smbios,
        tpm,
        os_id,
        anchor_file,
        options.pinned,
    ))
}

#[cfg(test)]
mod tests;
