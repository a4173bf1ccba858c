//! Virtual-machine hints: hypervisor vendor strings in SMBIOS and the CPUID hypervisor bit.
//!
//! A VM is reported, never refused: clones of one VM image share SMBIOS values, and a vendor
//! who sees "virtual machine" in a support case knows why two seats look alike.

/// Vendor strings that only hypervisors put in SMBIOS, matched case-insensitively anywhere in
/// the system, board and BIOS strings.
const VM_VENDOR_STRINGS: [&str; 12] = [
    "qemu",
    "kvm",
    "vmware",
    "virtualbox",
    "innotek",
    "xen",
    "parallels",
    "bochs",
    "amazon ec2",
    "google compute engine",
    "bhyve",
    "cloud hypervisor",
];

/// Looks for hypervisor vendors in SMBIOS strings (`(field name, value)`); returns one hint per
/// field that names one. Hyper-V is "Microsoft Corporation" + "Virtual Machine", since
/// Microsoft's own hardware carries the same manufacturer string.
pub fn smbios_hints(strings: &[(&str, Option<String>)]) -> Vec<String> {
    let mut hints = Vec::new();
    for (field, value) in strings {
        let Some(value) = value else { continue };
        let lower = value.to_lowercase();
        if VM_VENDOR_STRINGS.iter().any(|v| lower.contains(v)) {
            hints.push(format!("{field} {value:?}"));
        }
    }
    let value_of = |name: &str| {
        strings
            .iter()
            .find(|(f, _)| *f == name)
            .and_then(|(_, v)| v.as_deref())
            .unwrap_or("")
    };
    if value_of("system manufacturer").eq_ignore_ascii_case("Microsoft Corporation")
        && value_of("system product").eq_ignore_ascii_case("Virtual Machine")
    {
        hints.push("system \"Microsoft Corporation\" \"Virtual Machine\" (Hyper-V)".to_owned());
    }
    hints
}

/// The CPUID hypervisor bit (leaf 1, ECX bit 31), with the hypervisor's vendor leaf when it
/// names one. Note: Windows with virtualization-based security sets this bit on bare metal
/// too (the host runs under Hyper-V), so it is reported as a hint like any other.
pub fn cpuid_hint() -> Option<String> {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let cpuid = raw_cpuid::CpuId::new();
        let present = cpuid.get_feature_info().is_some_and(|f| f.has_hypervisor());
        if !present {
            return None;
        }
        let vendor = cpuid
            .get_hypervisor_info()
            .map(|h| format!(" ({:?})", h.identify()))
            .unwrap_or_default();
        Some(format!("CPUID hypervisor bit{vendor}"))
    }
    #[cfg(all(
        target_os = "linux",
        not(any(target_arch = "x86", target_arch = "x86_64"))
    ))]
    {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
            .any(|l| l.split_whitespace().any(|w| w == "hypervisor"))
            .then(|| "hypervisor flag in /proc/cpuinfo".to_owned())
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_os = "linux")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, Option<String>)> {
        pairs
            .iter()
            .map(|(f, v)| (*f, Some((*v).to_owned())))
            .collect()
    }

    #[test]
    fn vendor_strings_are_hints() {
        let hints = smbios_hints(&strings(&[
            ("system manufacturer", "QEMU"),
            ("system product", "Standard PC (Q35 + ICH9, 2009)"),
            ("BIOS vendor", "SeaBIOS"),
        ]));
        assert_eq!(hints, vec!["system manufacturer \"QEMU\"".to_owned()]);
        assert!(!smbios_hints(&strings(&[("system product", "innotek GmbH")])).is_empty());
        assert!(!smbios_hints(&strings(&[("BIOS vendor", "Xen")])).is_empty());
        assert!(!smbios_hints(&strings(&[("system product", "Google Compute Engine")])).is_empty());
    }

    #[test]
    fn microsoft_needs_virtual_machine_and_real_hardware_has_no_hints() {
        assert!(
            smbios_hints(&strings(&[
                ("system manufacturer", "Microsoft Corporation"),
                ("system product", "Surface Laptop 5"),
            ]))
            .is_empty()
        );
        assert_eq!(
            smbios_hints(&strings(&[
                ("system manufacturer", "Microsoft Corporation"),
                ("system product", "Virtual Machine"),
            ]))
            .len(),
            1
        );
        assert!(
            smbios_hints(&strings(&[
                ("system manufacturer", "Dell Inc."),
                ("system product", "XPS 13 9310"),
                ("board product", "0DXP1F"),
                ("BIOS vendor", "Dell Inc."),
            ]))
            .is_empty()
        );
    }
}
