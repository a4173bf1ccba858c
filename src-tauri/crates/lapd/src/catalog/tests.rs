//! The catalog's parsing rules and lookups, and adding a license to its file.

use super::*;
use lap_proto::test_util;

const BASE: &str = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11";
const ADDON: &str = "0d3f4b43-4c39-4a43-9a3e-5f7a1c0e9b12";

fn key() -> LicenseKey {
    test_util::key(0x42)
}

fn catalog_text(extra: &str) -> String {
    format!(
        "[[sku]]\nid = \"{BASE}\"\nname = \"Base\"\nevaluation_days = 30\n\n[[sku]]\nid = \"{ADDON}\"\nname = \"Addon\"\nbase = \"{BASE}\"\n{extra}"
    )
}

fn parse(text: &str) -> Result<LicenseCatalog, CatalogError> {
    LicenseCatalog::parse(text, Path::new("test.toml"))
}

#[test]
fn valid_catalog_indexes_skus_and_licenses() {
    let text = catalog_text(&format!(
        "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 2\ndays = 365\nfeatures = [\"pro\"]\n",
        key().to_display()
    ));
    let catalog = parse(&text).expect("valid");
    let base: Uuid = BASE.parse().expect("uuid");
    let addon: Uuid = ADDON.parse().expect("uuid");
    assert_eq!(catalog.sku(&addon).and_then(|s| s.base), Some(base));
    assert_eq!(catalog.sku(&base).and_then(|s| s.evaluation_days), Some(30));
    assert_eq!(
        catalog
            .sku(&base)
            .map(|s| (s.evaluation_cap, s.evaluation_cap_hours)),
        Some((DEFAULT_EVALUATION_CAP, DEFAULT_EVALUATION_CAP_HOURS)),
        "the evaluation cap has a default"
    );
    let license = catalog
        .license(base, key().as_bytes())
        .expect("license indexed");
    assert_eq!(license.term, Term::Days(365));
    assert_eq!(license.seats, 2);
    assert!(catalog.license(addon, key().as_bytes()).is_none());
}

#[test]
fn each_mistake_is_named() {
    let k = key().to_display();
    let cases = [
        (
            "[[sku]]\nid = \"nope\"\nname = \"x\"\n".to_owned(),
            "not valid TOML",
        ),
        (
            catalog_text(
                "[[sku]]\nid = \"00000000-0000-0000-0000-000000000001\"\nname = \"x\"\nbase = \"00000000-0000-0000-0000-000000000002\"\n",
            ),
            "unknown base",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"lifetime\"\nseats = 1\n"
            )),
            "is not one of",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"evaluation\"\nseats = 1\n"
            )),
            "is not one of",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 0\n"
            )),
            "at least 1",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 1\n"
            )),
            "needs days or not_after",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"term\"\nseats = 1\ndays = 3\nnot_after = 5\n"
            )),
            "not both",
        ),
        (
            catalog_text(
                "[[license]]\nkey = \"0000-0000-0000-0000-0000-0000-0000\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nkind = \"perpetual\"\nseats = 1\n",
            ),
            "key",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\n[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\n"
            )),
            "twice",
        ),
        (
            catalog_text(&format!(
                "[[license]]\nkey = \"{k}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\nfeatures = [\"a,b\"]\n"
            )),
            "comma",
        ),
        (catalog_text("surprise = 1\n"), "not valid TOML"),
        (
            "[[sku]]\nid = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nname = \"x\"\nevaluation_days = 30\nevaluation_cap = 0\n".to_owned(),
            "evaluation_cap",
        ),
    ];
    for (text, needle) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        assert!(!err.contains(&k), "errors never echo a key: {err}");
    }
}

#[test]
fn add_license_keeps_comments_and_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, format!("# my products\n{}", catalog_text(""))).expect("write");
    let new = NewLicense {
        sku: BASE.parse().expect("uuid"),
        kind: LicenseKind::Perpetual,
        seats: 3,
        days: None,
        features: vec!["pro".into()],
        notice: Some("hi".into()),
        transfers_per_year: Some(2),
        seat_lease_days: Some(45),
        pool: false,
    };
    add_license(&path, &new, &key()).expect("added");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("# my products\n"));
    assert!(text.contains("transfers_per_year = 2"), "{text}");
    assert!(text.contains("seat_lease_days = 45"), "{text}");
    let catalog = LicenseCatalog::load(&path).expect("still valid");
    assert_eq!(catalog.licenses().count(), 1);
    let added = catalog.licenses().next().expect("one license");
    assert_eq!(added.transfers_per_year, Some(2));
    assert_eq!(added.seat_lease_days, Some(45));
    assert!(!added.pool);

    let bad = NewLicense {
        sku: Uuid::from_u128(7),
        ..new
    };
    assert!(add_license(&path, &bad, &test_util::key(7)).is_err());
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        text,
        "a refused add changes nothing"
    );
    let pool = NewLicense {
        sku: BASE.parse().expect("uuid"),
        pool: true,
        seats: 50,
        ..bad
    };
    add_license(&path, &pool, &test_util::key(9)).expect("a pool added");
    let catalog = LicenseCatalog::load(&path).expect("still valid");
    assert_eq!(catalog.licenses().filter(|l| l.pool).count(), 1);
}

#[test]
fn lifecycle_settings_are_read_and_a_zero_lease_refused() {
    let license = |extra: &str| {
        catalog_text(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"perpetual\"\nseats = 1\n{extra}\n",
            key().to_display()
        ))
    };
    let base: Uuid = BASE.parse().expect("uuid");
    let read = |extra: &str| {
        parse(&license(extra))
            .expect("valid")
            .license(base, key().as_bytes())
            .map(|l| (l.transfers_per_year, l.seat_lease_days))
    };
    assert_eq!(read(""), Some((None, None)), "no cap, the default lease");
    assert_eq!(
        read("transfers_per_year = 3\nseat_lease_days = 120"),
        Some((Some(3), Some(120)))
    );
    assert_eq!(read("transfers_per_year = 0"), Some((Some(0), None)));
    let refused = parse(&license("seat_lease_days = 0")).expect_err("refused");
    assert!(refused.to_string().contains("seat_lease_days"), "{refused}");
}

#[test]
fn a_pool_is_read_and_its_impossible_settings_refused() {
    let pool = |extra: &str| {
        parse(&catalog_text(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{BASE}\"\nkind = \"subscription\"\nseats = 50\npool = true\n{extra}",
            key().to_display()
        )))
    };
    let catalog = pool("not_after = 1900000000\n").expect("valid");
    assert!(catalog.licenses().all(|l| l.pool));
    for (extra, says) in [
        ("days = 365\n", "a pool's end is not_after, not days"),
        (
            "not_after = 1900000000\nallow_overuse = true\n",
            "a pool cannot allow overuse",
        ),
    ] {
        match pool(extra) {
            Err(CatalogError::Invalid { message, .. }) => {
                assert!(message.contains(says), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
