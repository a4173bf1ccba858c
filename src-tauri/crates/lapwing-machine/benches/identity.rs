//! What computing the machine identity costs without a TPM (the budget: 50 ms).
//!
//! - `identity/this-machine`: `identify` on the machine the bench runs on, TPM not consulted
//!   (on the CI VM: no SMBIOS, so the OS id path);
//! - `identity/desktop-table`: `identify` with a typical desktop's SMBIOS table in a sysfs-like
//!   directory, so the table is read, walked and decoded on every call;
//! - `smbios/parse-dump`: parsing that table from a `dmidecode --dump-bin` file's bytes alone.
//!
//! These are warm figures (repeated calls in one process). The cold figure, the first call in
//! a fresh process, comes from `lapctl machine --bench`, which spawns itself several times.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lap_proto::Uuid;
use lapwing_machine::test_util::desktop;
use lapwing_machine::{Options, SmbiosInput, SmbiosVersion, identify};

fn bench(c: &mut Criterion) {
    let version = SmbiosVersion::new(3, 2);
    let uuid = Uuid::from_u128(0x4c4c_4544_0035_1052_8036_b4c0_4f31_3432);
    let dir = tempfile::tempdir().expect("tempdir");
    let dmi = dir.path().join("dmi");
    desktop(version, uuid).write_sysfs(&dmi, version);
    let dump = desktop(version, uuid).dmidecode_sm3(version);

    let mut this_machine = Options::from_env();
    this_machine.tpm = None;
    this_machine.anchor_file = Some(dir.path().join("anchor"));
    let mut desktop_table = this_machine.clone();
    desktop_table.smbios = SmbiosInput::Live(dmi);

    let mut group = c.benchmark_group("identity");
    group.bench_function("this-machine", |b| {
        b.iter(|| identify(black_box(&this_machine)).expect("identity"));
    });
    group.bench_function("desktop-table", |b| {
        b.iter(|| identify(black_box(&desktop_table)).expect("identity"));
    });
    group.finish();
    c.bench_function("smbios/parse-dump", |b| {
        b.iter(|| lapwing_machine::smbios::parse_dump(black_box(&dump)).expect("parses"));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
