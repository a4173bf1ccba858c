//! Test helpers (feature `test-util`): an SMBIOS table writer, so fixtures say what they mean
//! instead of being hand-typed hex, and a harness that runs a real software TPM (`swtpm`).
#![allow(clippy::missing_panics_doc)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lap_proto::Uuid;

use crate::smbios::{SmbiosVersion, swap_uuid_fields};

/// Builds SMBIOS structure tables and wraps them in each file form.
#[derive(Clone, Debug, Default)]
pub struct SmbiosWriter {
    structures: Vec<Vec<u8>>,
}

/// A structure's strings: `add` returns the string number a field stores (0 for an empty
/// string, which SMBIOS writes as "no string").
#[derive(Debug, Default)]
pub struct Strings(Vec<Vec<u8>>);

impl Strings {
    pub fn add(&mut self, s: &str) -> u8 {
        if s.is_empty() {
            return 0;
        }
        self.0.push(s.as_bytes().to_vec());
        u8::try_from(self.0.len()).expect("fewer than 256 strings in a test structure")
    }
}

impl SmbiosWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Any structure: `fields` is the formatted area after the 4-byte header.
    pub fn structure(&mut self, kind: u8, fields: &[u8], strings: &Strings) -> &mut Self {
        let handle = u16::try_from(self.structures.len()).expect("few test structures");
        let mut s = vec![
            kind,
            u8::try_from(4 + fields.len()).expect("formatted area under 252 bytes"),
        ];
        s.extend_from_slice(&handle.to_le_bytes());
        s.extend_from_slice(fields);
        for string in &strings.0 {
            s.extend_from_slice(string);
            s.push(0);
        }
        if strings.0.is_empty() {
            s.push(0);
        }
        s.push(0);
        self.structures.push(s);
        self
    }

    /// Bytes appended as they are (for malformed tables).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.structures.push(bytes.to_vec());
        self
    }

    /// Type 0, BIOS information (SMBIOS 2.0 layout, 0x12 bytes).
    pub fn bios(&mut self, vendor: &str, version: &str) -> &mut Self {
        let mut st = Strings::default();
        let mut f = vec![
            st.add(vendor),
            st.add(version),
            0x00,
            0xe0,
            st.add("01/01/2024"),
            0x0f,
        ];
        f.extend_from_slice(&[0x80, 0x98, 0x8b, 0x3f, 0, 0, 0, 0]);
        self.structure(0, &f, &st)
    }

    /// Type 1 with a UUID given as its stored bytes (2.4 layout, 0x1B bytes).
    pub fn system_stored(
        &mut self,
        manufacturer: &str,
        product: &str,
        serial: &str,
        stored_uuid: [u8; 16],
    ) -> &mut Self {
        let mut st = Strings::default();
        let mut f = vec![
            st.add(manufacturer),
            st.add(product),
            st.add("1.0"),
            st.add(serial),
        ];
        f.extend_from_slice(&stored_uuid);
        f.push(0x06); // wake-up: power switch
        f.push(st.add("SKU"));
        f.push(st.add("Family"));
        self.structure(1, &f, &st)
    }

    /// Type 1 with `uuid` stored as firmware of SMBIOS `version` stores it (2.6+: the first
    /// three fields little-endian).
    pub fn system(
        &mut self,
        manufacturer: &str,
        product: &str,
        uuid: Uuid,
        version: SmbiosVersion,
    ) -> &mut Self {
        let stored = if version.uuid_fields_little_endian() {
            swap_uuid_fields(*uuid.as_bytes())
        } else {
            *uuid.as_bytes()
        };
        self.system_stored(manufacturer, product, "System Serial", stored)
    }

    /// Type 2, baseboard (0x0F bytes).
    pub fn baseboard(&mut self, manufacturer: &str, product: &str, serial: &str) -> &mut Self {
        let mut st = Strings::default();
        let f = vec![
            st.add(manufacturer),
            st.add(product),
            st.add("Rev 1.0"),
            st.add(serial),
            st.add(""),
            0x09,
            st.add("Motherboard"),
            0x03,
            0x00,
            0x0a,
            0x00,
        ];
        self.structure(2, &f, &st)
    }

    /// Type 4, processor (2.5 layout, 0x2A bytes); `populated` sets status bit 6.
    pub fn processor(&mut self, socket: &str, populated: bool) -> &mut Self {
        let mut st = Strings::default();
        let mut f = vec![
            st.add(socket),
            0x03,
            0xb3,
            st.add(if populated {
                "Intel(R) Corporation"
            } else {
                ""
            }),
        ];
        f.extend_from_slice(&[0; 8]); // processor id
        f.push(st.add(if populated { "Intel(R) Xeon(R)" } else { "" }));
        f.push(0x8c); // voltage
        f.extend_from_slice(&100u16.to_le_bytes());
        f.extend_from_slice(&4000u16.to_le_bytes());
        f.extend_from_slice(&(if populated { 2400u16 } else { 0 }).to_le_bytes());
        f.push(if populated { 0x41 } else { 0x00 }); // status: populated, enabled
        f.push(0x01); // upgrade
        f.extend_from_slice(&[0xff; 6]); // cache handles: none
        f.extend_from_slice(&[0, 0, 0]); // serial, asset tag, part number strings
        f.extend_from_slice(&[8, 8, 16]); // cores, enabled, threads
        f.extend_from_slice(&0x00fcu16.to_le_bytes());
        f.extend_from_slice(&0x00b3u16.to_le_bytes());
        self.structure(4, &f, &st)
    }

    /// Type 127, end of table.
    pub fn end(&mut self) -> &mut Self {
        self.structure(127, &[], &Strings::default())
    }

    /// The bare table.
    pub fn table(&self) -> Vec<u8> {
        self.structures.concat()
    }

    /// The Windows `RawSMBIOSData` form: Used20CallingMethod, major, minor, DMI revision,
    /// u32 length, then the table.
    pub fn windows_header(&self, version: SmbiosVersion) -> Vec<u8> {
        let table = self.table();
        let mut out = vec![0, version.major, version.minor, 0];
        out.extend_from_slice(&u32::try_from(table.len()).expect("small").to_le_bytes());
        out.extend_from_slice(&table);
        out
    }

    /// A 2.x `_SM_` entry point whose table is at `address`, `length` bytes long.
    pub fn entry_point_2(&self, version: SmbiosVersion, address: u32) -> Vec<u8> {
        let table = self.table();
        let mut ep = vec![0u8; 0x1f];
        ep[..4].copy_from_slice(b"_SM_");
        ep[5] = 0x1f;
        ep[6] = version.major;
        ep[7] = version.minor;
        ep[8..10].copy_from_slice(&0x100u16.to_le_bytes());
        ep[0x10..0x15].copy_from_slice(b"_DMI_");
        ep[0x16..0x18].copy_from_slice(&u16::try_from(table.len()).expect("small").to_le_bytes());
        ep[0x18..0x1c].copy_from_slice(&address.to_le_bytes());
        ep[0x1c..0x1e].copy_from_slice(
            &u16::try_from(self.structures.len())
                .expect("few")
                .to_le_bytes(),
        );
        ep[0x1e] = (version.major << 4) | (version.minor & 0x0f);
        ep[0x15] = checksum(&ep[0x10..0x1f]);
        ep[4] = checksum(&ep);
        ep
    }

    /// A 3.x `_SM3_` entry point; `max_length` is the stated maximum table size.
    pub fn entry_point_3(&self, version: SmbiosVersion, address: u64, max_length: u32) -> Vec<u8> {
        let mut ep = vec![0u8; 0x18];
        ep[..5].copy_from_slice(b"_SM3_");
        ep[6] = 0x18;
        ep[7] = version.major;
        ep[8] = version.minor;
        ep[9] = 0;
        ep[0x0a] = 1;
        ep[0x0c..0x10].copy_from_slice(&max_length.to_le_bytes());
        ep[0x10..0x18].copy_from_slice(&address.to_le_bytes());
        ep[5] = checksum(&ep);
        ep
    }

    /// `dmidecode --dump-bin` with a 2.x entry point: entry point, padding, table at 0x20.
    pub fn dmidecode_sm(&self, version: SmbiosVersion) -> Vec<u8> {
        let mut out = self.entry_point_2(version, 0x20);
        out.resize(0x20, 0);
        out.extend_from_slice(&self.table());
        out
    }

    /// `dmidecode --dump-bin` with a 3.x entry point. Its length is a maximum: here it is
    /// larger than the table, and junk follows the table, as in real dumps of firmware that
    /// states a generous maximum.
    pub fn dmidecode_sm3(&self, version: SmbiosVersion) -> Vec<u8> {
        let table = self.table();
        let max = u32::try_from(table.len() + 64).expect("small");
        let mut out = self.entry_point_3(version, 0x20, max);
        out.resize(0x20, 0);
        out.extend_from_slice(&table);
        out.extend_from_slice(&[0xa5; 16]);
        out
    }

    /// Writes the Linux sysfs pair (`smbios_entry_point`, `DMI`) into `dir`, with an `_SM3_`
    /// entry point at a firmware-like address.
    pub fn write_sysfs(&self, dir: &Path, version: SmbiosVersion) {
        let table = self.table();
        let ep = self.entry_point_3(
            version,
            0x7ff4_0000,
            u32::try_from(table.len()).expect("small"),
        );
        std::fs::create_dir_all(dir).expect("sysfs dir");
        std::fs::write(dir.join("smbios_entry_point"), ep).expect("entry point written");
        std::fs::write(dir.join("DMI"), table).expect("table written");
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

/// A typical desktop: a real UUID, a real board, one populated socket and one empty.
pub fn desktop(version: SmbiosVersion, uuid: Uuid) -> SmbiosWriter {
    let mut w = SmbiosWriter::new();
    w.bios("American Megatrends International, LLC.", "1.A0")
        .system(
            "Micro-Star International Co., Ltd.",
            "MS-7C56",
            uuid,
            version,
        )
        .baseboard(
            "Micro-Star International Co., Ltd.",
            "B550-A PRO (MS-7C56)",
            "07C5611_M71E123456",
        )
        .processor("CPU0", true)
        .processor("CPU1", false)
        .end();
    w
}

/// A software TPM's state directory, manufactured by `swtpm_setup` with an EK certificate.
#[derive(Debug)]
pub struct SwtpmState {
    dir: tempfile::TempDir,
}

/// Fails the test with a clear message when a required tool is missing: the TPM tests never
/// skip themselves.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "{tool} is not installed: the TPM tests need a real software TPM \
         (Debian: apt-get install swtpm swtpm-tools; ./dev.sh installs them)"
    );
}

impl SwtpmState {
    /// Manufactures a fresh TPM (new endorsement seed, RSA and ECC EKs, EK certificates from
    /// a throwaway local CA). The config files live in the state's own directory, so nothing
    /// depends on `/etc/swtpm_setup.conf` or on `/var/lib/swtpm-localca` being writable.
    pub fn manufacture() -> Self {
        require("swtpm");
        require("swtpm_setup");
        let dir = tempfile::tempdir().expect("tempdir for the TPM");
        let root = dir.path();
        let state = root.join("state");
        let ca = root.join("ca");
        std::fs::create_dir_all(&state).expect("state dir");
        std::fs::create_dir_all(&ca).expect("ca dir");
        let localca_conf = root.join("swtpm-localca.conf");
        let localca_options = root.join("swtpm-localca.options");
        let setup_conf = root.join("swtpm_setup.conf");
        std::fs::write(
            &localca_conf,
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n",
                ca = ca.display()
            ),
        )
        .expect("localca conf");
        std::fs::write(
            &localca_options,
            "--platform-manufacturer Lapwing\n--platform-version 2.1\n--platform-model test\n",
        )
        .expect("localca options");
        std::fs::write(
            &setup_conf,
            format!(
                "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = {}\nactive_pcr_banks = sha256\n",
                localca_conf.display(),
                localca_options.display()
            ),
        )
        .expect("setup conf");
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--create-ek-cert", "--tpmstate"])
            .arg(&state)
            .arg("--config")
            .arg(&setup_conf)
            .output()
            .expect("swtpm_setup runs");
        assert!(
            out.status.success(),
            "swtpm_setup failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts `swtpm` on this state.
    pub fn start(&self) -> Swtpm {
        Swtpm::start(&self.state_dir())
    }
}

/// A running `swtpm socket`, killed when dropped.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    pub port: u16,
}

/// Two consecutive free TCP ports on loopback (swtpm's server and control ports).
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = first.local_addr().expect("addr").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}

impl Swtpm {
    pub fn start(state_dir: &Path) -> Self {
        require("swtpm");
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--server"])
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("swtpm starts");
        let mut swtpm = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = swtpm.child.try_wait() {
                panic!("swtpm exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "swtpm did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        swtpm
    }

    /// The TCTI configuration that reaches it.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Stops it and waits, so the state directory can be reused.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
