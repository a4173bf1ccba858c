//! SMBIOS: the live table or a dump file, walked defensively (see `walk`), decoded with
//! `smbios-lib`, reduced to what the anchor and the seed need.

pub mod form;
pub mod walk;

use std::path::Path;

use lap_proto::Uuid;

use smbioslib::{
    SMBiosBaseboardInformation, SMBiosData, SMBiosInformation, SMBiosProcessorInformation,
    SMBiosString, SMBiosSystemInformation, SystemUuidData,
};

pub use form::{SmbiosForm, SmbiosVersion};

use crate::error::MachineError;

/// The placeholder System UUID that AMI firmware ships when the vendor never set one.
pub const PLACEHOLDER_UUID: Uuid = Uuid::from_u128(0x0300_0200_0400_0500_0006_0007_0008_0009);

/// Baseboard strings that firmware leaves when the vendor filled nothing in (profile §3),
/// compared trimmed and ignoring case. Empty strings and strings of one repeated character
/// (`"0000000"`, `"........"`) are placeholders as well.
pub const BOARD_PLACEHOLDERS: [&str; 4] = [
    "to be filled by o.e.m.",
    "default string",
    "not specified",
    "none",
];

/// What the type 2 structure says about the baseboard. Strings are trimmed; `None` when the
/// string is missing (index 0 or out of range).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Board {
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

impl std::fmt::Debug for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The serial identifies the machine: never in debug output or logs.
        f.debug_struct("Board")
            .field("manufacturer", &self.manufacturer)
            .field("product", &self.product)
            .field("serial", &self.serial.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Board {
    /// The first field that is a placeholder, by name, or `None` when all three are real.
    pub fn placeholder_field(&self) -> Option<&'static str> {
        [
            ("manufacturer", &self.manufacturer),
            ("product", &self.product),
            ("serial", &self.serial),
        ]
        .into_iter()
        .find(|(_, value)| is_placeholder(value.as_deref().unwrap_or("")))
        .map(|(name, _)| name)
    }
}

/// True for a baseboard string that identifies nothing (profile §3).
pub fn is_placeholder(text: &str) -> bool {
    let trimmed = text.trim();
    let mut chars = trimmed.chars();
    let Some(first) = chars.next() else {
        return true;
    };
    if chars.all(|c| c == first) {
        return true;
    }
    let lower = trimmed.to_lowercase();
    BOARD_PLACEHOLDERS.contains(&lower.as_str())
}

/// Why a System UUID is not plausible (profile §3), or `None` when it is. The placeholder is
/// recognised in either byte order: firmware that ships it does so whatever version its entry
/// point claims.
pub fn uuid_implausibility(uuid: &Uuid) -> Option<&'static str> {
    let bytes = uuid.as_bytes();
    if bytes.iter().all(|&b| b == 0) {
        return Some("nil");
    }
    if bytes.iter().all(|&b| b == 0xff) {
        return Some("all FF");
    }
    if *uuid == PLACEHOLDER_UUID || swap_uuid_fields(*bytes) == *PLACEHOLDER_UUID.as_bytes() {
        return Some("the firmware placeholder 03000200-0400-0500-0006-000700080009");
    }
    if bytes[..10].iter().all(|&b| b == 0) {
        return Some("its first ten bytes are zero");
    }
    None
}

/// Reverses the byte order of a UUID's first three fields (time_low, time_mid,
/// time_hi_and_version): the difference between SMBIOS ≥ 2.6 storage and RFC 4122 order.
pub fn swap_uuid_fields(mut bytes: [u8; 16]) -> [u8; 16] {
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    bytes
}

/// A decoded table, reduced to what Lapwing uses. `Debug` leaves the UUID out.
#[derive(Clone)]
pub struct SmbiosInfo {
    pub form: SmbiosForm,
    /// `None` for a bare table, which carries no version.
    pub version: Option<SmbiosVersion>,
    /// Type 1 System UUID in RFC 4122 byte order.
    pub system_uuid: Option<Uuid>,
    pub board: Option<Board>,
    /// Type 4 structures whose status says the socket is populated; `None` with no type 4.
    pub sockets: Option<usize>,
    /// Vendor strings that name a hypervisor, each as `field "value"`.
    pub vm_hints: Vec<String>,
    /// Structures read.
    pub structures: usize,
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for SmbiosInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmbiosInfo")
            .field("form", &self.form)
            .field("version", &self.version)
            .field("system_uuid_present", &self.system_uuid.is_some())
            .field("system_uuid_plausible", &self.system_uuid_plausible())
            .field("board", &self.board)
            .field("sockets", &self.sockets)
            .field("vm_hints", &self.vm_hints)
            .field("structures", &self.structures)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl SmbiosInfo {
    pub fn system_uuid_plausible(&self) -> bool {
        self.system_uuid
            .as_ref()
            .is_some_and(|u| uuid_implausibility(u).is_none())
    }

    pub fn virtual_machine(&self) -> bool {
        !self.vm_hints.is_empty()
    }
}

/// Parses a dump file's bytes: a raw table, the Windows `RawSMBIOSData` form or a
/// `dmidecode --dump-bin` file. `Err` only when nothing in it reads as SMBIOS.
pub fn parse_dump(bytes: &[u8]) -> Result<SmbiosInfo, String> {
    let split = form::split(bytes)?;
    let walked = walk::walk(split.table);
    if split.form == SmbiosForm::RawTable && walked.complete == 0 {
        return Err(
            "no SMBIOS entry point, RawSMBIOSData header or well-formed structure at its start"
                .to_owned(),
        );
    }
    let mut warnings = split.warnings;
    warnings.extend(walked.warnings.iter().cloned());
    Ok(decode(split.form, split.version, &walked, warnings))
}

/// Reads and parses a dump file.
pub fn read_dump(path: &Path) -> Result<SmbiosInfo, MachineError> {
    let bytes = std::fs::read(path).map_err(|source| MachineError::Io {
        path: path.to_owned(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(MachineError::NotSmbios {
            path: path.to_owned(),
            reason: "the file is empty".to_owned(),
        });
    }
    parse_dump(&bytes).map_err(|reason| MachineError::NotSmbios {
        path: path.to_owned(),
        reason,
    })
}

/// Decodes a table that `walk` has vouched for.
fn decode(
    form: SmbiosForm,
    version: Option<SmbiosVersion>,
    walked: &walk::Walked,
    mut warnings: Vec<String>,
) -> SmbiosInfo {
    let data = SMBiosData::from_vec_and_version(
        walked.table.clone(),
        version.map(|v| smbioslib::SMBiosVersion::new(v.major, v.minor, 0)),
    );
    let little_endian = version.is_none_or(SmbiosVersion::uuid_fields_little_endian);
    let system = data.first::<SMBiosSystemInformation<'_>>();
    let system_uuid = system.as_ref().and_then(|s| {
        let stored = match s.uuid()? {
            SystemUuidData::IdNotPresentButSettable => [0u8; 16],
            SystemUuidData::IdNotPresent => [0xffu8; 16],
            SystemUuidData::Uuid(u) => u.raw,
        };
        Some(Uuid::from_bytes(if little_endian {
            swap_uuid_fields(stored)
        } else {
            stored
        }))
    });
    if system_uuid.is_some() && version.is_none() {
        warnings.push(
            "a bare table carries no SMBIOS version: the System UUID was read in the byte \
             order of SMBIOS 2.6 and later"
                .to_owned(),
        );
    }
    let board = data
        .first::<SMBiosBaseboardInformation<'_>>()
        .map(|b| Board {
            manufacturer: text(&b.manufacturer()),
            product: text(&b.product()),
            serial: text(&b.serial_number()),
        });
    let processors: Vec<_> = data.collect::<SMBiosProcessorInformation<'_>>();
    let sockets = (!processors.is_empty()).then(|| {
        processors
            .iter()
            .filter(|p| p.status().is_some_and(|s| s.socket_populated()))
            .count()
    });
    let mut strings = Vec::new();
    if let Some(s) = &system {
        strings.push(("system manufacturer", text(&s.manufacturer())));
        strings.push(("system product", text(&s.product_name())));
    }
    if let Some(b) = &board {
        strings.push(("board manufacturer", b.manufacturer.clone()));
        strings.push(("board product", b.product.clone()));
    }
    if let Some(bios) = data.first::<SMBiosInformation<'_>>() {
        strings.push(("BIOS vendor", text(&bios.vendor())));
        strings.push(("BIOS version", text(&bios.version())));
    }
    let vm_hints = crate::vm::smbios_hints(&strings);
    SmbiosInfo {
        form,
        version,
        system_uuid,
        board,
        sockets,
        vm_hints,
        structures: walked.structures,
        warnings,
    }
}

/// A string field, trimmed; invalid UTF-8 is read lossily.
fn text(s: &SMBiosString) -> Option<String> {
    s.to_utf8_lossy().map(|t| t.trim().to_owned())
}

/// The live table's state.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LiveSmbios {
    Available(SmbiosInfo),
    /// No table exposed at all (common in VMs without firmware tables, containers).
    NotAvailable,
    /// It exists but this user may not read it (on Linux only root may).
    PermissionDenied,
    Failed(String),
}

impl LiveSmbios {
    pub fn state_name(&self) -> &'static str {
        match self {
            Self::Available(_) => "available",
            Self::NotAvailable => "not-available",
            Self::PermissionDenied => "permission-denied",
            Self::Failed(_) => "failed",
        }
    }
}

/// Where the live table is on Linux (`LAPWING_SMBIOS_DIR` replaces it, for tests).
pub const LINUX_SMBIOS_DIR: &str = "/sys/firmware/dmi/tables";

/// Reads the live table. On Linux from `dir` (normally [`LINUX_SMBIOS_DIR`]): its
/// `smbios_entry_point` and `DMI` files; on Windows and macOS from the firmware (`dir` is
/// not used there: [`read_sysfs`] reads such a directory on every platform).
pub fn read_live(dir: &Path) -> LiveSmbios {
    #[cfg(target_os = "linux")]
    {
        read_sysfs(dir)
    }
    #[cfg(any(windows, target_os = "macos"))]
    {
        let _ = dir;
        read_platform()
    }
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    {
        let _ = dir;
        LiveSmbios::NotAvailable
    }
}

/// Reads a table laid out as Linux's sysfs shows it (`smbios_entry_point` and `DMI` in `dir`),
/// on any platform: the live table on Linux, and what `LAPWING_SMBIOS_DIR` names for tests
/// elsewhere (a Windows machine under test gets a known table without firmware).
pub fn read_sysfs(dir: &Path) -> LiveSmbios {
    use std::io::ErrorKind;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| (path, e))
    };
    let files = read("smbios_entry_point").and_then(|entry| Ok((entry, read("DMI")?)));
    let (entry, table) = match files {
        Ok(files) => files,
        Err((_, e)) if e.kind() == ErrorKind::NotFound => return LiveSmbios::NotAvailable,
        Err((_, e)) if e.kind() == ErrorKind::PermissionDenied => {
            return LiveSmbios::PermissionDenied;
        }
        Err((path, e)) => return LiveSmbios::Failed(format!("{}: {e}", path.display())),
    };
    let mut warnings = Vec::new();
    let (version, limit) = if let Ok(Some(ep)) = form::entry_point(&entry) {
        (
            Some(ep.version),
            usize::try_from(ep.table_length).unwrap_or(usize::MAX),
        )
    } else {
        warnings
            .push("the firmware's entry point is unreadable: SMBIOS version unknown".to_owned());
        (None, usize::MAX)
    };
    let walked = walk::walk(&table[..table.len().min(limit)]);
    if walked.structures == 0 {
        return LiveSmbios::Failed(format!(
            "the firmware's table holds no readable structure: {}",
            walked.warnings.join("; ")
        ));
    }
    warnings.extend(walked.warnings.iter().cloned());
    LiveSmbios::Available(decode(SmbiosForm::Live, version, &walked, warnings))
}

/// Windows (`GetSystemFirmwareTable`, which returns the `RawSMBIOSData` form) and macOS
/// (IOKit's `AppleSMBIOS`), both through `smbios-lib`.
#[cfg(any(windows, target_os = "macos"))]
fn read_platform() -> LiveSmbios {
    match smbioslib::raw_smbios_from_device() {
        Ok(bytes) if bytes.is_empty() => LiveSmbios::NotAvailable,
        Ok(bytes) => {
            #[cfg(target_os = "macos")]
            let version = smbioslib::table_load_from_device()
                .ok()
                .and_then(|d| d.version)
                .map(|v| SmbiosVersion::new(v.major, v.minor));
            #[cfg(windows)]
            let version = None;
            match form::split(&bytes) {
                Ok(split) => {
                    let walked = walk::walk(split.table);
                    let mut warnings = split.warnings;
                    warnings.extend(walked.warnings.iter().cloned());
                    LiveSmbios::Available(decode(
                        SmbiosForm::Live,
                        split.version.or(version),
                        &walked,
                        warnings,
                    ))
                }
                Err(reason) => LiveSmbios::Failed(reason),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => LiveSmbios::PermissionDenied,
        Err(e) => LiveSmbios::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
