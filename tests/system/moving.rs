//! Licenses that move (issue 16, profile 1.1 §9), end to end: `lapd serve` and `lapctl` in
//! two client homes whose machines differ (another OS machine id, so another anchor): two
//! "computers". A one-seat license moves from A to B by deactivating on A; a hardware change
//! keeps the seat; a seat past its lease is reclaimed; a limit on transfers is said; a cloned
//! home is noticed and a lost answer is not; a 1.0 server keeps the seat and the client says
//! so.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lapwing_system_tests::home::Home;
use lapwing_system_tests::{BASE_SKU, Vendor};

const ID: &str = "acme-studio";

/// A home on a machine of its own: `machine_id` is its OS machine id (32 hex digits).
fn computer(vendor: &Vendor, address: &str, machine_id: &str) -> Home {
    let home = Home::new();
    set_machine_id(&home, machine_id);
    home.place_studio(vendor, address);
    home
}

fn set_machine_id(home: &Home, machine_id: &str) {
    std::fs::write(home.path("machine-id"), format!("{machine_id}\n")).expect("machine id");
}

const MACHINE_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const MACHINE_A_NEW: &str = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
const MACHINE_B: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn set_key(home: &Home, key: &str) -> std::process::Output {
    home.run_fed(&["key", "set", ID, "--json"], &format!("{key}\n"))
}

fn deactivate(home: &Home, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["deactivate", ID, "--json"];
    args.extend_from_slice(extra);
    let out = home.run(&args);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "deactivate --json printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    });
    (out.status.code(), json["deactivation"].clone())
}

fn state_word(home: &Home) -> String {
    home.status()["state"]
        .as_str()
        .expect("state word")
        .to_owned()
}

#[test]
fn a_one_seat_license_moves_from_a_to_b_by_deactivating_on_a() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1"]);
    let server = vendor.serve(&[]);
    let address = server.addr.to_string();
    let a = computer(&vendor, &address, MACHINE_A);
    let b = computer(&vendor, &address, MACHINE_B);

    let out = set_key(&a, &key);
    assert!(out.status.success(), "A activates: {}", stderr(&out));
    assert_eq!(state_word(&a), "activated");
    let first_license = a.status()["license_id"].clone();

    // The only seat is A's: B is not answered, and says nothing false about it.
    let out = set_key(&b, &key);
    assert!(!out.status.success(), "B must not get A's seat");
    assert_ne!(state_word(&b), "activated");

    let (code, json) = deactivate(&a, &[]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["outcome"], "released", "{json}");
    assert_eq!(state_word(&a), "deactivated");
    assert!(!a.record_path().exists(), "A's activation record is gone");
    // The key stays unless asked to go.
    assert_eq!(a.status()["has_key"], true);

    let out = b.run(&["activate", ID]);
    assert!(
        out.status.success(),
        "B gets the freed seat: {}",
        stderr(&out)
    );
    assert_eq!(state_word(&b), "activated");
    assert!(b.record_path().exists());
    assert_ne!(
        b.status()["license_id"],
        first_license,
        "a LicenseId names one computer's assignment: B's is its own"
    );

    // A stays quiet: nothing is due for a deactivated product.
    let status = a.status();
    assert_eq!(status["state"], "deactivated");
    assert!(status["next_attempt_at"].is_null(), "{status}");

    // Deactivating again has nothing to release: said plainly, nothing changes.
    let out = a.run(&["deactivate", ID]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not activated on this computer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state_word(&a), "deactivated");
    assert_eq!(state_word(&b), "activated", "B keeps its seat");
}

#[test]
fn a_hardware_change_keeps_the_seat_and_the_old_hash_gets_nothing() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1"]);
    let server = vendor.serve(&[]);
    let address = server.addr.to_string();
    let a = computer(&vendor, &address, MACHINE_A);
    assert!(set_key(&a, &key).status.success());
    let license = a.status()["license_id"].clone();

    // A new motherboard: another anchor. The seat moves with the installation.
    set_machine_id(&a, MACHINE_A_NEW);
    let machine = a.run(&["machine", "--json"]);
    assert!(machine.status.success(), "{}", stderr(&machine));
    let out = a.run(&["activate", ID]);
    assert!(out.status.success(), "moved: {}", stderr(&out));
    let status = a.status();
    assert_eq!(status["state"], "activated");
    assert_eq!(status["license_id"], license, "the LicenseId is kept");
    assert_eq!(status["moved_from_previous_hardware"], true, "{status}");

    // Another installation on a machine with A's old anchor has no claim to the seat.
    let c = computer(&vendor, &address, MACHINE_A);
    let out = set_key(&c, &key);
    assert!(!out.status.success(), "the old hash's seat moved away");
}

/// Relays datagrams to `server` and drops the first answer: a lost answer, then the retry.
struct DropFirstAnswer {
    addr: SocketAddr,
    dropped: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl DropFirstAnswer {
    fn start(server: SocketAddr) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind back");
        front
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        back.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = front.local_addr().expect("address");
        let dropped = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (Arc::clone(&dropped), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut client = None;
            let mut buffer = [0u8; 2048];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, from)) = front.recv_from(&mut buffer) {
                    client = Some(from);
                    let _ = back.send_to(&buffer[..n], server);
                }
                if let Ok(n) = back.recv(&mut buffer)
                    && let Some(to) = client
                {
                    if d.fetch_add(1, Ordering::SeqCst) == 0 {
                        continue; // the first answer is lost on its way
                    }
                    let _ = front.send_to(&buffer[..n], to);
                }
            }
        });
        Self {
            addr,
            dropped,
            stop,
        }
    }
}

impl Drop for DropFirstAnswer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_cloned_home_is_noticed_and_a_lost_answer_is_not() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "5"]);
    let server = vendor.serve(&[]);
    let relay = DropFirstAnswer::start(server.addr);
    let a = computer(&vendor, &relay.addr.to_string(), MACHINE_A);
    assert!(
        set_key(&a, &key).status.success(),
        "activated despite the lost answer"
    );
    assert!(
        relay.dropped.load(Ordering::SeqCst) >= 2,
        "an answer was lost, a retry answered"
    );
    assert_eq!(a.status()["duplicate"], false, "a retry is never a clone");

    // A snapshot of A's home, taken now.
    let clone = computer(&vendor, &relay.addr.to_string(), MACHINE_A);
    copy_dir(&a.data, &clone.data);

    // A goes on: the server sees A's count pass the snapshot's (the count an installation
    // sends is the answers it accepted before; the first renewal after the snapshot sends the
    // same count the clone will). The clone, behind, renews later.
    assert!(a.run(&["activate", ID]).status.success());
    assert!(a.run(&["activate", ID]).status.success());
    let out = clone.run(&["activate", ID]);
    assert!(
        out.status.success(),
        "the clone is answered: {}",
        stderr(&out)
    );
    let status = clone.status();
    assert_eq!(status["duplicate"], true, "{status}");
    let doctor = clone.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("clone") || text.contains("snapshot"),
        "{text}"
    );
    assert_eq!(
        a.status()["duplicate"],
        false,
        "the original is not flagged"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_1_0_server_keeps_the_seat_and_the_client_says_so() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1"]);
    let server = vendor.serve(&["--profile", "1.0"]);
    let a = computer(&vendor, &server.addr.to_string(), MACHINE_A);
    assert!(set_key(&a, &key).status.success());

    let (code, json) = deactivate(&a, &[]);
    assert_eq!(code, Some(8), "kept: {json}");
    assert_eq!(json["outcome"], "kept", "{json}");
    assert!(
        json["notice"].is_null(),
        "a 1.0 server says nothing: {json}"
    );
    // Said in words, as a person reads it.
    let out = a.run(&["deactivate", ID]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(said.contains("cannot release"), "{said}");
    assert_eq!(state_word(&a), "activated");
    assert!(a.record_path().exists(), "the activation is kept");
}

#[test]
fn deactivating_when_the_server_is_silent_changes_nothing_unless_asked_anyway() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1"]);
    let server = vendor.serve(&[]);
    let a = computer(&vendor, &server.addr.to_string(), MACHINE_A);
    assert!(set_key(&a, &key).status.success());
    drop(server);
    let before = std::fs::read(a.record_path()).expect("record");

    let (code, json) = deactivate(&a, &[]);
    assert_eq!(code, Some(9), "{json}");
    assert_eq!(json["outcome"], "unanswered", "{json}");
    assert_eq!(state_word(&a), "activated");
    assert_eq!(std::fs::read(a.record_path()).expect("record"), before);

    let (code, json) = deactivate(&a, &["--anyway"]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["outcome"], "deactivated-here", "{json}");
    assert_eq!(state_word(&a), "deactivated");
    assert!(!a.record_path().exists());
}

/// `lapctl args` in `home` with the clock moved by `offset` seconds (the server's too).
fn run_later(home: &Home, offset: i64, args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut command = home.command(args);
    command.env("LAPWING_CLOCK_OFFSET", offset.to_string());
    match input {
        Some(text) => lapwing_system_tests::output_fed(&mut command, text),
        None => command.output().expect("lapctl runs"),
    }
}

#[test]
fn a_seat_past_its_lease_is_reclaimed_for_another_computer() {
    const DAY: i64 = 86_400;
    let vendor = Vendor::new();
    // A perpetual license whose seat, unrenewed, is held 10 days past its last answer.
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1", "--seat-lease-days", "10"]);
    let now = vendor.serve(&[]);
    let a = computer(&vendor, &now.addr.to_string(), MACHINE_A);
    assert!(set_key(&a, &key).status.success());
    drop(now);

    // Five days later A's seat is still held: B is refused.
    let soon = 5 * DAY;
    let server = vendor.serve(&["--time-offset", &soon.to_string()]);
    let b = computer(&vendor, &server.addr.to_string(), MACHINE_B);
    let out = run_later(&b, soon, &["key", "set", ID], Some(&format!("{key}\n")));
    assert!(!out.status.success(), "A's seat is within its lease");
    drop(server);

    // Forty-five days later, A never having renewed, the seat was reclaimed.
    let later = 45 * DAY;
    let server = vendor.serve(&["--time-offset", &later.to_string()]);
    b.place_studio(&vendor, &server.addr.to_string());
    let out = run_later(&b, later, &["activate", ID], None);
    assert!(
        out.status.success(),
        "B gets the reclaimed seat: {}",
        stderr(&out)
    );
}

#[test]
fn a_transfer_past_the_yearly_limit_is_refused_with_the_servers_notice() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", "1", "--transfers-per-year", "1"]);
    let server = vendor.serve(&[]);
    let a = computer(&vendor, &server.addr.to_string(), MACHINE_A);
    assert!(set_key(&a, &key).status.success());

    // The year's one transfer.
    let (code, json) = deactivate(&a, &[]);
    assert_eq!(
        (code, &json["outcome"]),
        (Some(0), &"released".into()),
        "{json}"
    );
    assert!(
        a.run(&["activate", ID]).status.success(),
        "the seat is free again"
    );

    // A second one the same year: kept, with the server's words on when it can move again.
    let (code, json) = deactivate(&a, &[]);
    assert_eq!(code, Some(8), "{json}");
    assert_eq!(json["outcome"], "kept", "{json}");
    assert!(
        json["notice"]
            .as_str()
            .is_some_and(|n| n.contains("can move again on")),
        "{json}"
    );
    assert_eq!(state_word(&a), "activated");
    assert!(a.record_path().exists(), "the activation is kept");
}
