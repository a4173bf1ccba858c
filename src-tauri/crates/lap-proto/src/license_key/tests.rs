//! License keys' rules, pinned: the alphabet and check characters, the display and parsing
//! forms, the errors a typo gives and the suggestions that fix it (with property tests).

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
        !LicenseKey::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_evaluation()
    );
    // Well formed, yet refused: it would pass for "no key" on the wire.
    assert_eq!(
        LicenseKey::parse("0000-0000-0000-0000-0000-0000-0001"),
        Err(LicenseKeyError::AllZero)
    );
    assert_eq!(
        LicenseKey::parse("oooo oooo oooo oooo oooo oooo ooo1"),
        Err(LicenseKeyError::AllZero)
    );
    // Nor is it ever offered as the fix for a typo.
    assert!(suggestions("0000-0000-0000-0000-0000-0000-0002").is_empty());
}

proptest! {
    #[test]
    fn printable_bytes_round_trip(bytes in any::<[u8; 16]>()) {
        let key = LicenseKey::from_bytes(bytes);
        let display = key.to_display();
        prop_assert_eq!(display.len(), 34);
        prop_assert!(display.split('-').all(|group| group.len() == 4));
        prop_assert!(display[..32].bytes().filter(|&b| b != b'-').all(|b| CROCKFORD.contains(&b)));
        if display[32..].contains(['I', 'L', 'O', 'U']) || key.is_evaluation() {
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
