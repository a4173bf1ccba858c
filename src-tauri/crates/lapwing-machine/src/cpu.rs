//! CPU counts for the seed (profile §2): populated sockets and physical cores.

use serde::Serialize;

/// Where the socket count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SocketsFrom {
    /// Type 4 structures whose status says "populated".
    Smbios,
    /// No usable type 4 structure: one socket, as the profile says.
    Default,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CpuCounts {
    pub sockets: usize,
    pub sockets_from: SocketsFrom,
    /// Physical cores in total (`sysinfo`); the logical CPU count when it cannot tell.
    pub cores: usize,
    /// The seed's NumCPUs and NumCores, saturated into a byte.
    pub seed_num_cpus: u8,
    pub seed_num_cores: u8,
}

impl CpuCounts {
    /// `smbios_sockets`: populated type 4 structures, `None` when the table has none (or none
    /// is readable). A table that lists sockets but marks none populated (some VMs) counts as 1.
    pub fn new(smbios_sockets: Option<usize>, physical_cores: Option<usize>) -> Self {
        let (sockets, sockets_from) = match smbios_sockets {
            Some(n) if n > 0 => (n, SocketsFrom::Smbios),
            _ => (1, SocketsFrom::Default),
        };
        let cores = physical_cores
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        Self {
            sockets,
            sockets_from,
            cores,
            seed_num_cpus: lap_proto::seed::saturating_count(sockets),
            seed_num_cores: lap_proto::seed::saturating_count(cores),
        }
    }

    /// Counts this machine's cores; sockets come from its SMBIOS table.
    pub fn detect(smbios_sockets: Option<usize>) -> Self {
        Self::new(smbios_sockets, sysinfo::System::physical_core_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_default_to_one_and_counts_saturate() {
        let c = CpuCounts::new(None, Some(8));
        assert_eq!(
            (c.sockets, c.sockets_from, c.cores),
            (1, SocketsFrom::Default, 8)
        );
        let c = CpuCounts::new(Some(0), Some(8));
        assert_eq!((c.sockets, c.sockets_from), (1, SocketsFrom::Default));
        let c = CpuCounts::new(Some(2), Some(300));
        assert_eq!((c.sockets, c.sockets_from), (2, SocketsFrom::Smbios));
        assert_eq!((c.seed_num_cpus, c.seed_num_cores), (2, 255));
    }

    #[test]
    fn this_machine_has_cores() {
        let c = CpuCounts::detect(None);
        assert!(c.cores >= 1);
        assert!(c.cores <= std::thread::available_parallelism().map_or(1, usize::from));
    }
}
