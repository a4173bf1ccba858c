//! Where this machine's clock can be checked: the system's own word on its synchronization
//! (no packet sent), the time servers the system is configured with, and one SNTP query.
//! Behind a trait, so the clock checks (`clock_check`) are tested with a fake and run with
//! the real parts.

use std::net::Ipv6Addr;
use std::time::Duration;

use futures::future::BoxFuture;

/// The parts a clock check asks.
pub trait TimeSources: Send + Sync + std::fmt::Debug {
    /// Whether the system says its clock is synchronized with network time, or why it could
    /// not be asked. Sends nothing on the network.
    fn synchronized(&self) -> BoxFuture<'_, Result<bool, String>>;

    /// The time servers the system is configured with, `HOST:PORT`, preferred first.
    fn system_servers(&self) -> BoxFuture<'_, Vec<String>>;

    /// One SNTP query (one datagram) to `server`, `HOST:PORT`: its time in UNIX seconds.
    fn query<'a>(
        &'a self,
        server: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, String>>;
}

/// An engine given no time sources (tests that do not check the clock): every check says it
/// could not be made, and nothing is sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTimeSources;

impl TimeSources for NoTimeSources {
    fn synchronized(&self) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async { Err("no time source is configured".to_owned()) })
    }

    fn system_servers(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    fn query<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async { Err("no time source is configured".to_owned()) })
    }
}

/// This machine's: systemd-timedated's `NTPSynchronized` over the system bus and
/// systemd-timesyncd's configured servers on Linux (nothing elsewhere yet), and SNTP over UDP.
#[derive(Debug, Default, Clone)]
pub struct SystemTimeSources {
    /// Set when the engine's clock is shifted from the system's (`LAPWING_CLOCK_OFFSET`): the
    /// system's word on its own clock then says nothing about the engine's.
    pub shifted_by: Option<i64>,
}

impl TimeSources for SystemTimeSources {
    fn synchronized(&self) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            if let Some(shift) = self.shifted_by {
                return Err(format!(
                    "this process's clock is shifted by {shift} s (LAPWING_CLOCK_OFFSET): the system's synchronization does not apply"
                ));
            }
            system_synchronized().await
        })
    }

    fn system_servers(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(system_servers())
    }

    fn query<'a>(
        &'a self,
        server: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let mut transmit = [0u8; 8];
            getrandom::fill(&mut transmit).map_err(|e| format!("no randomness: {e}"))?;
            let asked = async {
                // Exactly one query: to the first address the name gives.
                let address = tokio::net::lookup_host(server)
                    .await
                    .map_err(|e| format!("cannot resolve {server}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{server} has no address"))?;
                crate::sntp::query(address, timeout, transmit)
                    .await
                    .map_err(|e| e.to_string())
            };
            // The name lookup counts against the same bound as the answer.
            tokio::time::timeout(timeout, asked)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer from the time server {server} within {} ms",
                        timeout.as_millis()
                    ))
                })
        })
    }
}

#[cfg(target_os = "linux")]
async fn system_synchronized() -> Result<bool, String> {
    let bus = zbus::Connection::system()
        .await
        .map_err(|e| format!("cannot reach the system bus: {e}"))?;
    timedated_synchronized(&bus).await
}

#[cfg(not(target_os = "linux"))]
#[allow(
    clippy::unused_async,
    reason = "one signature with the Linux version, which asks timedated over D-Bus"
)]
async fn system_synchronized() -> Result<bool, String> {
    Err("the system's synchronization is not asked on this platform".to_owned())
}

/// systemd-timedated's `NTPSynchronized` (the kernel's own "clock synchronized" flag), read
/// over `bus`: a property read, no packet on the network.
#[cfg(target_os = "linux")]
pub async fn timedated_synchronized(bus: &zbus::Connection) -> Result<bool, String> {
    const TIMEDATE: &str = "org.freedesktop.timedate1";
    let reply = bus
        .call_method(
            Some(TIMEDATE),
            "/org/freedesktop/timedate1",
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(TIMEDATE, "NTPSynchronized"),
        )
        .await
        .map_err(|e| format!("systemd-timedated did not answer: {e}"))?;
    let value: zbus::zvariant::OwnedValue = reply
        .body()
        .deserialize()
        .map_err(|e| format!("systemd-timedated's answer is not a value: {e}"))?;
    bool::try_from(value).map_err(|e| format!("systemd-timedated's NTPSynchronized: {e}"))
}

#[cfg(target_os = "linux")]
async fn system_servers() -> Vec<String> {
    // A few small files, read off the runtime's threads.
    tokio::task::spawn_blocking(|| {
        let texts: Vec<String> = timesyncd_files()
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect();
        timesyncd_servers(&texts)
    })
    .await
    .unwrap_or_default()
}

#[cfg(not(target_os = "linux"))]
#[allow(
    clippy::unused_async,
    reason = "one signature with the Linux version, which asks timedated over D-Bus"
)]
async fn system_servers() -> Vec<String> {
    Vec::new()
}

/// systemd-timesyncd's configuration, in the order it reads it: the main file, then the
/// drop-ins by file name (one in `/etc` hides the same name in `/run`).
#[cfg(target_os = "linux")]
fn timesyncd_files() -> Vec<std::path::PathBuf> {
    let mut files = vec![std::path::PathBuf::from("/etc/systemd/timesyncd.conf")];
    let mut dropins = std::collections::BTreeMap::new();
    for dir in [
        "/run/systemd/timesyncd.conf.d",
        "/etc/systemd/timesyncd.conf.d",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".conf") {
                dropins.insert(name, entry.path());
            }
        }
    }
    files.extend(dropins.into_values());
    files
}

/// The servers systemd-timesyncd's files name, as `HOST:123`: `NTP=` in `[Time]`, else an
/// explicit `FallbackNTP=` (its compiled-in fallback is not known here). Each assignment adds
/// to the list; an empty one resets it, as systemd reads them.
pub fn timesyncd_servers<S: AsRef<str>>(files: &[S]) -> Vec<String> {
    let mut ntp = Vec::new();
    let mut fallback = Vec::new();
    for text in files {
        let mut in_time = false;
        for line in text.as_ref().lines().map(str::trim) {
            if line.starts_with('[') {
                in_time = line == "[Time]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let list = match key.trim() {
                "NTP" if in_time => &mut ntp,
                "FallbackNTP" if in_time => &mut fallback,
                _ => continue,
            };
            if value.trim().is_empty() {
                list.clear();
            }
            list.extend(value.split_whitespace().map(str::to_owned));
        }
    }
    let hosts = if ntp.is_empty() { fallback } else { ntp };
    hosts
        .into_iter()
        .map(|host| match host.parse::<Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]:123"),
            Err(_) => format!("{host}:123"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timesyncd_servers_are_read_as_systemd_reads_them() {
        let main =
            "[Time]\n#NTP=commented.example\nNTP=a.example 2001:db8::1\nFallbackNTP=f.example\n";
        assert_eq!(
            timesyncd_servers(&[main]),
            ["a.example:123", "[2001:db8::1]:123"]
        );
        // A drop-in adds; an empty assignment resets first.
        let adds = "[Time]\nNTP=b.example\n";
        let resets = "[Time]\nNTP=\nNTP=c.example\n";
        assert_eq!(
            timesyncd_servers(&[main, adds]),
            ["a.example:123", "[2001:db8::1]:123", "b.example:123"]
        );
        assert_eq!(timesyncd_servers(&[main, resets]), ["c.example:123"]);
        // Without NTP=, an explicit fallback; keys of other sections are not read.
        assert_eq!(
            timesyncd_servers(&["[Other]\nNTP=x.example\n[Time]\nFallbackNTP=f.example\n"]),
            ["f.example:123"]
        );
        // Debian's file as shipped: everything commented out.
        assert!(
            timesyncd_servers(&["[Time]\n#NTP=\n#FallbackNTP=0.debian.pool.ntp.org\n"]).is_empty()
        );
    }

    #[tokio::test]
    async fn a_shifted_clock_is_not_vouched_for_by_the_system() {
        let sources = SystemTimeSources {
            shifted_by: Some(120),
        };
        let said = sources.synchronized().await.expect_err("not asked");
        assert!(said.contains("LAPWING_CLOCK_OFFSET"), "{said}");
    }
}
