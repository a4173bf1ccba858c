//! Human-readable tables for the machine report. Everything shown comes from the report that
//! `--json` prints; nothing is computed here. Firmware strings (SMBIOS vendors, serials),
//! file paths and error details are outside text: every value goes through `shown`.

use std::fmt::Write as _;
use std::path::Path;

use lapwing_core::shown::shown;
use lapwing_machine::anchor_file::AnchorFileState;
use lapwing_machine::cpu::SocketsFrom;
use lapwing_machine::identity::SmbiosReport;
use lapwing_machine::{EkOrigin, Report};

fn or_dash(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// One `label  value` line of the table. Writing to a `String` cannot fail.
fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<14} {}", shown(value));
}

/// `lapctl machine`.
pub fn machine(report: &Report) -> String {
    let mut out = String::from("Machine identity\n");
    anchor(&mut out, report);
    out.push_str("\nSources, strongest first\n");
    sources(&mut out, report);
    out.push('\n');
    tpm(&mut out, report);
    smbios(&mut out, &report.smbios);
    rest(&mut out, report);
    let mut warnings = report.warnings.clone();
    if report.smbios.state == "available" {
        warnings.extend(
            report
                .smbios
                .warnings
                .iter()
                .map(|w| format!("SMBIOS: {w}")),
        );
    }
    if !warnings.is_empty() {
        out.push_str("\nWarnings\n");
        for warning in warnings {
            let _ = writeln!(out, "  - {}", shown(&warning));
        }
    }
    out
}

/// Where the anchor was read: the OS id is not hardware, so "hardware" is said only of a
/// hardware source.
pub fn read_from(path: &str, os_id: bool) -> &'static str {
    match (path, os_id) {
        ("anchor-file", _) => "from the anchor file",
        (_, true) => "read from the operating system",
        (_, false) => "read from the hardware",
    }
}

fn anchor(out: &mut String, report: &Report) {
    let Some(anchor) = &report.anchor else {
        row(out, "anchor", "none: no source is present and plausible");
        return;
    };
    let weakest = if anchor.weakest {
        " (weakest source)"
    } else {
        ""
    };
    row(
        out,
        "anchor",
        &format!(
            "{}{weakest}, {}",
            anchor.source,
            read_from(anchor.path.as_str(), anchor.weakest)
        ),
    );
    row(out, "digest", &anchor.digest);
    if let Some(note) = &anchor.note {
        row(out, "note", note);
    }
}

fn sources(out: &mut String, report: &Report) {
    for source in &report.sources {
        let mut value = format!(
            "{:<12} {}",
            source.verdict,
            source.detail.as_deref().unwrap_or("")
        );
        if source.chosen {
            value.push_str("  <- anchor");
        }
        if source.weakest {
            value.push_str("  (weakest)");
        }
        row(out, source.source.tag(), value.trim_end());
        if let Some(raw) = &source.raw {
            row(out, "", &format!("raw: {raw}"));
        }
    }
}

fn tpm(out: &mut String, report: &Report) {
    let tpm = &report.tpm;
    let mut line = tpm.state.to_owned();
    if let Some(via) = &tpm.via {
        let _ = write!(line, " via {via}");
    }
    if let Some(ms) = tpm.elapsed_ms {
        let _ = write!(line, " ({ms:.1} ms)");
    }
    if let (Some(alg), Some(origin)) = (&tpm.algorithm, tpm.origin) {
        let from = match origin {
            EkOrigin::Certificate => "its certificate",
            EkOrigin::Persistent => "the persistent key",
            EkOrigin::Template => "the default template",
        };
        let _ = write!(line, ": {alg} EK from {from}");
    }
    if let Some(detail) = &tpm.detail {
        let _ = write!(line, ": {detail}");
    }
    row(out, "TPM", &line);
}

fn smbios(out: &mut String, s: &SmbiosReport) {
    let state = match s.state {
        "not-available" => "not available",
        "permission-denied" => "permission denied",
        other => other,
    };
    let file = s
        .file
        .as_deref()
        .map(|f| format!(" (file {f})"))
        .unwrap_or_default();
    row(out, "SMBIOS", &format!("{state}{file}"));
    if s.state != "available" {
        return;
    }
    row(
        out,
        "",
        &format!(
            "version {}, {} structures, form {}",
            or_dash(s.version.as_deref()),
            s.structures,
            s.form.map_or("-", |f| f.as_str())
        ),
    );
    let uuid = if s.redacted.contains(&"system_uuid") {
        "(hidden; --show-raw)"
    } else {
        or_dash(s.system_uuid.as_deref())
    };
    let plausible = if s.system_uuid_plausible {
        "plausible"
    } else {
        "not plausible"
    };
    row(out, "System UUID", &format!("{uuid} ({plausible})"));
    let serial = if s.redacted.contains(&"board.serial") {
        "(serial hidden; --show-raw)"
    } else {
        or_dash(s.board.serial.as_deref())
    };
    row(
        out,
        "baseboard",
        &format!(
            "{} / {} / {serial}",
            or_dash(s.board.manufacturer.as_deref()),
            or_dash(s.board.product.as_deref()),
        ),
    );
    let sockets = s.sockets.map_or_else(
        || "no type 4 structure".to_owned(),
        |n| format!("{n} populated"),
    );
    row(out, "sockets", &sockets);
}

fn rest(out: &mut String, report: &Report) {
    let hints = if report.vm_hints.is_empty() {
        String::new()
    } else {
        format!(" ({})", report.vm_hints.join("; "))
    };
    let vm = if report.virtual_machine { "yes" } else { "no" };
    row(out, "virtual mach.", &format!("{vm}{hints}"));
    let cpu = &report.cpu;
    let from = match cpu.sockets_from {
        SocketsFrom::Smbios => "populated SMBIOS type 4",
        SocketsFrom::Default => "no SMBIOS count: 1",
    };
    row(
        out,
        "CPU",
        &format!(
            "{} socket(s) ({from}), {} physical core(s); seed NumCPUs {}, NumCores {}",
            cpu.sockets, cpu.cores, cpu.seed_num_cpus, cpu.seed_num_cores
        ),
    );
    row(out, "OS id", report.os_id.state);
    if let Some(file) = &report.anchor_file {
        let source = file.source.map(|s| format!(" ({s})")).unwrap_or_default();
        row(
            out,
            "anchor file",
            &format!("{}: {}{source}", file.path, file.state),
        );
    }
}

/// `lapctl machine anchor`.
pub fn anchor_file(path: &Path, state: &AnchorFileState) -> String {
    let line = anchor_file_line(path, state);
    format!("{}\n", shown(&line))
}

fn anchor_file_line(path: &Path, state: &AnchorFileState) -> String {
    match state {
        AnchorFileState::Valid(record) => format!(
            "{}: source {}, digest {}, written {} (UNIX time)",
            path.display(),
            record.source,
            hex::encode(record.digest),
            record.written
        ),
        AnchorFileState::Missing => format!(
            "{}: missing (root writes it: lapctl machine anchor --write)",
            path.display()
        ),
        AnchorFileState::Corrupt(why) => format!("{}: corrupt ({why})", path.display()),
        AnchorFileState::Unreadable(why) => format!("{}: unreadable ({why})", path.display()),
        _ => format!("{}: {}", path.display(), state.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::read_from;

    #[test]
    fn the_os_id_is_not_called_hardware() {
        assert_eq!(
            read_from("hardware", true),
            "read from the operating system"
        );
        assert_eq!(read_from("hardware", false), "read from the hardware");
        assert_eq!(read_from("anchor-file", true), "from the anchor file");
    }
}
