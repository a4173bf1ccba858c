//! Durable file writes: Lapwing's one implementation.

/// Writes atomically; `mode` defaults to 0644.
pub fn write_atomically(
    path: &std::path::Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> std::io::Result<()> {
    lapwing_fs::write_atomically(path, bytes, mode.unwrap_or(0o644))
}
