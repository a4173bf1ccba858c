//! License keys of the LAP profile (§4).
//!
//! A key is 16 bytes. People see it as 28 characters in 7 groups of 4: 26 Crockford base32
//! characters carrying the 128 bits (most significant first, two zero padding bits at the end),
//! then the two ISO/IEC 7064 MOD 1271-36 check characters computed over those 26 characters
//! with their `0-9A-Z` values.
//!
//! The check is what lets the client refuse a mistyped key locally: a LAP server that rejects a
//! request stays silent, so a typo must never reach the wire.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Crockford's base32 digits in value order.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The ISO/IEC 7064 alphanumeric alphabet in value order.
const ISO_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The ISO/IEC 7064 value of each Crockford digit: the check runs over the characters as
/// written, so a Crockford `J` (digit 18) counts as 19.
const CROCKFORD_ISO: [usize; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 22, 23, 25, 26, 27, 28,
    29, 31, 32, 33, 34, 35,
];

const KEY_BYTES: usize = 16;
const KEY_CHARS: usize = 28;
const DATA_CHARS: usize = 26;
const GROUP_CHARS: usize = 4;
const BITS_PER_CHAR: usize = 5;

const MODULUS: usize = 1271;
const RADIX: usize = 36;

/// `36^(27 - i) mod 1271`: the weight of position `i` of a full key in the pure-system sum,
/// which lets [`suggestions`] test a candidate without re-reading all 28 characters.
const WEIGHTS: [usize; KEY_CHARS] = {
    let mut weights = [1; KEY_CHARS];
    let mut i = KEY_CHARS - 1;
    while i > 0 {
        weights[i - 1] = weights[i] * RADIX % MODULUS;
        i -= 1;
    }
    weights
};

/// Why a string is not a license key.
///
/// No message contains the key: these end up in logs and bug reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseKeyError {
    /// After dropping spaces, line breaks and dashes, the input is not 28 characters long.
    #[error(
        "expected 28 characters in a license key (not counting dashes and spaces), found {found}"
    )]
    Length {
        /// Characters left after normalisation.
        found: usize,
    },
    /// A character that no key contains.
    #[error(
        "the character {character:?} (character {position} of the key, not counting dashes and spaces) can't occur in a license key"
    )]
    InvalidCharacter {
        /// The offending character, after normalisation.
        character: char,
        /// Its 1-based position in the normalised key.
        position: usize,
    },
    /// The 26th character carries bits that every key has as zero, which only a typo produces.
    #[error("the key is not valid: a character in its last group is mistyped")]
    PaddingBits,
    /// The check characters do not match the rest of the key.
    #[error("the check characters do not match: a character is mistyped or two are swapped")]
    Check,
}

/// The 16 bytes of a license key (profile §4), wiped from memory when dropped.
///
/// `Debug` never shows the key; use [`LicenseKey::to_display`] or [`LicenseKey::masked`] on
/// purpose.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct LicenseKey([u8; KEY_BYTES]);

impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LicenseKey(<redacted>)")
    }
}

impl LicenseKey {
    /// Wraps 16 key bytes, e.g. read back from the keyring.
    ///
    /// Any bytes are accepted, including the ~21 % whose check characters would contain
    /// `I`, `L`, `O` or `U`: such a key is never issued ([`LicenseKey::generate`] re-draws it),
    /// and its [`LicenseKey::to_display`] form does not parse.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    /// The 16 key bytes, as they go into the `ClientSeed`.
    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// Reads a key typed or pasted by a person.
    ///
    /// Case, ASCII whitespace and dashes are ignored, `O` reads as `0` and `I` or `L` as `1`
    /// (see [`normalize`]). Then the length, the alphabet, the padding bits and the check
    /// characters are verified, in that order.
    pub fn parse(input: &str) -> Result<Self, LicenseKeyError> {
        let normalized = Zeroizing::new(normalize(input));
        let chars = Zeroizing::new(normalized.chars().collect::<Vec<char>>());
        Self::from_normalized(&chars)
    }

    /// The key as printed for people: 7 groups of 4 characters joined by `-`
    /// (28 characters plus 6 dashes).
    pub fn to_display(&self) -> String {
        let chars = self.chars();
        let mut out = String::with_capacity(KEY_CHARS + KEY_CHARS / GROUP_CHARS - 1);
        for (index, &c) in chars.iter().enumerate() {
            if index > 0 && index % GROUP_CHARS == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The key with all but its last group hidden, e.g. `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-7WK4`,
    /// for status screens and logs where a user only needs to tell keys apart.
    pub fn masked(&self) -> String {
        let chars = self.chars();
        let mut out = "XXXX-".repeat(KEY_CHARS / GROUP_CHARS - 1);
        out.extend(chars.iter().skip(KEY_CHARS - GROUP_CHARS));
        out
    }

    /// Makes a new key from the 16-byte values `draw` returns, drawing again until the check
    /// characters stay in the Crockford alphabet (none of `I`, `L`, `O`, `U`) and the key is not
    /// the all-zero evaluation key.
    ///
    /// `draw` must return fresh random bytes (from a CSPRNG) on each call; it is a parameter so
    /// that this crate stays free of I/O and tests are deterministic. About one draw in five is
    /// rejected; a `draw` that keeps returning a rejected value makes this loop forever.
    pub fn generate(mut draw: impl FnMut() -> [u8; KEY_BYTES]) -> Self {
        loop {
            let key = Self(draw());
            if !key.is_evaluation() && key.is_printable() {
                return key;
            }
        }
    }

    /// Whether this is the all-zero key that stands for "no key" (evaluation) in the
    /// `ClientSeed` (profile §2).
    pub fn is_evaluation(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// Checks a normalised key and decodes it.
    fn from_normalized(chars: &[char]) -> Result<Self, LicenseKeyError> {
        if chars.len() != KEY_CHARS {
            return Err(LicenseKeyError::Length { found: chars.len() });
        }
        let mut digits = Zeroizing::new([0_u8; KEY_CHARS]);
        for (index, (&character, digit)) in chars.iter().zip(digits.iter_mut()).enumerate() {
            *digit = crockford_digit(character).ok_or(LicenseKeyError::InvalidCharacter {
                character,
                position: index + 1,
            })?;
        }
        if digits[DATA_CHARS - 1] & 0b11 != 0 {
            return Err(LicenseKeyError::PaddingBits);
        }
        let expected = check_value(digits[..DATA_CHARS].iter().map(|&d| iso_of_digit(d)));
        // Written check pairs run up to 35 * 36 + 35 = 1295, so the pairs 1271..=1295 are
        // congruent to valid ones; comparing values, not residues, rejects them.
        let written =
            iso_of_digit(digits[DATA_CHARS]) * RADIX + iso_of_digit(digits[DATA_CHARS + 1]);
        if written != expected {
            return Err(LicenseKeyError::Check);
        }
        let mut key = Self([0; KEY_BYTES]);
        for (index, &digit) in digits[..DATA_CHARS].iter().enumerate() {
            for bit in 0..BITS_PER_CHAR {
                let position = index * BITS_PER_CHAR + bit;
                // The last two positions are the padding, already known to be zero.
                if let Some(byte) = key.0.get_mut(position / 8) {
                    *byte |= ((digit >> (BITS_PER_CHAR - 1 - bit)) & 1) << (7 - position % 8);
                }
            }
        }
        Ok(key)
    }

    /// The 26 Crockford digits of the key, padding included.
    fn data_digits(&self) -> Zeroizing<[u8; DATA_CHARS]> {
        let mut digits = Zeroizing::new([0_u8; DATA_CHARS]);
        for (index, digit) in digits.iter_mut().enumerate() {
            for bit in 0..BITS_PER_CHAR {
                let position = index * BITS_PER_CHAR + bit;
                // Positions 128 and 129 fall past the last byte: they are the zero padding.
                let value = self
                    .0
                    .get(position / 8)
                    .map_or(0, |byte| (byte >> (7 - position % 8)) & 1);
                *digit = (*digit << 1) | value;
            }
        }
        digits
    }

    fn check(&self) -> usize {
        check_value(self.data_digits().iter().map(|&d| iso_of_digit(d)))
    }

    /// Whether the check characters are Crockford characters, so the printed key parses.
    fn is_printable(&self) -> bool {
        let check = self.check();
        [check / RADIX, check % RADIX]
            .iter()
            .all(|&value| crockford_digit(iso_char(value)).is_some())
    }

    /// All 28 characters of the printed key.
    fn chars(&self) -> Zeroizing<[char; KEY_CHARS]> {
        let mut chars = Zeroizing::new(['0'; KEY_CHARS]);
        for (c, &digit) in chars.iter_mut().zip(self.data_digits().iter()) {
            *c = char::from(CROCKFORD[usize::from(digit)]);
        }
        let check = self.check();
        chars[DATA_CHARS] = iso_char(check / RADIX);
        chars[DATA_CHARS + 1] = iso_char(check % RADIX);
        chars
    }
}

/// Canonical form of a typed key: drops ASCII whitespace (spaces, tabs, CR, LF) and `-`,
/// upper-cases ASCII letters, and reads `O` as `0`, `I` and `L` as `1`.
///
/// `U` is left alone, so that it is reported as a character that can't occur. Only ASCII is
/// case-mapped: Unicode upper-casing would turn look-alikes such as `ı` or `ſ` into key
/// letters and can change the length.
pub fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|&c| !c.is_ascii_whitespace() && c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// The two ISO/IEC 7064 MOD 1271-36 check characters (pure system, alphabet `0-9A-Z` valued
/// 0 to 35) of `data`, which may be of any length but must already be normalised: only
/// `0-9` and upper-case `A-Z` are accepted.
///
/// For the standard's example, `check_characters("ISO79")` is `['3', 'W']`.
pub fn check_characters(data: &str) -> Result<[char; 2], LicenseKeyError> {
    let mut values = Vec::with_capacity(data.len());
    for (index, character) in data.chars().enumerate() {
        values.push(
            iso_value(character).ok_or(LicenseKeyError::InvalidCharacter {
                character,
                position: index + 1,
            })?,
        );
    }
    let check = check_value(values);
    Ok([iso_char(check / RADIX), iso_char(check % RADIX)])
}

/// Whether `s` (data followed by its two check characters, `0-9A-Z` only) carries the check
/// characters ISO/IEC 7064 MOD 1271-36 gives for its data.
///
/// The comparison is on the characters, not on the residue: the pairs `ZB` to `ZZ` (values
/// 1271 to 1295) are never produced, so they are refused even where they satisfy the
/// congruence.
pub fn iso7064_mod_1271_36_is_valid(s: &str) -> bool {
    let Some((split, _)) = s.char_indices().rev().nth(1) else {
        return false;
    };
    let (data, check) = s.split_at(split);
    check_characters(data).is_ok_and(|expected| check.chars().eq(expected))
}

/// The keys one typo away from `input` that pass every check: each single substitution by a
/// Crockford character at any of the 28 positions, and each swap of two adjacent different
/// characters.
///
/// The list is in the order of the edited position (substitutions in alphabet order, then the
/// swap with the next character), without duplicates. It is empty when the normalised input is
/// not 28 characters long, and also when `input` is itself a valid key, since the check
/// catches every single substitution and adjacent swap.
pub fn suggestions(input: &str) -> Vec<LicenseKey> {
    let normalized = Zeroizing::new(normalize(input));
    let mut chars = Zeroizing::new(normalized.chars().collect::<Vec<char>>());
    if chars.len() != KEY_CHARS {
        return Vec::new();
    }
    // The weighted sum only screens candidates; a character outside 0-9A-Z counts as 0 there,
    // and a candidate that still holds one is refused by the full parse.
    let values = Zeroizing::new(
        chars
            .iter()
            .map(|&c| iso_value(c).unwrap_or(0))
            .collect::<Vec<usize>>(),
    );
    let term = |value: usize, position: usize| value * WEIGHTS[position] % MODULUS;
    let sum = values
        .iter()
        .enumerate()
        .map(|(position, &value)| term(value, position))
        .sum::<usize>()
        % MODULUS;

    let mut found = Vec::new();
    for position in 0..KEY_CHARS {
        let original = chars[position];
        let rest = sum + MODULUS - term(values[position], position);
        for (&digit, &value) in CROCKFORD.iter().zip(CROCKFORD_ISO.iter()) {
            let replacement = char::from(digit);
            if replacement != original && (rest + term(value, position)) % MODULUS == 1 {
                chars[position] = replacement;
                keep_if_valid(&mut found, &chars);
                chars[position] = original;
            }
        }
        if position + 1 < KEY_CHARS && chars[position + 1] != original {
            let (here, next) = (values[position], values[position + 1]);
            let swapped = sum + 2 * MODULUS - term(here, position) - term(next, position + 1)
                + term(next, position)
                + term(here, position + 1);
            if swapped % MODULUS == 1 {
                chars.swap(position, position + 1);
                keep_if_valid(&mut found, &chars);
                chars.swap(position, position + 1);
            }
        }
    }
    found
}

fn keep_if_valid(found: &mut Vec<LicenseKey>, chars: &[char]) {
    if let Ok(key) = LicenseKey::from_normalized(chars)
        && !found.contains(&key)
    {
        found.push(key);
    }
}

/// The check value (0 to 1270) that makes `data ‖ check` sum to 1 modulo 1271 in the pure
/// system.
fn check_value(data: impl IntoIterator<Item = usize>) -> usize {
    let residue = data
        .into_iter()
        .fold(0, |acc, value| (acc * RADIX + value) % MODULUS);
    // The two check positions have weights 36 and 1, so the data sits two places higher.
    let shifted = residue * RADIX * RADIX % MODULUS;
    (MODULUS + 1 - shifted) % MODULUS
}

fn crockford_digit(c: char) -> Option<u8> {
    let position = CROCKFORD.iter().position(|&b| char::from(b) == c)?;
    u8::try_from(position).ok()
}

fn iso_of_digit(digit: u8) -> usize {
    CROCKFORD_ISO[usize::from(digit)]
}

fn iso_value(c: char) -> Option<usize> {
    ISO_ALPHABET.iter().position(|&b| char::from(b) == c)
}

fn iso_char(value: usize) -> char {
    char::from(ISO_ALPHABET[value])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `SplitMix64`: a fixed, dependency-free source of test data.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn bytes(&mut self) -> [u8; 16] {
            let mut out = [0; 16];
            out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
            out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
            out
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next_u64() % u64::try_from(bound).expect("small bound"))
                .expect("below a usize bound")
        }
    }

    fn sample_keys(count: usize, seed: u64) -> Vec<LicenseKey> {
        let mut rng = Rng(seed);
        (0..count)
            .map(|_| LicenseKey::generate(|| rng.bytes()))
            .collect()
    }

    fn normalized_chars(key: &LicenseKey) -> Vec<char> {
        normalize(&key.to_display()).chars().collect()
    }

    /// Every single substitution by a Crockford character and every swap of two adjacent
    /// different characters of `key`, as normalised text.
    fn typos(key: &LicenseKey) -> (Vec<String>, Vec<String>) {
        let chars = normalized_chars(key);
        let mut substitutions = Vec::new();
        for position in 0..KEY_CHARS {
            for &digit in CROCKFORD {
                if char::from(digit) != chars[position] {
                    let mut typo = chars.clone();
                    typo[position] = char::from(digit);
                    substitutions.push(typo.into_iter().collect());
                }
            }
        }
        let mut swaps = Vec::new();
        for position in 0..KEY_CHARS - 1 {
            if chars[position] != chars[position + 1] {
                let mut typo = chars.clone();
                typo.swap(position, position + 1);
                swaps.push(typo.into_iter().collect());
            }
        }
        (substitutions, swaps)
    }

    /// The check characters found by the textbook definition: the pair (value below 1271)
    /// for which `sum a_i * 36^(n - i) mod 1271 == 1`, each power computed from scratch.
    fn slow_check(data: &str) -> [char; 2] {
        let mut values: Vec<usize> = data
            .chars()
            .map(|c| c.to_digit(36).expect("alphanumeric") as usize)
            .collect();
        values.extend([0, 0]);
        let n = values.len();
        let powers: Vec<usize> = (0..n)
            .map(|i| (0..n - 1 - i).fold(1, |p, _| p * RADIX % MODULUS))
            .collect();
        (0..MODULUS)
            .find(|&check| {
                values[n - 2] = check / RADIX;
                values[n - 1] = check % RADIX;
                let sum: usize = values.iter().zip(&powers).map(|(v, p)| v * p).sum();
                sum % MODULUS == 1
            })
            .map(|check| [iso_char(check / RADIX), iso_char(check % RADIX)])
            .expect("some check value solves the congruence")
    }

    fn random_iso_string(rng: &mut Rng, len: usize) -> String {
        (0..len)
            .map(|_| char::from(ISO_ALPHABET[rng.below(36)]))
            .collect()
    }

    #[test]
    fn iso_7064_reference_value() {
        assert_eq!(check_characters("ISO79"), Ok(['3', 'W']));
        assert!(iso7064_mod_1271_36_is_valid("ISO793W"));
        assert!(!iso7064_mod_1271_36_is_valid("ISO793X"));
        assert!(!iso7064_mod_1271_36_is_valid("ISO79W3"));
        assert!(!iso7064_mod_1271_36_is_valid("IS0793W"));
    }

    #[test]
    fn iso_7064_values_from_an_independent_implementation() {
        // Computed outside this crate by brute force over the congruence.
        assert_eq!(check_characters(""), Ok(['0', '1']));
        assert_eq!(check_characters("A"), Ok(['S', 'E']));
        assert_eq!(check_characters("LAPWING"), Ok(['0', 'A']));
        assert_eq!(check_characters("ZZZZZZZZZZ"), Ok(['J', 'N']));
    }

    #[test]
    fn iso_7064_fast_method_matches_the_definition() {
        let mut rng = Rng(7064);
        for round in 0..1000 {
            let data = random_iso_string(&mut rng, round % 41);
            let check = check_characters(&data).expect("0-9A-Z input");
            assert_eq!(check, slow_check(&data), "data {data}");
            let full: String = data.chars().chain(check).collect();
            assert!(iso7064_mod_1271_36_is_valid(&full), "{full}");
        }
    }

    #[test]
    fn iso_7064_rejects_non_canonical_and_malformed_strings() {
        let mut rng = Rng(1295);
        // A check value up to 24 has a twin pair 1271 higher, "Z" followed by B..Z.
        let (data, check) = std::iter::repeat_with(|| random_iso_string(&mut rng, 10))
            .take(10_000)
            .find_map(|data| {
                let check = check_value(data.chars().filter_map(iso_value));
                (check <= 24).then_some((data, check))
            })
            .expect("one value in 53 qualifies");
        let twin = check + MODULUS;
        let full = format!("{data}{}{}", iso_char(twin / RADIX), iso_char(twin % RADIX));
        assert_eq!(full.chars().rev().nth(1), Some('Z'));
        assert!(!iso7064_mod_1271_36_is_valid(&full));
        assert!(iso7064_mod_1271_36_is_valid(&format!(
            "{data}{}{}",
            iso_char(check / RADIX),
            iso_char(check % RADIX)
        )));

        assert!(!iso7064_mod_1271_36_is_valid(""));
        assert!(!iso7064_mod_1271_36_is_valid("1"));
        assert!(iso7064_mod_1271_36_is_valid("01"));
        assert!(!iso7064_mod_1271_36_is_valid("iso793w"));
        assert_eq!(
            check_characters("AB-C"),
            Err(LicenseKeyError::InvalidCharacter {
                character: '-',
                position: 3
            })
        );
        assert_eq!(
            check_characters("abc"),
            Err(LicenseKeyError::InvalidCharacter {
                character: 'a',
                position: 1
            })
        );
    }

    #[test]
    fn crockford_iso_table_matches_the_alphabets() {
        for (&digit, &value) in CROCKFORD.iter().zip(CROCKFORD_ISO.iter()) {
            assert_eq!(iso_value(char::from(digit)), Some(value));
        }
        let mut power = 1;
        for &weight in WEIGHTS.iter().rev() {
            assert_eq!(weight, power);
            power = power * RADIX % MODULUS;
        }
    }

    #[test]
    fn known_keys() {
        let cases: [([u8; 16], &str); 4] = [
            ([0; 16], "0000-0000-0000-0000-0000-0000-0001"),
            ([0xFF; 16], "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZWSI"),
            (
                core::array::from_fn(|i| u8::try_from(i).expect("small")),
                "000G-40R4-0M30-E209-185G-R38E-1WWC",
            ),
            (
                core::array::from_fn(|i| 0xF0 + u8::try_from(i).expect("small")),
                "Y3RZ-5WZM-YQVF-FY7S-ZBXZ-SZFY-ZWM9",
            ),
        ];
        for (bytes, text) in cases {
            assert_eq!(LicenseKey::from_bytes(bytes).to_display(), text);
        }
        assert_eq!(
            LicenseKey::parse("000G-40R4-0M30-E209-185G-R38E-1WWC")
                .expect("valid key")
                .as_bytes(),
            &cases[2].0
        );
        // All ones gets the check "SI": never issued, and its printed form does not parse.
        assert_eq!(LicenseKey::parse(cases[1].1), Err(LicenseKeyError::Check));
    }

    #[test]
    fn display_shape_and_round_trip() {
        for key in sample_keys(200, 1) {
            let text = key.to_display();
            assert_eq!(text.len(), 34);
            let groups: Vec<&str> = text.split('-').collect();
            assert_eq!(groups.len(), 7);
            for group in groups {
                assert_eq!(group.len(), 4);
                assert!(group.bytes().all(|b| CROCKFORD.contains(&b)), "{group}");
            }
            assert_eq!(LicenseKey::parse(&text), Ok(key.clone()));
            assert!(iso7064_mod_1271_36_is_valid(&normalize(&text)));
        }
    }

    #[test]
    fn masked_shows_only_the_last_group() {
        let key = LicenseKey::from_bytes(core::array::from_fn(|i| u8::try_from(i).expect("small")));
        assert_eq!(key.masked(), "XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-1WWC");
        for key in sample_keys(20, 2) {
            let display = key.to_display();
            assert_eq!(key.masked()[..30], *"XXXX-".repeat(6));
            assert_eq!(key.masked()[30..], display[30..]);
        }
    }

    #[test]
    fn normalisation_accepts_what_people_type() {
        assert_eq!(normalize(" ab-cd\tO i\r\nL u-ı"), "ABCD011Uı");
        let mut rng = Rng(3);
        let keys = sample_keys(50, 3);
        for key in &keys {
            let display = key.to_display();
            let lower = display.to_ascii_lowercase();
            let spaced = display.replace('-', " ");
            let broken = format!(
                "{}\r\n{}\n\t{}",
                &display[..9],
                &display[9..20],
                &display[20..]
            );
            let bare = display.replace('-', "");
            let lookalikes: String = display
                .chars()
                .map(|c| match (c, rng.below(3)) {
                    ('0', 0) => 'O',
                    ('0', 1) => 'o',
                    ('1', 0) => 'I',
                    ('1', 1) => 'l',
                    ('1', _) => 'L',
                    _ => c,
                })
                .collect();
            let messy = format!("  {}--  ", lookalikes.to_ascii_lowercase());
            for variant in [lower, spaced, broken, bare, lookalikes, messy] {
                assert_eq!(LicenseKey::parse(&variant).as_ref(), Ok(key), "{variant}");
            }
        }
        // The sample must have exercised the look-alikes at all.
        assert!(keys.iter().any(|k| k.to_display().contains('0')));
        assert!(keys.iter().any(|k| k.to_display().contains('1')));
    }

    #[test]
    fn every_single_typo_is_detected_and_the_right_key_suggested() {
        for key in sample_keys(6, 4) {
            let (substitutions, swaps) = typos(&key);
            assert_eq!(substitutions.len(), KEY_CHARS * 31);
            for typo in substitutions.iter().chain(&swaps) {
                assert!(LicenseKey::parse(typo).is_err(), "{typo} passed");
                assert!(suggestions(typo).contains(&key), "{typo}");
            }
            assert!(suggestions(&key.to_display()).is_empty());
        }
    }

    #[test]
    fn twin_errors_are_detected() {
        for key in sample_keys(6, 5) {
            let chars = normalized_chars(&key);
            for position in 0..KEY_CHARS - 1 {
                if chars[position] != chars[position + 1] {
                    continue;
                }
                for &digit in CROCKFORD {
                    let mut typo = chars.clone();
                    typo[position] = char::from(digit);
                    typo[position + 1] = char::from(digit);
                    if typo != chars {
                        let typo: String = typo.into_iter().collect();
                        assert!(LicenseKey::parse(&typo).is_err(), "{typo}");
                    }
                }
            }
        }
    }

    #[test]
    fn suggestion_counts_for_single_typos() {
        // [right key alone, among 2, among 3, among 4 or more] per kind of typo.
        let mut substitution_counts = [0_usize; 4];
        let mut swap_counts = [0_usize; 4];
        let mut most = 0;
        for key in sample_keys(50, 6) {
            let (substitutions, swaps) = typos(&key);
            for (list, counts) in [
                (&substitutions, &mut substitution_counts),
                (&swaps, &mut swap_counts),
            ] {
                for typo in list {
                    let found = suggestions(typo);
                    assert!(found.contains(&key), "{typo}");
                    counts[(found.len() - 1).min(3)] += 1;
                    most = most.max(found.len());
                }
            }
        }
        let all: Vec<usize> = substitution_counts
            .iter()
            .zip(&swap_counts)
            .map(|(a, b)| a + b)
            .collect();
        let total: usize = all.iter().sum();
        let share = |n: usize| {
            100.0 * f64::from(u32::try_from(n).expect("count"))
                / f64::from(u32::try_from(total).expect("count"))
        };
        println!("substitutions: {substitution_counts:?} (alone, 2, 3, 4+)");
        println!("adjacent swaps: {swap_counts:?} (alone, 2, 3, 4+)");
        println!(
            "all {total} typos: alone {:.2} %, among 2 {:.2} %, among 3 {:.2} %, among 4+ {:.2} %, at most {most}",
            share(all[0]),
            share(all[1]),
            share(all[2]),
            share(all[3])
        );
        // Measured 66.5 % alone, 30.2 % among 2, 3.2 % among 3 and 0.08 % among 4: the profile's
        // "alone in two cases out of three, else among two or three" holds but for those 0.08 %.
        assert!((60.0..73.0).contains(&share(all[0])));
        assert!(share(all[0] + all[1] + all[2]) > 99.5);
        assert!(most <= 5, "{most} suggestions for one typo");
    }

    #[test]
    fn suggestions_handle_characters_that_cannot_occur() {
        for key in sample_keys(10, 7) {
            let mut chars = normalized_chars(&key);
            chars[11] = 'U';
            let typo: String = chars.iter().collect();
            assert_eq!(
                LicenseKey::parse(&typo),
                Err(LicenseKeyError::InvalidCharacter {
                    character: 'U',
                    position: 12
                })
            );
            let found = suggestions(&typo);
            assert!(found.contains(&key));
            // Only replacing the U can give a key, and one value fits a position.
            assert_eq!(found.len(), 1);

            chars[3] = '*';
            assert!(suggestions(&chars.iter().collect::<String>()).is_empty());
        }
        assert!(suggestions("ABCD").is_empty());
        assert!(suggestions(&"0".repeat(29)).is_empty());
    }

    #[test]
    fn suggestions_are_in_a_stable_order_without_duplicates() {
        for key in sample_keys(20, 8) {
            for typo in typos(&key).0.iter().step_by(37) {
                let first = suggestions(typo);
                let second = suggestions(&typo.to_ascii_lowercase());
                assert_eq!(first, second);
                for (i, a) in first.iter().enumerate() {
                    assert!(first[i + 1..].iter().all(|b| a != b));
                }
            }
        }
    }

    #[test]
    fn generate_redraws_keys_with_unprintable_check_characters() {
        let rejected = (0_u128..1000)
            .map(u128::to_be_bytes)
            .find(|bytes| {
                let display = LicenseKey::from_bytes(*bytes).to_display();
                display[32..].contains(['I', 'L', 'O', 'U'])
            })
            .expect("about one value in five is rejected");
        let accepted = (0_u128..1000)
            .map(|n| (n + 1).to_le_bytes())
            .find(|bytes| {
                let display = LicenseKey::from_bytes(*bytes).to_display();
                !display[32..].contains(['I', 'L', 'O', 'U'])
            })
            .expect("most values are accepted");
        let mut sequence = [[0; 16], rejected, rejected, accepted].into_iter();
        let mut calls = 0;
        let key = LicenseKey::generate(|| {
            calls += 1;
            sequence
                .next()
                .expect("generate stops at the first good draw")
        });
        assert_eq!(key.as_bytes(), &accepted);
        assert_eq!(calls, 4);

        let mut rng = Rng(9);
        let mut draws = 0;
        for _ in 0..2000 {
            let key = LicenseKey::generate(|| {
                draws += 1;
                rng.bytes()
            });
            let display = key.to_display();
            assert!(!display.contains(['I', 'L', 'O', 'U']), "{display}");
            assert_eq!(LicenseKey::parse(&display).as_ref(), Ok(&key));
        }
        // Roughly 1 - (32/36)^2 of the draws are rejected; a broken filter changes that a lot.
        assert!((2300..2800).contains(&draws), "{draws} draws for 2000 keys");
    }

    #[test]
    fn errors_are_reachable_and_never_show_the_key() {
        let key = sample_keys(1, 10).remove(0);
        let text = normalize(&key.to_display());
        let mut chars: Vec<char> = text.chars().collect();

        let short = LicenseKey::parse(&text[..27]).expect_err("too short");
        assert_eq!(short, LicenseKeyError::Length { found: 27 });
        let message = short.to_string();
        assert!(
            message.contains("27") && message.contains("28"),
            "{message}"
        );
        assert_eq!(
            LicenseKey::parse(&format!("{text}0")),
            Err(LicenseKeyError::Length { found: 29 })
        );
        assert_eq!(
            LicenseKey::parse(" - \n"),
            Err(LicenseKeyError::Length { found: 0 })
        );

        chars[4] = 'ü';
        let invalid = LicenseKey::parse(&chars.iter().collect::<String>()).expect_err("ü");
        // Only ASCII is case-mapped, so the character is reported as typed.
        assert_eq!(
            invalid,
            LicenseKeyError::InvalidCharacter {
                character: 'ü',
                position: 5
            }
        );
        let message = invalid.to_string();
        assert!(
            message.contains("'ü'") && message.contains("can't occur"),
            "{message}"
        );
        chars[4] = text.chars().nth(4).expect("28 characters");

        // The last data character may only be 0 4 8 C G M R W; 1 sets a padding bit.
        let original = chars[25];
        chars[25] = '1';
        let padding = LicenseKey::parse(&chars.iter().collect::<String>()).expect_err("padding");
        assert_eq!(padding, LicenseKeyError::PaddingBits);
        assert!(padding.to_string().contains("last group"));
        chars[25] = original;

        let position = (0..KEY_CHARS - 1)
            .find(|&p| chars[p] != chars[p + 1])
            .expect("a key is not one repeated character");
        chars.swap(position, position + 1);
        let check = LicenseKey::parse(&chars.iter().collect::<String>()).expect_err("swap");
        assert_eq!(check, LicenseKeyError::Check);
        assert_eq!(
            check.to_string(),
            "the check characters do not match: a character is mistyped or two are swapped"
        );

        for error in [short, invalid, padding, check] {
            let message = error.to_string();
            let debug = format!("{error:?}");
            for group in key.to_display().split('-').take(6) {
                assert!(
                    !message.contains(group) && !debug.contains(group),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn parse_refuses_the_congruent_twin_of_a_check_pair() {
        let mut rng = Rng(12);
        let (key, twin) = std::iter::repeat_with(|| LicenseKey::generate(|| rng.bytes()))
            .take(100_000)
            .find_map(|key| {
                let twin = key.check() + MODULUS;
                if twin >= RADIX * RADIX {
                    return None;
                }
                let pair = [iso_char(twin / RADIX), iso_char(twin % RADIX)];
                pair.iter()
                    .all(|&c| crockford_digit(c).is_some())
                    .then_some((key, pair))
            })
            .expect("about one key in 60 has such a twin");
        let display = key.to_display();
        let forged: String = display[..32].chars().chain(twin).collect();
        assert_eq!(LicenseKey::parse(&forged), Err(LicenseKeyError::Check));
        assert!(!iso7064_mod_1271_36_is_valid(&normalize(&forged)));
    }

    #[test]
    fn debug_is_redacted_and_zeroize_wipes() {
        let mut key = sample_keys(1, 11).remove(0);
        let debug = format!("{key:?} {key:#?}");
        assert!(debug.contains("redacted"));
        for group in key.to_display().split('-') {
            assert!(!debug.contains(group), "{debug}");
        }
        let copy = key.clone();
        assert_eq!(copy, key);
        key.zeroize();
        assert!(key.is_evaluation());
        assert_ne!(copy, key);
    }

    #[test]
    fn evaluation_key() {
        assert!(LicenseKey::from_bytes([0; 16]).is_evaluation());
        assert!(
            !LicenseKey::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
                .is_evaluation()
        );
        assert!(
            LicenseKey::parse("0000-0000-0000-0000-0000-0000-0001")
                .expect("the all-zero key is well formed")
                .is_evaluation()
        );
    }

    proptest! {
        #[test]
        fn printable_bytes_round_trip(bytes in any::<[u8; 16]>()) {
            let key = LicenseKey::from_bytes(bytes);
            let display = key.to_display();
            prop_assert_eq!(display.len(), 34);
            prop_assert!(display.split('-').all(|group| group.len() == 4));
            prop_assert!(display[..32].bytes().filter(|&b| b != b'-').all(|b| CROCKFORD.contains(&b)));
            if display[32..].contains(['I', 'L', 'O', 'U']) {
                prop_assert!(LicenseKey::parse(&display).is_err());
            } else {
                prop_assert_eq!(LicenseKey::parse(&display), Ok(key.clone()));
                prop_assert_eq!(LicenseKey::parse(&display.to_ascii_lowercase()), Ok(key));
            }
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,40}") {
            let _ = LicenseKey::parse(&input);
            let _ = suggestions(&input);
        }

        #[test]
        fn suggestions_always_pass_parse(input in "[0-9A-Za-zU*ı -]{26,34}") {
            for key in suggestions(&input) {
                prop_assert!(LicenseKey::parse(&key.to_display()).is_ok());
            }
        }
    }
}
