//! Writes the committed seed corpora, `fuzz/seeds/<target>/`, from the same fixtures the
//! targets use. Deterministic: re-running it rewrites identical files.
//!
//! ```sh
//! cd src-tauri/crates/lap-proto/fuzz && cargo run --example gen_seeds
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use lap_proto::{
    ActivationRecord, Delegation, Intent, LicenseKey, LicenseKind, Response, SeedExtensions,
    ServerData, Uuid,
};
use lap_proto_fuzz::{
    ADDON_ID, BASE_ID, Exchange, LICENSE_ID, SKU_BASE, TIME, addon_request, base_request,
    exchanges, rules, server_keys,
};

/// Writes one target's seeds into the directory it is given.
type SeedWriter = fn(&Path);

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with_control(control: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![control];
    out.extend_from_slice(body);
    out
}

fn full_server_data() -> ServerData {
    ServerData {
        not_after: Some(TIME + 365 * 86_400),
        renew_after: Some(TIME + 30 * 86_400),
        kind: Some(LicenseKind::Term),
        in_compliance: Some(true),
        features: vec!["pro".into(), "export".into()],
        notice: Some("Thanks for using Acme".into()),
        asset_key: Some(vec![0xa7; 32].into()),
        vendor_records: vec![(0x80, vec![1, 2, 3]), (0xfe, vec![])],
        ..ServerData::default()
    }
}

/// Profile 1.1's records: an intermediate's grant (Seats, a signed Delegation) flagged as a
/// Duplicate, and a release confirmation.
fn lifecycle_server_data() -> [ServerData; 2] {
    let delegation = Delegation::sign(
        server_keys(),
        [0x31; 32],
        [0x32; 32],
        SKU_BASE,
        25,
        TIME + 86_400,
    )
    .expect("signs");
    [
        ServerData {
            not_after: Some(TIME + 86_400),
            seats: Some(25),
            delegation: Some(Box::new(delegation)),
            duplicate: true,
            ..ServerData::default()
        },
        ServerData {
            not_after: Some(TIME),
            released: true,
            ..ServerData::default()
        },
    ]
}

fn small_server_data() -> ServerData {
    ServerData {
        kind: Some(LicenseKind::Subscription),
        in_compliance: Some(false),
        features: vec!["addon".into()],
        ..ServerData::default()
    }
}

fn response(x: &Exchange, server_data: &[u8]) -> Response {
    Response {
        server_time: TIME + 5,
        client_id: x.request.client_id(),
        sku_id: x.request.sku_id,
        license_id: LICENSE_ID,
        server_data: server_data.to_vec().into(),
    }
}

fn request_seeds(dir: &Path) {
    let base = base_request().encode().expect("encodes");
    let addon = addon_request().encode().expect("encodes");
    write(dir, "p-base", &with_control(0, &base));
    write(dir, "p-addon", &with_control(0, &addon));
    let mut shortest = base_request();
    shortest.client_seed = vec![0x42].into();
    write(
        dir,
        "p-shortest",
        &with_control(0, &shortest.encode().expect("encodes")),
    );
    let mut longest = addon_request();
    longest.client_seed = vec![0x43; 1200 - rules::REQUEST_WRAP - 88].into();
    write(
        dir,
        "p-longest",
        &with_control(0, &longest.encode().expect("encodes")),
    );
    let mut bad = base.to_vec();
    bad[0] = 1; // draft -03's version
    // Control 2: invalid plaintexts also go through seal_raw_request and open_request.
    write(dir, "p-version-1", &with_control(2, &bad));
    let mut bad = base.to_vec();
    bad[80] = 1; // Reserved
    write(dir, "p-reserved", &with_control(2, &bad));

    let fx = exchanges();
    write(dir, "d-base", &with_control(1, &fx.base.request_datagram));
    write(dir, "d-addon", &with_control(1, &fx.addon.request_datagram));
    for (i, point) in rules::low_order_points().iter().enumerate() {
        let mut datagram = point.to_vec();
        datagram.resize(rules::REQUEST_PLAINTEXT_MIN + rules::REQUEST_WRAP, 0);
        write(
            dir,
            &format!("d-low-order-{i:02}"),
            &with_control(1, &datagram),
        );
    }
}

fn response_seeds(dir: &Path) {
    let fx = exchanges();
    let keys = server_keys();
    let full = full_server_data().encode().expect("encodes");
    let small = small_server_data().encode().expect("encodes");
    assert!(full.len() <= fx.base.sealer.max_server_data_len());
    assert!(small.len() <= fx.addon.sealer.max_server_data_len());

    let base_full = response(&fx.base, &full).encode().expect("encodes");
    let addon_small = response(&fx.addon, &small).encode().expect("encodes");
    write(dir, "p-base-full", &with_control(0, &base_full));
    write(
        dir,
        "p-base-empty",
        &with_control(0, &response(&fx.base, &[]).encode().expect("encodes")),
    );
    write(dir, "p-addon", &with_control(2, &addon_small));
    // The add-on exchange answered with the base id: ClientId mismatch.
    let mut wrong = response(&fx.addon, &small);
    wrong.client_id = BASE_ID;
    write(
        dir,
        "p-addon-wrong-client",
        &with_control(2, &wrong.encode().expect("encodes")),
    );
    // Room: the largest answer the base exchange accepts, then one byte more (Size fixed up).
    let room = fx.base.sealer.max_server_data_len();
    let largest = response(&fx.base, &vec![0x80; room])
        .encode()
        .expect("fits");
    write(dir, "p-base-largest", &with_control(0, &largest));
    let mut over = largest.to_vec();
    over.push(0);
    let size = u16::try_from(over.len()).expect("small").to_le_bytes();
    over[1..3].copy_from_slice(&size);
    write(dir, "p-base-over", &with_control(0, &over));

    let d_base = fx
        .base
        .sealer
        .seal(keys, TIME + 5, LICENSE_ID, &full)
        .expect("seals");
    let d_addon = fx
        .addon
        .sealer
        .seal(keys, TIME + 5, LICENSE_ID, &small)
        .expect("seals");
    write(dir, "d-base", &with_control(1, &d_base));
    write(dir, "d-addon", &with_control(1, &d_addon));
}

fn server_data_seeds(dir: &Path) {
    write(dir, "full", &full_server_data().encode().expect("encodes"));
    write(
        dir,
        "small",
        &small_server_data().encode().expect("encodes"),
    );
    write(dir, "empty", &[]);
    // Reserved record ignored, then Kind; vendor records repeat and keep their order.
    write(
        dir,
        "reserved-and-kind",
        &[0x10, 2, 0, 0xaa, 0xbb, 0x03, 1, 0, 0],
    );
    write(
        dir,
        "vendor-repeat",
        &[0x80, 1, 0, 1, 0x90, 0, 0, 0x80, 1, 0, 2],
    );
    write(dir, "features-empty", &[0x05, 0, 0, 0x06, 0, 0]);
    let mut notice = vec![0x06, 200, 0];
    notice.extend(std::iter::repeat_n(b'n', 200));
    write(dir, "notice-200", &notice);
    write(dir, "duplicate-kind", &[0x03, 1, 0, 0, 0x03, 1, 0, 1]);
    let [pool, released] = lifecycle_server_data();
    write(dir, "pool-duplicate", &pool.encode().expect("encodes"));
    write(dir, "released", &released.encode().expect("encodes"));
}

fn seed_extension_seeds(dir: &Path) {
    let release = SeedExtensions {
        intent: Intent::Release,
        generation: Some(7),
        ..SeedExtensions::default()
    };
    let moved = SeedExtensions {
        previous_machine_hash: Some([0x5a; 32]),
        generation: Some(1),
        ..SeedExtensions::default()
    };
    let pool = SeedExtensions {
        pool_request: Some(50),
        pool_usage: Some(12),
        ..SeedExtensions::default()
    };
    for (name, extensions, room) in [
        ("release", release, 128),
        ("moved", moved, 128),
        ("pool", pool, 256),
    ] {
        let mut bytes = vec![0; room];
        extensions.write_into(&mut bytes).expect("fits");
        write(dir, name, &bytes);
    }
    write(dir, "zero-room", &[0; 128]);
    // An unknown type skipped, then Intent 0 and Generation filling Room exactly.
    write(
        dir,
        "unknown-then-exact",
        &[0x42, 1, 0, 9, 0x01, 1, 0, 0, 0x03, 4, 0, 2, 0, 0, 0],
    );
    write(dir, "after-end", &[0x01, 1, 0, 1, 0, 0, 1]);
}

fn license_key_seeds(dir: &Path) {
    let key = LicenseKey::from_bytes(core::array::from_fn(|i| {
        u8::try_from(i * 17).expect("small")
    }));
    let display = key.to_display();
    assert!(LicenseKey::parse(&display).is_ok(), "seed key is printable");
    write(dir, "display", display.as_bytes());
    let messy = format!(
        "  {}\r\n{} ",
        display[..17]
            .to_ascii_lowercase()
            .replace('0', "o")
            .replace('1', "l"),
        display[17..].replace('-', " ")
    );
    write(dir, "messy", messy.as_bytes());
    let bare = display.replace('-', "");
    let mut typo: Vec<char> = bare.chars().collect();
    typo[5] = if typo[5] == 'X' { 'Y' } else { 'X' };
    write(
        dir,
        "substitution",
        typo.iter().collect::<String>().as_bytes(),
    );
    let mut swapped: Vec<char> = bare.chars().collect();
    let p = (0..27)
        .find(|&p| swapped[p] != swapped[p + 1])
        .expect("not one repeated character");
    swapped.swap(p, p + 1);
    write(dir, "swap", swapped.iter().collect::<String>().as_bytes());
    let mut u: Vec<char> = bare.chars().collect();
    u[11] = 'U';
    write(dir, "u", u.iter().collect::<String>().as_bytes());
    write(dir, "evaluation", b"0000-0000-0000-0000-0000-0000-0001");
    write(dir, "iso-example", b"ISO793W");
    // All ones: its check characters are "SI", never issued, and the display does not parse.
    write(dir, "all-ones", &[0xff; 16]);
}

fn record_seeds(dir: &Path) {
    let fx = exchanges();
    let keys = server_keys();
    let full = full_server_data().encode().expect("encodes");
    let small = small_server_data().encode().expect("encodes");
    for (name, x, data) in [("base", &fx.base, &full), ("addon", &fx.addon, &small)] {
        let datagram = x
            .sealer
            .seal(keys, TIME + 5, LICENSE_ID, data)
            .expect("seals");
        let activation = x.pending.open(&datagram).expect("opens");
        let record = ActivationRecord::new("com.example.acme", &activation);
        write(
            dir,
            &format!("record-{name}.json"),
            record.to_json().as_bytes(),
        );
    }
    let other = ActivationRecord {
        schema: 2,
        id: "x".into(),
        sku: SKU_BASE,
        client_id: ADDON_ID,
        license_id: Uuid::nil(),
        server_time: 0,
        response: String::new(),
        key: "AAAA".into(),
    };
    write(dir, "schema-2.json", other.to_json().as_bytes());
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let targets: [(&str, SeedWriter); 6] = [
        ("request_open", request_seeds),
        ("response_open", response_seeds),
        ("server_data", server_data_seeds),
        ("license_key", license_key_seeds),
        ("activation_record", record_seeds),
        ("seed_extensions", seed_extension_seeds),
    ];
    for (target, make) in targets {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear old seeds");
        }
        fs::create_dir_all(&dir).expect("create seed dir");
        make(&dir);
        println!(
            "{}: {} seeds",
            dir.display(),
            fs::read_dir(&dir).expect("list").count()
        );
    }
}
