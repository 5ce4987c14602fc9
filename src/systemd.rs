//! systemd service notifications (`sd_notify`) over `$NOTIFY_SOCKET`, without libsystemd.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to a Unix socket whose path
//! (or abstract name, when it starts with `@`) systemd passes in `$NOTIFY_SOCKET`.
//! Outside systemd every call is a no-op, so the daemon calls these unconditionally.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Where notifications go: a socket file or a Linux abstract socket name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(OsString),
    Abstract(Vec<u8>),
}

/// Sends service notifications to systemd; does nothing when not started by systemd.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub(crate) fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::new(
            socket.as_deref(),
            usec.as_deref(),
            pid.as_deref(),
            std::process::id(),
        )
    }

    /// Builds a notifier from the values systemd would put in the environment.
    ///
    /// A socket that is neither an absolute path nor `@name` is ignored (newer systemd
    /// also offers `vsock:` addresses, which a Pi service never gets).
    pub fn new(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> Notifier {
        let target = notify_socket.and_then(parse_target);
        // Without a socket there is nobody to ping, whatever WATCHDOG_USEC says.
        let watchdog = target
            .as_ref()
            .and_then(|_| watchdog_interval(watchdog_usec, watchdog_pid, own_pid));
        Notifier { target, watchdog }
    }

    /// A notifier that never sends anything.
    #[cfg(test)]
    pub(crate) fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    #[cfg(test)]
    /// Whether notifications go anywhere (the process was started by systemd with a socket).
    pub(crate) fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to call [`Notifier::watchdog`]: half of `WatchdogSec=`, or `None` when
    /// no watchdog applies to this process.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up finished (`READY=1`); `Type=notify` units count as started from here.
    pub(crate) fn ready(&self) {
        self.send_logged("READY=1");
    }

    /// Shutdown began (`STOPPING=1`).
    pub(crate) fn stopping(&self) {
        self.send_logged("STOPPING=1");
    }

    /// The main loop is alive (`WATCHDOG=1`).
    pub(crate) fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send_logged("WATCHDOG=1");
        }
    }

    /// One line shown by `systemctl status` (`STATUS=...`).
    pub(crate) fn status(&self, text: &str) {
        if self.target.is_some() {
            self.send_logged(&status_message(text));
        }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines) as one datagram.
    ///
    /// `Ok(())` without sending when not under systemd.
    pub(crate) fn notify(&self, state: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        // Never stall the frame loop on a full systemd queue: a lost ping is better.
        socket.set_nonblocking(true)?;
        let sent = match target {
            Target::Path(path) => socket.send_to(state.as_bytes(), Path::new(path))?,
            Target::Abstract(name) => {
                socket.send_to_addr(state.as_bytes(), &abstract_address(name)?)?
            }
        };
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification datagram truncated",
            ));
        }
        Ok(())
    }

    fn send_logged(&self, state: &str) {
        if let Err(error) = self.notify(state) {
            tracing::warn!(%error, message = state, "systemd notification failed");
        }
    }
}

/// Interval at which to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when the watchdog
/// is meant for this process (`WATCHDOG_PID` absent or equal to `own_pid`).
///
/// Malformed or zero values mean no watchdog, as in `sd_watchdog_enabled`.
pub(crate) fn watchdog_interval(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = watchdog_pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    // At least 1 µs: a zero period would make a timer spin (tokio's interval panics).
    Some(Duration::from_micros((usec / 2).max(1)))
}

/// `STATUS=` line with newlines flattened, so the text cannot add assignments of its own.
fn status_message(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STATUS={flat}")
}

fn parse_target(socket: &OsStr) -> Option<Target> {
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'/') => Some(Target::Path(socket.to_os_string())),
        Some(b'@') if bytes.len() > 1 => Some(Target::Abstract(bytes[1..].to_vec())),
        _ => None,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: u32 = 4242;

    /// A socket standing in for systemd's, with a receive timeout so a missing
    /// datagram fails the test instead of hanging it.
    fn listener(dir: &Path) -> (UnixDatagram, OsString) {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path.into_os_string())
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn nothing_pending(socket: &UnixDatagram) -> bool {
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        matches!(socket.recv(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec() {
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("4242"), PID),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), None, PID),
            Some(Duration::from_secs(15))
        );
    }

    #[test]
    fn watchdog_for_another_process_does_not_apply() {
        assert_eq!(watchdog_interval(Some("30000000"), Some("1"), PID), None);
        assert_eq!(watchdog_interval(Some("30000000"), Some("pid"), PID), None);
    }

    #[test]
    fn missing_zero_or_malformed_watchdog_usec_means_no_watchdog() {
        assert_eq!(watchdog_interval(None, Some("4242"), PID), None);
        assert_eq!(watchdog_interval(Some("0"), None, PID), None);
        assert_eq!(watchdog_interval(Some("-5"), None, PID), None);
        assert_eq!(watchdog_interval(Some("30s"), None, PID), None);
        assert_eq!(watchdog_interval(Some(""), None, PID), None);
    }

    #[test]
    fn tiny_watchdog_never_gives_a_zero_interval() {
        assert_eq!(
            watchdog_interval(Some("1"), None, PID),
            Some(Duration::from_micros(1))
        );
    }

    #[test]
    fn notifications_arrive_on_a_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, path) = listener(dir.path());
        let notifier = Notifier::new(Some(&path), Some("30000000"), Some("4242"), PID);
        assert!(notifier.is_enabled());
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(15)));

        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
        notifier.watchdog();
        assert_eq!(receive(&socket), "WATCHDOG=1");
        notifier.status("connected to broker 192.168.1.2:1883");
        assert_eq!(
            receive(&socket),
            "STATUS=connected to broker 192.168.1.2:1883"
        );
        notifier.stopping();
        assert_eq!(receive(&socket), "STOPPING=1");
    }

    #[test]
    fn status_text_cannot_inject_other_assignments() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, path) = listener(dir.path());
        let notifier = Notifier::new(Some(&path), None, None, PID);
        notifier.status("broker down\nREADY=1");
        assert_eq!(receive(&socket), "STATUS=broker down READY=1");
    }

    #[test]
    fn watchdog_is_not_sent_when_it_does_not_apply() {
        let dir = tempfile::tempdir().unwrap();
        let (socket, path) = listener(dir.path());
        let notifier = Notifier::new(Some(&path), Some("30000000"), Some("1"), PID);
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.watchdog();
        // A later datagram arrives first only if the watchdog ping was never sent.
        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
        assert!(nothing_pending(&socket));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notifications_arrive_on_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("massaged-test-{}-{}", std::process::id(), line!());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let env_value = OsString::from(format!("@{name}"));
        let notifier = Notifier::new(Some(&env_value), None, None, PID);
        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn without_a_socket_everything_is_a_no_op() {
        let notifier = Notifier::new(None, Some("30000000"), None, PID);
        assert!(!notifier.is_enabled());
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.ready();
        notifier.watchdog();
        notifier.status("x");
        notifier.stopping();
        assert!(notifier.notify("READY=1").is_ok());
        assert!(!Notifier::disabled().is_enabled());
    }

    #[test]
    fn unusable_socket_values_disable_notifications() {
        for value in ["", "@", "relative/path", "vsock:2:1234"] {
            let notifier = Notifier::new(Some(OsStr::new(value)), Some("30000000"), None, PID);
            assert!(!notifier.is_enabled(), "{value:?} should be ignored");
        }
    }

    #[test]
    fn a_vanished_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone");
        let notifier = Notifier::new(Some(path.as_os_str()), None, None, PID);
        assert!(notifier.is_enabled());
        assert!(notifier.notify("READY=1").is_err());
        // The convenience methods log the error and carry on.
        notifier.ready();
    }
}
