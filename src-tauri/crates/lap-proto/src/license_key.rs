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
    /// The all-zero key: well formed, but it is what an evaluation sends in place of a key
    /// (profile §2), so accepting it would let a "key" bypass a policy that forbids evaluations.
    #[error("the all-zero key is not a license key: enter the key your vendor gave you")]
    AllZero,
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
    /// characters are verified, in that order; the all-zero key is refused last.
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
        if key.is_evaluation() {
            return Err(LicenseKeyError::AllZero);
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
mod tests;
