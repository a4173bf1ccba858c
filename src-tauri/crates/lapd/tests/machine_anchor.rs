//! An intermediate without `anchor_file` is identified by its machine, read as a desktop's
//! is (`lapwing-machine`, profile §3): the same machine gives the same anchor, another machine
//! another; and opening the upstream side makes no anchor file.

use std::time::Duration;

use lap_proto::{ServerSecretKeys, Uuid};
use lapd::upstream::{PoolConfig, Upstream, UpstreamConfig, machine_anchor};
use lapwing_machine::{Options, SmbiosInput};

fn machine(dir: &std::path::Path, machine_id: &str) -> Options {
    let smbios = dir.join("smbios");
    std::fs::create_dir_all(&smbios).expect("mkdir");
    let id_file = dir.join(format!("machine-id-{machine_id}"));
    std::fs::write(&id_file, format!("{machine_id}\n")).expect("write");
    Options {
        smbios: SmbiosInput::SysfsDir(smbios),
        tpm: None,
        ek_method: lapwing_machine::EkMethod::Auto,
        tpm_timeout: Duration::from_secs(1),
        machine_id: id_file,
        anchor_file: None,
        pinned: None,
    }
}

#[test]
fn the_machine_identifies_an_intermediate_without_an_anchor_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = machine_anchor(&machine(dir.path(), "5f3b2c9d8e7a41b6a0c1d2e3f4a5b6c7")).expect("a");
    let again =
        machine_anchor(&machine(dir.path(), "5f3b2c9d8e7a41b6a0c1d2e3f4a5b6c7")).expect("a again");
    let b = machine_anchor(&machine(dir.path(), "0123456789abcdef0123456789abcdef")).expect("b");
    assert_eq!(a, again, "the same machine");
    assert_ne!(a, b, "another machine");
}

#[test]
fn opening_without_an_anchor_file_makes_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("vendor.toml"),
        lapd::keys::public_snippet(&ServerSecretKeys::from_bytes([1; 32], &[2; 32])),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("pool.key"),
        lap_proto::test_util::key(3).to_display(),
    )
    .expect("write");
    let config = UpstreamConfig {
        address: Some("127.0.0.1:9".into()),
        srv_domain: None,
        vendor_public: "vendor.toml".into(),
        anchor_file: None,
        state: None,
        pools: vec![PoolConfig {
            sku: Uuid::from_u128(5),
            license_key_file: "pool.key".into(),
            seats: 1,
        }],
    }
    .resolved(Some(dir.path()))
    .expect("config");
    // This machine (the test's) has an OS id at least, so it has an anchor.
    let upstream = Upstream::open(
        config,
        &ServerSecretKeys::from_bytes([3; 32], &[4; 32]),
        || panic!("no anchor file is drawn without anchor_file"),
    )
    .expect("opens on the machine's anchor");
    assert_ne!(upstream.machine_hash(), [0; 32]);
    assert!(!dir.path().join("anchor").exists(), "no anchor file made");
}
