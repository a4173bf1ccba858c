//! systemd-timedated's `NTPSynchronized`, read as the engine reads it, from a stand-in served
//! on a private bus (`dbus-daemon`, as the keyring tests use): the D-Bus call itself is
//! tested, not a fake of it.
#![cfg(target_os = "linux")]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use lapwing_core::time_sources::timedated_synchronized;

/// A private bus; the daemon is stopped when dropped.
struct Bus {
    daemon: Child,
    address: String,
}

impl Bus {
    fn start() -> Self {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (the dbus package) runs");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("the bus address");
        Self {
            daemon,
            address: address.trim().to_owned(),
        }
    }

    async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .expect("address")
            .build()
            .await
            .expect("connects")
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

struct Timedate {
    synchronized: bool,
}

#[zbus::interface(name = "org.freedesktop.timedate1")]
impl Timedate {
    #[zbus(property, name = "NTPSynchronized")]
    fn ntp_synchronized(&self) -> bool {
        self.synchronized
    }
}

#[tokio::test]
async fn ntp_synchronized_is_read_from_timedated_over_the_bus() {
    let bus = Bus::start();
    let client = bus.connect().await;
    let missing = timedated_synchronized(&client)
        .await
        .expect_err("nobody serves timedate1 yet");
    assert!(
        missing.contains("systemd-timedated did not answer"),
        "{missing}"
    );

    for synchronized in [true, false] {
        let service = zbus::connection::Builder::address(bus.address.as_str())
            .expect("address")
            .name("org.freedesktop.timedate1")
            .expect("name")
            .serve_at("/org/freedesktop/timedate1", Timedate { synchronized })
            .expect("object")
            .build()
            .await
            .expect("serves");
        assert_eq!(timedated_synchronized(&client).await, Ok(synchronized));
        drop(service);
    }
}
