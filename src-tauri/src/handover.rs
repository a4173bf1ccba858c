//! Single instance without a session bus. `tauri-plugin-single-instance` finds the running app
//! through a name on the session bus (on Linux); with no bus it silently lets a second app
//! start. Then this module does the same through a Unix socket in the user's runtime
//! directory: the first app listens, a second one hands over its arguments and exits.
//!
//! The socket is the user's alone: its directory is created 0700 and refused when it is not
//! owned by this user or open to others, the socket is 0600, and a peer of another user is
//! refused on both ends (SO_PEERCRED). Nothing here runs when the bus is there.

use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A second app's arguments, at most (a handful of words in practice).
const MAX_MESSAGE: u64 = 64 * 1024;
/// How long a peer may take to send its arguments.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The directory for the socket: `$XDG_RUNTIME_DIR/lapwing`, else one in the temporary
/// directory named after the user (the checks in [`claim`] make either safe).
pub fn socket_dir(runtime_dir: Option<&Path>, uid: u32) -> PathBuf {
    match runtime_dir {
        Some(dir) if dir.is_absolute() => dir.join("lapwing"),
        _ => std::env::temp_dir().join(format!("lapwing-{uid}")),
    }
}

/// This process's effective user.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether a peer may talk to us: only the same user.
pub fn peer_allowed(peer_uid: u32, our_uid: u32) -> bool {
    peer_uid == our_uid
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claim {
    /// No app was running: this one is the first and listens here.
    First(UnixListener),
    /// An app was running and has the arguments: this one should exit.
    HandedOver,
}

/// Makes `dir` (0700) or checks the one that is there: ours, a directory, closed to others.
fn private_dir(dir: &Path, uid: u32) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory of this user; not using it",
                dir.display()
            ),
        ));
    }
    Ok(())
}

fn check_peer(stream: &UnixStream, uid: u32) -> io::Result<()> {
    let peer = rustix::net::sockopt::socket_peercred(stream)?;
    if peer_allowed(peer.uid.as_raw(), uid) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the other end belongs to another user",
        ))
    }
}

/// Hands `args` to the app listening in `dir`, or becomes the one that listens.
pub fn claim(dir: &Path, uid: u32, args: &[String]) -> io::Result<Claim> {
    private_dir(dir, uid)?;
    let path = dir.join("handover.sock");
    // Twice: two apps starting at once may both find no socket; the one that loses the bind
    // hands over to the winner.
    for _ in 0..2 {
        match UnixStream::connect(&path) {
            Ok(mut stream) => {
                check_peer(&stream, uid)?;
                let message = serde_json::to_vec(args).map_err(io::Error::other)?;
                stream.write_all(&message)?;
                return Ok(Claim::HandedOver);
            }
            // Left by an app that ended without removing it: nobody listens.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match UnixListener::bind(&path) {
            Ok(listener) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                return Ok(Claim::First(listener));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "another Lapwing is starting at the same time",
    ))
}

/// Reads one second app's arguments.
fn receive(mut stream: UnixStream, uid: u32) -> io::Result<Vec<String>> {
    check_peer(&stream, uid)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut message = Vec::new();
    (&mut stream)
        .take(MAX_MESSAGE + 1)
        .read_to_end(&mut message)?;
    if u64::try_from(message.len()).unwrap_or(u64::MAX) > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the arguments handed over are too long",
        ));
    }
    serde_json::from_slice(&message).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Serves the listener on a thread of its own for the app's life: each second app's
/// arguments go to `on_args`. A peer that is refused or garbled is logged and dropped.
pub fn serve(
    listener: UnixListener,
    uid: u32,
    on_args: impl Fn(Vec<String>) + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lapwing-handover".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream.and_then(|s| receive(s, uid)) {
                    Ok(args) => on_args(args),
                    Err(e) => tracing::warn!(error = %e, "a second launch's handover was refused"),
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_second_launch_hands_its_arguments_to_the_first() {
        let runtime = tempfile::tempdir().expect("tempdir");
        let dir = socket_dir(Some(runtime.path()), current_uid());
        let uid = current_uid();
        let Claim::First(listener) = claim(&dir, uid, &args(&["--open", "x"])).expect("claim")
        else {
            panic!("the first launch listens");
        };
        let mode = std::fs::metadata(dir.join("handover.sock"))
            .expect("socket")
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the socket is the user's alone");
        assert_eq!(std::fs::metadata(&dir).expect("dir").mode() & 0o777, 0o700);

        let (tx, rx) = std::sync::mpsc::channel();
        serve(listener, uid, move |a| {
            let _ = tx.send(a);
        })
        .expect("thread");
        let second = claim(&dir, uid, &args(&["--open", "about"])).expect("claim");
        assert!(matches!(second, Claim::HandedOver), "{second:?}");
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the first heard the second");
        assert_eq!(got, args(&["--open", "about"]));
    }

    #[test]
    fn a_socket_left_behind_is_taken_over() {
        let runtime = tempfile::tempdir().expect("tempdir");
        let dir = socket_dir(Some(runtime.path()), current_uid());
        let uid = current_uid();
        let first = claim(&dir, uid, &[]).expect("claim");
        drop(first);
        assert!(dir.join("handover.sock").exists(), "the file stays behind");
        assert!(matches!(claim(&dir, uid, &[]), Ok(Claim::First(_))));
    }

    #[test]
    fn a_directory_open_to_others_or_of_another_user_is_refused() {
        let runtime = tempfile::tempdir().expect("tempdir");
        let dir = runtime.path().join("lapwing");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = claim(&dir, current_uid(), &[]).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(!dir.join("handover.sock").exists(), "nothing was bound");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let e = claim(&dir, current_uid().wrapping_add(1), &[]).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn only_the_same_user_may_hand_over() {
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(0, 1000), "not even root");
    }

    #[test]
    fn the_directory_is_the_runtime_dirs_or_a_private_temporary_one() {
        assert_eq!(
            socket_dir(Some(Path::new("/run/user/1000")), 1000),
            Path::new("/run/user/1000/lapwing")
        );
        assert_eq!(
            socket_dir(None, 1000),
            std::env::temp_dir().join("lapwing-1000")
        );
        assert_eq!(
            socket_dir(Some(Path::new("relative")), 7),
            std::env::temp_dir().join("lapwing-7")
        );
    }

    #[test]
    fn garbage_from_a_peer_is_refused() {
        let runtime = tempfile::tempdir().expect("tempdir");
        let dir = socket_dir(Some(runtime.path()), current_uid());
        let uid = current_uid();
        let Ok(Claim::First(listener)) = claim(&dir, uid, &[]) else {
            panic!("first");
        };
        let mut peer = UnixStream::connect(dir.join("handover.sock")).expect("connect");
        peer.write_all(b"not json").expect("write");
        drop(peer);
        let (stream, _) = listener.accept().expect("accept");
        let e = receive(stream, uid).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
