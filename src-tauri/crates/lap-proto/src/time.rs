//! LAP's 5-byte time field and the units the profile's timings are written in.
//!
//! A leaf of the crate: it uses nothing else of it, so the wire layouts, ServerData and the
//! error type all build on it without importing one another in a circle.

/// One minute, in the seconds every LAP time is counted in.
pub const MINUTE: u64 = 60;
/// One hour, in seconds.
pub const HOUR: u64 = 60 * MINUTE;
/// One day, in seconds (UNIX time has no leap seconds).
pub const DAY: u64 = 24 * HOUR;

/// The largest value a 5-byte time field holds.
pub const MAX_TIME: u64 = (1 << 40) - 1;

/// A time past [`MAX_TIME`] (the year 36812) was to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time {0} does not fit in 5 bytes")]
pub struct TimeOutOfRange(pub u64);

/// Encodes a UNIX time as LAP's 5-byte little-endian field.
pub fn time_to_bytes(time: u64) -> Result<[u8; 5], TimeOutOfRange> {
    if time > MAX_TIME {
        return Err(TimeOutOfRange(time));
    }
    let b = time.to_le_bytes();
    Ok([b[0], b[1], b[2], b[3], b[4]])
}

/// Reads LAP's 5-byte little-endian time field.
pub fn time_from_bytes(bytes: [u8; 5]) -> u64 {
    let mut b = [0u8; 8];
    b[..5].copy_from_slice(&bytes);
    u64::from_le_bytes(b)
}

/// The current UNIX time from the system clock; 0 before 1970. For the edges of the
/// programs (a CLI stamping a record, a benchmark driving a server); rules take the time as a
/// parameter or from an injected clock instead.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_is_five_bytes_little_endian() {
        assert_eq!(time_to_bytes(0x01_0203_0405), Ok([5, 4, 3, 2, 1]));
        assert_eq!(time_from_bytes([5, 4, 3, 2, 1]), 0x01_0203_0405);
        assert_eq!(
            time_from_bytes(time_to_bytes(MAX_TIME).expect("fits")),
            MAX_TIME
        );
        assert_eq!(
            time_to_bytes(MAX_TIME + 1),
            Err(TimeOutOfRange(MAX_TIME + 1))
        );
    }

    #[test]
    fn the_units_add_up() {
        assert_eq!(DAY, 86_400);
        assert_eq!(HOUR, 3_600);
    }
}
