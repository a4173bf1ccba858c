//! Writes the committed seed corpora: `cargo run --example gen_seeds` (from this directory).
//! Each seed is a valid input of its kind, so the fuzzer starts from the accepted paths.

use std::collections::BTreeMap;
use std::path::Path;

use lap_proto::LicenseKind;
use lapwing_core::manifest::Manifest;
use lapwing_core::policy::Policy;
use lapwing_core::state::{Grant, ProductState, ServerSource, ServerUsed, State};
use lapwing_machine::smbios::{SmbiosVersion, parse_dump};
use lapwing_machine::test_util::desktop;

const X25519: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const ED25519: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

/// Writes one seed after checking that its parser accepts it.
fn write(target: &str, name: &str, bytes: &[u8]) {
    let text = || std::str::from_utf8(bytes).expect("UTF-8 seed");
    let accepted = match target {
        "manifest" => Manifest::parse(text(), Path::new(name))
            .map(drop)
            .map_err(|e| e.to_string()),
        "policy" => Policy::parse(text(), Path::new(name))
            .map(drop)
            .map_err(|e| e.to_string()),
        "state_file" => State::parse(bytes).map(drop),
        "smbios" => parse_dump(bytes).map(drop),
        _ => unreachable!("unknown target {target}"),
    };
    if let Err(e) = accepted {
        panic!("seed {target}/{name} is refused by its parser: {e}");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("seed directory");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let server = format!("[server]\nx25519 = \"{X25519}\"\ned25519 = \"{ED25519}\"\n");
    write(
        "manifest",
        "base.toml",
        format!(
            "schema = 1\nid = \"acme-studio\"\nname = \"Acme Studio\"\nvendor = \"Acme\"\n\
             sku = \"6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab\"\nevaluation_days = 30\n\
             response_room = 256\n\n{server}srv_domain = \"licenses.example.com\"\naddress = \"127.0.0.1:4711\"\n"
        )
        .as_bytes(),
    );
    write(
        "manifest",
        "addon.toml",
        format!(
            "schema = 1\nid = \"acme-export\"\nname = \"Acme Export\"\nvendor = \"Acme\"\n\
             sku = \"7f1c2d3e-4a5b-4c6d-8e7f-0123456789ab\"\naddon_of = \"acme-studio\"\n\n{server}address = \"[::1]:4711\"\n"
        )
        .as_bytes(),
    );

    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../installers/policy.example.toml");
    write(
        "policy",
        "example.toml",
        &std::fs::read(example).expect("installers/policy.example.toml"),
    );
    write(
        "policy",
        "locked.toml",
        b"[server]\naddress = \"licenses.example.com:4711\"\nlocked = true\n\n[notifications]\nenabled = true\nwarnings = false\n\n[evaluation]\nallowed = false\n",
    );

    let mut product = ProductState::new(uuid(1), uuid(0));
    product.grant = Some(Grant {
        license_id: uuid(2),
        server_time: 1_795_000_000,
        received_at: 1_795_000_001,
        not_after: Some(1_800_000_000),
        renew_after: Some(1_797_000_000),
        kind: Some(LicenseKind::Term),
        in_compliance: Some(true),
        features: vec!["pro".into(), "export".into()],
        notice: Some("Thank you".into()),
        server: Some(ServerUsed {
            address: "127.0.0.1:4711".into(),
            source: ServerSource::Srv,
        }),
        without_key: false,
    });
    product.warnings_sent = vec!["not-after/30d".into()];
    product.server_override = Some("[::1]:4711".into());
    product.has_key = true;
    let mut addon = ProductState::new(uuid(1), uuid(3));
    addon.evaluation_started = Some(1_795_000_000);
    let state = State {
        highest_time_seen: 1_795_000_100,
        global_override: Some("lap.example.com:4711".into()),
        pinned_anchor: Some("smbios".into()),
        products: BTreeMap::from([
            ("acme-studio".into(), product),
            ("acme-export".into(), addon),
        ]),
        ..State::default()
    };
    let text = serde_json::to_string_pretty(&state).expect("state serializes");
    write("state_file", "two-products.json", text.as_bytes());
    write(
        "state_file",
        "empty.json",
        serde_json::to_string_pretty(&State::default())
            .expect("state")
            .as_bytes(),
    );

    let version = SmbiosVersion { major: 3, minor: 3 };
    let w = desktop(version, uuid(0x4c4c_4544_0042_3510_8032_b4c04f4e3732));
    write("smbios", "table.bin", &w.table());
    write("smbios", "windows.bin", &w.windows_header(version));
    write("smbios", "dmidecode-sm3.bin", &w.dmidecode_sm3(version));
    let old = SmbiosVersion { major: 2, minor: 7 };
    write(
        "smbios",
        "dmidecode-sm.bin",
        &desktop(old, uuid(0x1234_5678)).dmidecode_sm(old),
    );
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}
