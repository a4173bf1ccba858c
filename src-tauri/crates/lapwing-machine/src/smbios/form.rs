//! The shapes an SMBIOS table comes in: an entry point (the firmware's, as Linux exposes it in
//! `/sys/firmware/dmi/tables/smbios_entry_point`, or at the head of a `dmidecode --dump-bin`
//! file), the Windows `RawSMBIOSData` header, or the bare table.

use serde::Serialize;

/// SMBIOS version as its entry point (or the Windows header) states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SmbiosVersion {
    pub major: u8,
    pub minor: u8,
}

impl SmbiosVersion {
    pub const fn new(major: u8, minor: u8) -> Self {
        Self { major, minor }
    }

    /// SMBIOS 2.6 changed the System UUID's first three fields to little-endian.
    pub fn uuid_fields_little_endian(self) -> bool {
        self >= Self::new(2, 6)
    }
}

impl std::fmt::Display for SmbiosVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for SmbiosVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where the table came from, in which form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SmbiosForm {
    /// The structures alone, no version information.
    RawTable,
    /// Windows `GetSystemFirmwareTable('RSMB')`: an 8-byte header, then the table.
    WindowsHeader,
    /// A 2.x `_SM_` entry point (31 bytes), then the table where it says (dmidecode: 0x20).
    EntryPoint2,
    /// A 3.x `_SM3_` entry point (24 bytes); the table length it gives is a maximum.
    EntryPoint3,
    /// A legacy `_DMI_` entry point (15 bytes, SMBIOS 2.0).
    LegacyDmi,
    /// The live table: an entry point and the table read separately (Linux sysfs).
    Live,
}

impl SmbiosForm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RawTable => "raw-table",
            Self::WindowsHeader => "windows-header",
            Self::EntryPoint2 => "dmidecode-sm",
            Self::EntryPoint3 => "dmidecode-sm3",
            Self::LegacyDmi => "dmidecode-dmi",
            Self::Live => "live",
        }
    }
}

/// What an entry point says about its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPoint {
    pub form: SmbiosForm,
    pub version: SmbiosVersion,
    /// Where the table is: a physical address in firmware, a file offset in a dump.
    pub table_address: u64,
    /// The table's length (for `_SM3_`: its maximum length).
    pub table_length: u64,
    pub checksum_ok: bool,
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| acc.wrapping_add(b)) == 0
}

/// Reads an entry point at the start of `bytes`. `Ok(None)`: no entry point anchor there;
/// `Err`: an anchor, but too short to hold its entry point.
pub fn entry_point(bytes: &[u8]) -> Result<Option<EntryPoint>, String> {
    let need = |len: usize, what: &str| {
        if bytes.len() < len {
            Err(format!(
                "{what} entry point needs {len} bytes, the data has {}",
                bytes.len()
            ))
        } else {
            Ok(())
        }
    };
    if bytes.starts_with(b"_SM3_") {
        need(0x18, "an _SM3_")?;
        let stated = usize::from(bytes[6]).clamp(0x18, bytes.len());
        return Ok(Some(EntryPoint {
            form: SmbiosForm::EntryPoint3,
            version: SmbiosVersion::new(bytes[7], bytes[8]),
            table_address: le64(bytes, 0x10),
            table_length: le32(bytes, 0x0c),
            checksum_ok: sums_to_zero(&bytes[..stated]),
        }));
    }
    if bytes.starts_with(b"_SM_") {
        need(0x1f, "an _SM_")?;
        // Some 2.1 firmware states 0x1E here although the structure is 0x1F long.
        let stated = usize::from(bytes[5]).clamp(0x1e, 0x1f);
        let intermediate_ok = &bytes[0x10..0x15] == b"_DMI_" && sums_to_zero(&bytes[0x10..0x1f]);
        return Ok(Some(EntryPoint {
            form: SmbiosForm::EntryPoint2,
            version: SmbiosVersion::new(bytes[6], bytes[7]),
            table_address: le32(bytes, 0x18),
            table_length: le16(bytes, 0x16),
            checksum_ok: sums_to_zero(&bytes[..stated]) && intermediate_ok,
        }));
    }
    if bytes.starts_with(b"_DMI_") {
        need(0x0f, "a _DMI_")?;
        let bcd = bytes[0x0e];
        return Ok(Some(EntryPoint {
            form: SmbiosForm::LegacyDmi,
            version: SmbiosVersion::new(bcd >> 4, bcd & 0x0f),
            table_address: le32(bytes, 0x08),
            table_length: le16(bytes, 0x06),
            checksum_ok: sums_to_zero(&bytes[..0x0f]),
        }));
    }
    Ok(None)
}

/// A file split into its table and what is known about it.
#[derive(Debug)]
pub struct Split<'a> {
    pub form: SmbiosForm,
    pub version: Option<SmbiosVersion>,
    pub table: &'a [u8],
    pub warnings: Vec<String>,
}

/// Where dmidecode puts the table in `--dump-bin` files.
const DMIDECODE_TABLE_OFFSET: usize = 0x20;

/// Detects the form of a dump file and finds its table. `Err` only when there is no table to
/// read at all.
pub fn split(file: &[u8]) -> Result<Split<'_>, String> {
    let mut warnings = Vec::new();
    if let Some(ep) = entry_point(file)? {
        if !ep.checksum_ok {
            warnings.push(format!(
                "the {} entry point's checksum is wrong; read it anyway",
                ep.form.as_str()
            ));
        }
        let mut start = usize::try_from(ep.table_address).unwrap_or(usize::MAX);
        if start >= file.len() {
            // Not a dmidecode dump (the address is a firmware address): try where dmidecode
            // would have put the table.
            if file.len() > DMIDECODE_TABLE_OFFSET {
                warnings.push(format!(
                    "the entry point places the table at {:#x}, past the end of the file; \
                     read it from {DMIDECODE_TABLE_OFFSET:#x} as dmidecode writes it",
                    ep.table_address
                ));
                start = DMIDECODE_TABLE_OFFSET;
            } else {
                return Err(format!(
                    "the file holds an {} entry point but no table after it",
                    ep.form.as_str()
                ));
            }
        }
        let available = file.len() - start;
        let stated = usize::try_from(ep.table_length).unwrap_or(usize::MAX);
        let length = if stated > available {
            if ep.form != SmbiosForm::EntryPoint3 {
                warnings.push(format!(
                    "the entry point gives a table of {stated} bytes, the file holds {available}"
                ));
            }
            available
        } else {
            stated
        };
        return Ok(Split {
            form: ep.form,
            version: Some(ep.version),
            table: &file[start..start + length],
            warnings,
        });
    }
    if file.len() >= 8 && file[0] <= 1 && (file[1] == 2 || file[1] == 3) {
        // A bare table cannot start like this: its first structure would have a length of 2
        // or 3, shorter than its own header.
        let stated = usize::try_from(le32(file, 4)).unwrap_or(usize::MAX);
        let available = file.len() - 8;
        if stated > available {
            warnings.push(format!(
                "the RawSMBIOSData header gives a table of {stated} bytes, the file holds {available}"
            ));
        } else if stated < available {
            warnings.push(format!(
                "{} bytes after the table that the RawSMBIOSData header describes were ignored",
                available - stated
            ));
        }
        return Ok(Split {
            form: SmbiosForm::WindowsHeader,
            version: Some(SmbiosVersion::new(file[1], file[2])),
            table: &file[8..8 + stated.min(available)],
            warnings,
        });
    }
    Ok(Split {
        form: SmbiosForm::RawTable,
        version: None,
        table: file,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_anchors_are_errors_not_panics() {
        assert!(entry_point(b"_SM3_").is_err());
        assert!(entry_point(b"_SM_\x1f").is_err());
        assert!(entry_point(b"_DMI_").is_err());
        assert_eq!(entry_point(b"\x00\x18\x00\x00").expect("no anchor"), None);
        for len in 0..0x40 {
            let mut bytes = b"_SM3_".to_vec();
            bytes.resize(len.max(5), 0xff);
            let _ = split(&bytes);
            let mut bytes = b"_SM_".to_vec();
            bytes.resize(len.max(4), 0xff);
            let _ = split(&bytes);
        }
    }

    #[test]
    fn version_order_and_display() {
        assert!(!SmbiosVersion::new(2, 5).uuid_fields_little_endian());
        assert!(SmbiosVersion::new(2, 6).uuid_fields_little_endian());
        assert!(SmbiosVersion::new(3, 0).uuid_fields_little_endian());
        assert_eq!(SmbiosVersion::new(3, 2).to_string(), "3.2");
    }
}
