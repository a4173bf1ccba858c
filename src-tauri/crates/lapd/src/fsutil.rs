//! Durable file writes: Lapwing's one implementation.

/// Writes atomically; `mode` defaults to 0644.
pub fn write_atomically(
    path: &std::path::Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> std::io::Result<()> {
    lapwing_fs::write_atomically(path, bytes, mode.unwrap_or(0o644))
}

/// Rewrites a file others may read (the catalog, `root:lapd 0640` when installed) keeping its
/// mode, owner and group; a new one gets 0644.
pub fn rewrite_keeping_access(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    lapwing_fs::replace_keeping_access(path, bytes, 0o644)
}
