//! A bounds-checked walk over an SMBIOS structure table.
//!
//! `smbios-lib` decodes fields well, but its table splitter stops silently at the first
//! malformed structure and says nothing about why. Firmware tables in the wild do have
//! zero-length headers, structures whose length runs past the end, and string sets cut off by
//! a short read, and a user deserves to hear which. So every structure is checked here first,
//! and `smbios-lib` is handed only a table that is well formed by construction: it then has no
//! malformed input to be lax (or to panic) about.

/// A structure's header: type, length of its formatted area, handle.
const HEADER_LEN: usize = 4;
/// SMBIOS type 127: the end of the table. `_SM3_` tables are only bounded by a maximum size,
/// so this marker is where they really end.
pub const END_OF_TABLE: u8 = 127;

/// The well-formed part of a table, re-serialised, and what was wrong with the rest.
#[derive(Debug, Default)]
pub struct Walked {
    /// Structures that passed the checks, each with its string set and double-NUL terminator.
    pub table: Vec<u8>,
    /// How many structures `table` holds.
    pub structures: usize,
    /// How many of them were complete in the input (not salvaged from a truncated string set).
    pub complete: usize,
    /// Whether the end-of-table structure (type 127) was reached.
    pub end_marker: bool,
    pub warnings: Vec<String>,
}

/// Walks `data` structure by structure, stopping at type 127, at the end, or at the first
/// structure that cannot be delimited.
pub fn walk(data: &[u8]) -> Walked {
    let mut out = Walked::default();
    let mut offset = 0usize;
    while offset < data.len() {
        let rest = &data[offset..];
        if rest.len() < HEADER_LEN {
            if rest.iter().any(|&b| b != 0) {
                out.warnings.push(format!(
                    "{} stray bytes at offset {offset:#x} after the last structure",
                    rest.len()
                ));
            }
            break;
        }
        let kind = rest[0];
        let length = usize::from(rest[1]);
        if length < HEADER_LEN {
            out.warnings.push(format!(
                "structure of type {kind} at offset {offset:#x} has length {length} \
                 (shorter than its own 4-byte header): the table cannot be walked past it"
            ));
            break;
        }
        if length > rest.len() {
            out.warnings.push(format!(
                "structure of type {kind} at offset {offset:#x} claims {length} bytes of fields \
                 but only {} remain (length overrun): dropped, and the table ends there",
                rest.len()
            ));
            break;
        }
        // The string set starts right after the formatted area and ends with two NULs (a
        // structure without strings is followed by exactly two NULs).
        let strings = &rest[length..];
        if let Some(end) = strings.windows(2).position(|w| w == [0, 0]) {
            let total = length + end + 2;
            out.table.extend_from_slice(&rest[..total]);
            out.structures += 1;
            out.complete += 1;
            offset += total;
            if kind == END_OF_TABLE {
                out.end_marker = true;
                break;
            }
        } else {
            // Keep the formatted area (a UUID lives there) and the strings that did end with
            // their NUL; the cut-off one is lost.
            let mut pieces: Vec<&[u8]> = strings.split(|&b| b == 0).collect();
            pieces.pop();
            let kept: Vec<&[u8]> = pieces.into_iter().filter(|s| !s.is_empty()).collect();
            out.table.extend_from_slice(&rest[..length]);
            for s in &kept {
                out.table.extend_from_slice(s);
                out.table.push(0);
            }
            if kept.is_empty() {
                out.table.push(0);
            }
            out.table.push(0);
            out.structures += 1;
            out.warnings.push(format!(
                "structure of type {kind} at offset {offset:#x}: its string set is cut off by \
                 the end of the table (truncated); kept its fields and {} complete string(s)",
                kept.len()
            ));
            if kind == END_OF_TABLE {
                out.end_marker = true;
            }
            break;
        }
    }
    if !out.end_marker {
        out.warnings
            .push("no end-of-table structure (type 127): the table may be incomplete".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn structure(kind: u8, fields: &[u8], strings: &[&str]) -> Vec<u8> {
        let mut out = vec![
            kind,
            u8::try_from(4 + fields.len()).expect("short test structure"),
            0,
            0,
        ];
        out.extend_from_slice(fields);
        for s in strings {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        if strings.is_empty() {
            out.push(0);
        }
        out.push(0);
        out
    }

    #[test]
    fn walks_a_well_formed_table_and_stops_at_type_127() {
        let mut data = structure(2, &[1, 2, 3], &["Acme", "Board"]);
        data.extend(structure(4, &[0; 4], &[]));
        data.extend(structure(127, &[], &[]));
        data.extend_from_slice(b"garbage after the end");
        let walked = walk(&data);
        assert_eq!(walked.structures, 3);
        assert_eq!(walked.complete, 3);
        assert!(walked.end_marker);
        assert!(walked.warnings.is_empty(), "{:?}", walked.warnings);
        assert_eq!(walked.table, data[..walked.table.len()]);
    }

    #[test]
    fn a_zero_length_header_stops_the_walk_with_a_warning() {
        let mut data = structure(1, &[0; 4], &["x"]);
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0]);
        let walked = walk(&data);
        assert_eq!(walked.structures, 1);
        assert!(walked.warnings[0].contains("shorter than its own 4-byte header"));
        assert!(!walked.end_marker);
    }

    #[test]
    fn an_overrun_is_dropped_and_a_truncated_string_set_is_salvaged() {
        let mut data = structure(1, &[0; 4], &[]);
        data.extend_from_slice(&[2, 200, 0, 0, 1, 2]);
        let walked = walk(&data);
        assert_eq!(walked.structures, 1);
        assert!(walked.warnings[0].contains("length overrun"));

        let mut data = structure(1, &[9; 4], &[]);
        data.extend_from_slice(&[2, 6, 0, 0, 1, 2]);
        data.extend_from_slice(b"Whole\0Cut");
        let walked = walk(&data);
        assert_eq!(walked.structures, 2);
        assert_eq!(walked.complete, 1);
        assert!(walked.warnings[0].contains("truncated"));
        assert!(
            walked
                .table
                .ends_with(&[2, 6, 0, 0, 1, 2, b'W', b'h', b'o', b'l', b'e', 0, 0])
        );
    }

    #[test]
    fn any_input_walks_without_panicking() {
        // Every prefix of a table and a few byte patterns.
        let mut data = structure(1, &[0xff; 0x15], &["QEMU", "Standard PC"]);
        data.extend(structure(127, &[], &[]));
        for end in 0..=data.len() {
            let _ = walk(&data[..end]);
        }
        for fill in [0u8, 1, 3, 4, 0xff] {
            let _ = walk(&[fill; 64]);
        }
    }
}
