//! Child processes the xtask commands start and own: servers whose first line of output says
//! where they are, and the virtual desktop (Xvfb and a session bus) the tray app runs on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::steps::{Result, fail};

/// A child process stopped when dropped, so no path out of a command leaves one behind.
#[derive(Debug)]
pub struct Owned(Child);

impl Owned {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }

    /// Asks the process to end (SIGTERM: lapd prints its counters) and waits a moment
    /// before killing it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl From<Child> for Owned {
    fn from(child: Child) -> Self {
        Self(child)
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` and returns the first line it prints on stdout (lapd's address, Xvfb's
/// display number, dbus-daemon's address).
pub fn spawn_first_line(command: &mut Command, what: &str) -> Result<(Owned, String)> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start {what}: {e}")))?;
    let stdout = child.stdout.take().ok_or_else(|| fail("stdout"))?;
    let child = Owned(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| fail(format!("{what}: {e}")))?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(fail(format!("{what} printed nothing and stopped")));
    }
    Ok((child, line))
}

/// Runs `command` to completion and returns its trimmed stdout; a failure carries stderr.
pub fn output(command: &mut Command, what: &str) -> Result<String> {
    let out = command
        .output()
        .map_err(|e| fail(format!("cannot start {what}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A virtual display and a private session bus, for the tray app without a desktop.
#[derive(Debug)]
pub struct VirtualDesktop {
    /// `:N`, what `DISPLAY` is set to.
    pub display: String,
    /// What `DBUS_SESSION_BUS_ADDRESS` is set to.
    pub bus: String,
    // Dropped after the fields above are read; the bus goes before the display.
    _bus: Owned,
    _xvfb: Owned,
}

impl VirtualDesktop {
    /// Starts Xvfb on a display number it chooses itself (`-displayfd`) and a session bus.
    pub fn start() -> Result<Self> {
        let (xvfb, number) = spawn_first_line(
            Command::new("Xvfb")
                .args([
                    "-displayfd",
                    "1",
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                ])
                .stderr(Stdio::null()),
            "Xvfb (apt-get install xvfb)",
        )?;
        let (bus_process, bus) = spawn_first_line(
            // Its complaints (fd limits, services it activates) are not ours.
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--print-address=1"])
                .stderr(Stdio::null()),
            "dbus-daemon (apt-get install dbus)",
        )?;
        Ok(Self {
            display: format!(":{number}"),
            bus,
            _bus: bus_process,
            _xvfb: xvfb,
        })
    }
}
