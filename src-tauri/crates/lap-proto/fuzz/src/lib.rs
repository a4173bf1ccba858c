//! Fixtures and independent oracles shared by the `lap-proto` fuzz targets and the seed
//! generator (`cargo run --example gen_seeds`).
//!
//! The oracles in [`rules`], [`tlv`] and [`key`] restate the rules of `LAP-PROFILE.md` (§1 wire,
//! §4 license keys, §5 ServerData) straight from the document, written differently from
//! `lap-proto`'s code (no shared constants or helpers), so that each target compares two
//! readings of the same rule rather than the code with itself.

use std::sync::OnceLock;

use lap_proto::{
    EphemeralSecret, PendingExchange, Request, ResponseSealer, SeedV1, ServerSecretKeys, Uuid,
    open_request, seal_request,
};

/// The fixed server keys every target uses.
pub const SERVER_X25519_SECRET: [u8; 32] = [0x11; 32];
pub const SERVER_ED25519_SEED: [u8; 32] = [0x22; 32];
/// The ephemeral secret `request_open` seals valid plaintexts with.
pub const REQUEST_EPHEMERAL: [u8; 32] = [0x33; 32];
/// The ephemeral secrets of the two fixed exchanges of `response_open`.
pub const BASE_EPHEMERAL: [u8; 32] = [0x44; 32];
pub const ADDON_EPHEMERAL: [u8; 32] = [0x55; 32];

pub const BASE_ID: Uuid = Uuid::from_u128(0x6a1f_3c2e_8b4d_4f10_9e7a_0c5b_d2e1_f301);
pub const ADDON_ID: Uuid = Uuid::from_u128(0x7b20_4d3f_9c5e_4011_8f8b_1d6c_e3f2_0412);
pub const SKU_BASE: Uuid = Uuid::from_u128(0x8c31_5e40_ad6f_4122_a09c_2e7d_f403_1523);
pub const SKU_ADDON: Uuid = Uuid::from_u128(0x9d42_6f51_be70_4233_b1ad_3f8e_0514_2634);
pub const LICENSE_ID: Uuid = Uuid::from_u128(0xae53_7062_cf81_4344_82be_409f_1625_3745);
/// 2025-06-15, a plausible ClientTime / ServerTime.
pub const TIME: u64 = 1_750_000_000;

pub fn server_keys() -> &'static ServerSecretKeys {
    static KEYS: OnceLock<ServerSecretKeys> = OnceLock::new();
    KEYS.get_or_init(|| ServerSecretKeys::from_bytes(SERVER_X25519_SECRET, &SERVER_ED25519_SEED))
}

/// One complete exchange: the client's request and pending state, and the server's sealer.
pub struct Exchange {
    pub request: Request,
    pub request_datagram: Vec<u8>,
    pub pending: PendingExchange,
    pub sealer: ResponseSealer,
}

/// Two exchanges with different keys, ids and request lengths, so that `response_open` covers
/// both ClientId cases (base id, add-on id) and two length limits.
pub struct Exchanges {
    /// ClientAddOnId nil: ClientId is the base id. Seed v1 with the default 128-byte room.
    pub base: Exchange,
    /// ClientAddOnId set: ClientId is the add-on id. Seed v1 with a 32-byte room.
    pub addon: Exchange,
}

pub fn seed_v1(room: usize, fill: u8) -> Vec<u8> {
    SeedV1 {
        decoded_key: [fill; 16],
        machine_hash: [fill ^ 0x5a; 32],
        num_cpus: 1,
        num_cores: 8,
        install_nonce: [fill ^ 0xa5; 16],
    }
    .encode(room)
    .expect("room fits")
    .to_vec()
}

pub fn base_request() -> Request {
    Request {
        client_time: TIME,
        client_base_id: BASE_ID,
        client_addon_id: Uuid::nil(),
        sku_id: SKU_BASE,
        current_license_id: Uuid::nil(),
        client_seed: seed_v1(128, 0x01).into(),
    }
}

pub fn addon_request() -> Request {
    Request {
        client_time: TIME + 1,
        client_base_id: BASE_ID,
        client_addon_id: ADDON_ID,
        sku_id: SKU_ADDON,
        current_license_id: LICENSE_ID,
        client_seed: seed_v1(32, 0x02).into(),
    }
}

fn make_exchange(request: Request, ephemeral: [u8; 32]) -> Exchange {
    let keys = server_keys();
    let (request_datagram, pending) = seal_request(
        keys.public(),
        &request,
        &EphemeralSecret::from_bytes(ephemeral),
    )
    .expect("fixture request seals");
    let (opened, sealer) = open_request(keys, &request_datagram).expect("fixture request opens");
    assert_eq!(opened, request, "fixture request round-trips");
    Exchange {
        request,
        request_datagram,
        pending,
        sealer,
    }
}

pub fn exchanges() -> &'static Exchanges {
    static EXCHANGES: OnceLock<Exchanges> = OnceLock::new();
    EXCHANGES.get_or_init(|| Exchanges {
        base: make_exchange(base_request(), BASE_EPHEMERAL),
        addon: make_exchange(addon_request(), ADDON_EPHEMERAL),
    })
}

/// The client side of both exchanges again, as one slice for `open_any` (sealing is
/// deterministic, so these equal `exchanges().base.pending` and `exchanges().addon.pending`).
pub fn attempts() -> &'static [PendingExchange] {
    static ATTEMPTS: OnceLock<Vec<PendingExchange>> = OnceLock::new();
    ATTEMPTS.get_or_init(|| {
        let keys = server_keys();
        [
            (base_request(), BASE_EPHEMERAL),
            (addon_request(), ADDON_EPHEMERAL),
        ]
        .into_iter()
        .map(|(request, ephemeral)| {
            seal_request(
                keys.public(),
                &request,
                &EphemeralSecret::from_bytes(ephemeral),
            )
            .expect("fixture request seals")
            .1
        })
        .collect()
    })
}

/// Lowercase hex, for assertion messages.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The wire rules of profile §1, restated.
pub mod rules {
    /// The whole request datagram limit (no IP fragmentation).
    pub const DATAGRAM_MAX: usize = 1200;
    /// Request datagram = ephemeral public (32) ‖ ciphertext ‖ tag (16).
    pub const REQUEST_WRAP: usize = 32 + 16;
    /// Response datagram = signature (64) ‖ ciphertext ‖ tag (16).
    pub const RESPONSE_WRAP: usize = 64 + 16;
    /// Request plaintext ≥ 89 (88-byte header and at least one seed byte), response ≥ 56.
    pub const REQUEST_PLAINTEXT_MIN: usize = 89;
    pub const RESPONSE_PLAINTEXT_MIN: usize = 56;

    pub fn le16(bytes: &[u8], at: usize) -> usize {
        usize::from(bytes[at]) | usize::from(bytes[at + 1]) << 8
    }

    pub fn le40(bytes: &[u8], at: usize) -> u64 {
        (0..5).fold(0, |acc, i| acc | u64::from(bytes[at + i]) << (8 * i))
    }

    pub fn id(bytes: &[u8], at: usize) -> [u8; 16] {
        bytes[at..at + 16].try_into().expect("16 bytes")
    }

    fn is_nil(id: [u8; 16]) -> bool {
        id == [0; 16]
    }

    /// Version 2 ‖ Size (2, LE) ‖ ClientTime (5) ‖ ClientBaseId ‖ ClientAddOnId ‖ SKUId ‖
    /// CurrentLicenseId ‖ Reserved (16 zero) ‖ ClientSeed (≥ 1).
    pub fn request_plaintext_ok(p: &[u8]) -> bool {
        p.len() >= REQUEST_PLAINTEXT_MIN
            && p.len() + REQUEST_WRAP <= DATAGRAM_MAX
            && p[0] == 2
            && le16(p, 1) == p.len()
            && p[72..88].iter().all(|&b| b == 0)
            && !is_nil(id(p, 8))
            && !is_nil(id(p, 40))
    }

    /// The ClientId rule: the add-on id when it is not nil, else the base id.
    pub fn request_client_id(p: &[u8]) -> [u8; 16] {
        let addon = id(p, 24);
        if is_nil(addon) { id(p, 8) } else { addon }
    }

    /// Version 2 ‖ Size ‖ ServerTime (5) ‖ ClientId ‖ SKUId ‖ LicenseId ‖ ServerData, accepted
    /// by a client whose request datagram was `request_datagram_len` bytes long.
    pub fn response_plaintext_ok(
        p: &[u8],
        request_datagram_len: usize,
        client_id: [u8; 16],
        sku: [u8; 16],
    ) -> bool {
        p.len() >= RESPONSE_PLAINTEXT_MIN
            && p.len() + RESPONSE_WRAP <= request_datagram_len
            && p.len() + RESPONSE_WRAP <= DATAGRAM_MAX
            && p[0] == 2
            && le16(p, 1) == p.len()
            && id(p, 8) == client_id
            && id(p, 24) == sku
            && !is_nil(id(p, 40))
    }

    /// Encodings of the X25519 points of small order (libsodium's list, each with the ignored
    /// top bit clear and set): a server key agreement with any of them gives zero.
    pub fn low_order_points() -> Vec<[u8; 32]> {
        let mut base: Vec<[u8; 32]> = Vec::new();
        base.push([0; 32]);
        let mut one = [0; 32];
        one[0] = 1;
        base.push(one);
        base.push([
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ]);
        base.push([
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83,
            0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd,
            0xd0, 0x9f, 0x11, 0x57,
        ]);
        for low in [0xec, 0xed, 0xee] {
            // p - 1, p, p + 1 with p = 2^255 - 19.
            let mut p = [0xff; 32];
            p[0] = low;
            p[31] = 0x7f;
            base.push(p);
        }
        let mut all = base.clone();
        for mut point in base {
            point[31] |= 0x80;
            all.push(point);
        }
        all
    }
}

/// ServerData TLV v1 (profile §5), restated as a model.
pub mod tlv {
    /// One record as the walk sees it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Record<'a> {
        pub record_type: u8,
        pub value: &'a [u8],
    }

    /// `type (1) ‖ length (2, LE) ‖ value` repeated; `None` if a record runs past the end.
    pub fn walk(bytes: &[u8]) -> Option<Vec<Record<'_>>> {
        let mut records = Vec::new();
        let mut rest = bytes;
        while let [record_type, lo, hi, tail @ ..] = rest {
            let len = usize::from(*lo) + 256 * usize::from(*hi);
            if tail.len() < len {
                return None;
            }
            records.push(Record {
                record_type: *record_type,
                value: &tail[..len],
            });
            rest = &tail[len..];
        }
        // 1 or 2 bytes left: a header cut short.
        rest.is_empty().then_some(records)
    }

    /// What a valid ServerData says, in the profile's terms.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Model {
        pub not_after: Option<u64>,
        pub renew_after: Option<u64>,
        pub kind: Option<u8>,
        pub in_compliance: Option<bool>,
        pub features: Vec<String>,
        pub notice: Option<String>,
        pub asset_key: Option<Vec<u8>>,
        pub released: bool,
        pub seats: Option<u32>,
        pub delegation: Option<Vec<u8>>,
        pub duplicate: bool,
        pub vendor: Vec<(u8, Vec<u8>)>,
    }

    fn time(value: &[u8]) -> Option<u64> {
        (value.len() == 5).then(|| {
            value
                .iter()
                .rev()
                .fold(0_u64, |acc, &b| acc * 256 + u64::from(b))
        })
    }

    /// The model of `bytes`, or `None` when §5 (and lap-proto's documented strictness:
    /// unknown kind, compliance not 0/1, invalid UTF-8, empty feature names, a duplicate of
    /// the 1.1 records 0x08–0x0B too) refuses it.
    pub fn model(bytes: &[u8]) -> Option<Model> {
        let records = walk(bytes)?;
        let mut m = Model::default();
        let mut counts = [0_u32; 256];
        for r in &records {
            counts[usize::from(r.record_type)] += 1;
        }
        if (1..=0x0b).any(|t| counts[t] > 1) {
            return None;
        }
        for r in records {
            match r.record_type {
                1 => m.not_after = Some(time(r.value)?),
                2 => m.renew_after = Some(time(r.value)?),
                3 => match r.value {
                    [k @ 0..=3] => m.kind = Some(*k),
                    _ => return None,
                },
                4 => match r.value {
                    [0] => m.in_compliance = Some(true),
                    [1] => m.in_compliance = Some(false),
                    _ => return None,
                },
                5 => {
                    let text = std::str::from_utf8(r.value).ok()?;
                    if !text.is_empty() {
                        let names: Vec<String> = text.split(',').map(String::from).collect();
                        if names.iter().any(String::is_empty) {
                            return None;
                        }
                        m.features = names;
                    }
                }
                6 => {
                    if r.value.len() > 200 {
                        return None;
                    }
                    m.notice = Some(std::str::from_utf8(r.value).ok()?.to_owned());
                }
                7 => m.asset_key = Some(r.value.to_vec()),
                8 if r.value.is_empty() => m.released = true,
                9 if r.value.len() == 4 => {
                    m.seats = Some(
                        r.value
                            .iter()
                            .rev()
                            .fold(0, |acc, &b| acc * 256 + u32::from(b)),
                    );
                }
                0x0a if r.value.len() == 153 => m.delegation = Some(r.value.to_vec()),
                0x0b if r.value == [1] => m.duplicate = true,
                8..=0x0b => return None,
                0x80..=0xff => m.vendor.push((r.record_type, r.value.to_vec())),
                _ => {} // 0x00, 0x0c..=0x7f: reserved, ignored
            }
        }
        Some(m)
    }
}

/// License keys (profile §4), restated.
pub mod key {
    pub const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    pub const ISO: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    /// Ignore case, whitespace (space, tab, LF, CR, FF: Rust's ASCII whitespace) and dashes;
    /// read O as 0 and I, L as 1. Only ASCII letters change case.
    pub fn normalize(input: &str) -> Vec<char> {
        input
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '-'))
            .map(|c| {
                let up = if c.is_ascii_lowercase() {
                    char::from(u8::try_from(c).expect("ASCII") - 32)
                } else {
                    c
                };
                match up {
                    'O' => '0',
                    'I' | 'L' => '1',
                    other => other,
                }
            })
            .collect()
    }

    pub fn iso_value(c: char) -> Option<u32> {
        let i = ISO.bytes().position(|b| char::from(b) == c)?;
        u32::try_from(i).ok()
    }

    pub fn crockford_value(c: char) -> Option<u32> {
        let i = CROCKFORD.bytes().position(|b| char::from(b) == c)?;
        u32::try_from(i).ok()
    }

    fn iso_char(v: u32) -> char {
        char::from(ISO.as_bytes()[v as usize])
    }

    /// ISO/IEC 7064 MOD 1271-36, pure system, the standard's recursive method:
    /// `P = (P + a) · 36 mod 1271` over the data, one more `· 36`, check = `(1271 + 1 − P) mod 1271`.
    pub fn check_value(values: &[u32]) -> u32 {
        let mut p = 0;
        for &a in values {
            p = (p + a) * 36 % 1271;
        }
        p = p * 36 % 1271;
        (1272 - p) % 1271
    }

    pub fn check_chars(values: &[u32]) -> [char; 2] {
        let c = check_value(values);
        [iso_char(c / 36), iso_char(c % 36)]
    }

    /// `s` = data ‖ two check characters, all over `0-9A-Z`, the check characters as the
    /// standard computes them.
    pub fn iso_valid(s: &[char]) -> bool {
        if s.len() < 2 {
            return false;
        }
        let (data, check) = s.split_at(s.len() - 2);
        let Some(values) = data
            .iter()
            .map(|&c| iso_value(c))
            .collect::<Option<Vec<u32>>>()
        else {
            return false;
        };
        check == check_chars(&values)
    }

    /// A normalised key of 28 characters: its 16 bytes, or `None` when it is not a key.
    pub fn parse_chars(chars: &[char]) -> Option<[u8; 16]> {
        let chars: &[char; 28] = chars.try_into().ok()?;
        let mut digits = [0_u32; 28];
        let mut values = [0_u32; 26];
        for i in 0..28 {
            digits[i] = crockford_value(chars[i])?;
            if i < 26 {
                values[i] = iso_value(chars[i])?;
            }
        }
        if digits[25] % 4 != 0 || chars[26..] != check_chars(&values) {
            return None;
        }
        let mut n: u128 = 0;
        for &d in &digits[..25] {
            n = n << 5 | u128::from(d);
        }
        n = n << 3 | u128::from(digits[25] >> 2);
        // The all-zero key stands for "no key" on the wire: never a license key.
        (n != 0).then(|| n.to_be_bytes())
    }

    pub fn parse(input: &str) -> Option<[u8; 16]> {
        parse_chars(&normalize(input))
    }

    /// The 28 characters of a key: 26 Crockford digits of the 128 bits and 2 zero bits,
    /// then the check characters over those 26 characters' `0-9A-Z` values.
    pub fn chars_of(bytes: [u8; 16]) -> Vec<char> {
        let n = u128::from_be_bytes(bytes);
        let crockford: Vec<char> = CROCKFORD.chars().collect();
        let mut out: Vec<char> = (0..25)
            .map(|i| crockford[((n >> (123 - 5 * i)) & 31) as usize])
            .collect();
        out.push(crockford[((n & 7) << 2) as usize]);
        let values: Vec<u32> = out.iter().map(|&c| iso_value(c).expect("ISO")).collect();
        out.extend(check_chars(&values));
        out
    }

    /// Dashes every 4 characters.
    pub fn display(chars: &[char]) -> String {
        chars
            .chunks(4)
            .map(|g| g.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Whether `b` is `a` with one character replaced, or two adjacent different characters
    /// swapped.
    pub fn one_typo_apart(a: &[char], b: &[char]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        match diff[..] {
            [_] => true,
            [i, j] => j == i + 1 && a[i] == b[j] && a[j] == b[i],
            _ => false,
        }
    }

    /// The keys one substitution (by a Crockford character) or one adjacent swap away from
    /// the normalised input, in position order (substitutions in alphabet order, then the swap
    /// with the next character), without duplicates.
    pub fn suggestions(input: &str) -> Vec<[u8; 16]> {
        let chars = normalize(input);
        let mut found: Vec<[u8; 16]> = Vec::new();
        if chars.len() != 28 {
            return found;
        }
        let mut candidate = chars.clone();
        let mut keep = |candidate: &[char]| {
            if let Some(k) = parse_chars(candidate)
                && !found.contains(&k)
            {
                found.push(k);
            }
        };
        for p in 0..28 {
            for c in CROCKFORD.chars() {
                if c != chars[p] {
                    candidate[p] = c;
                    keep(&candidate);
                }
            }
            candidate[p] = chars[p];
            if p + 1 < 28 && chars[p] != chars[p + 1] {
                candidate.swap(p, p + 1);
                keep(&candidate);
                candidate.swap(p, p + 1);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn iso_example_from_the_standard() {
        let values: Vec<u32> = "ISO79"
            .chars()
            .map(|c| key::iso_value(c).unwrap())
            .collect();
        assert_eq!(key::check_chars(&values), ['3', 'W']);
    }
}

/// Seed extensions (profile 1.1, §2.1), restated: records `type (1) ‖ length (2, LE) ‖ value`
/// from the start of Room, ended by a type byte 0 or the end of Room, zero after the end.
pub mod ext {
    /// What a valid extension area says: (type, value) of every record, in order.
    pub fn records(room: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut i = 0;
        loop {
            if i == room.len() {
                return Some(out);
            }
            if room[i] == 0 {
                return room[i..].iter().all(|&b| b == 0).then_some(out);
            }
            if i + 3 > room.len() {
                return None;
            }
            let len = usize::from(room[i + 1]) + 256 * usize::from(room[i + 2]);
            if i + 3 + len > room.len() || out.iter().any(|(t, _)| *t == room[i]) {
                return None;
            }
            let value = room[i + 3..i + 3 + len].to_vec();
            let ok = match room[i] {
                1 => value == [0] || value == [1],
                2 => value.len() == 32,
                3..=5 => value.len() == 4,
                _ => true,
            };
            if !ok {
                return None;
            }
            out.push((room[i], value));
            i += 3 + len;
        }
    }
}
