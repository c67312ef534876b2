//! The service manager's notification protocol (`sd_notify(3)`), spoken
//! directly: one datagram per message to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Under
//! systemd with `Type=notify` the daemon says `READY=1` once the first
//! discovery has finished, `RELOADING=1` (with `MONOTONIC_USEC=`, as systemd
//! 253 and later expect) and `READY=1` around a configuration reload,
//! `STOPPING=1` on shutdown and a `STATUS=` line with a short summary; with
//! `WatchdogSec=` (`$WATCHDOG_USEC`, for this process if `$WATCHDOG_PID`
//! says so) it sends `WATCHDOG=1` while the engine makes progress. Without
//! `$NOTIFY_SOCKET` every call does nothing.
//!
//! Written out rather than taken from a crate: the protocol is a few lines of
//! text over a datagram socket, std addresses abstract sockets, and the
//! monotonic clock is one `libc` call the daemon already links.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, and the watchdog interval systemd asked for.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self::new(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
        )
    }

    fn new(socket: Option<&str>, watchdog_usec: Option<&str>, watchdog_pid: Option<&str>) -> Self {
        let target = socket.and_then(|s| match open(s) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(socket = s, error = %e, "NOTIFY_SOCKET is set but unusable; no service manager notifications");
                None
            }
        });
        let ours = watchdog_pid.is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(Duration::from_micros);
        Self { target, watchdog }
    }

    /// True when a service manager listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog interval (`WatchdogSec=`), when one applies to this process.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled())
    }

    /// Startup finished (or a reload did): `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A reload begins.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading configuration",
            monotonic_usec()
        ));
    }

    /// Shutdown begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// A new status line.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The engine is alive: feeds the watchdog.
    pub fn watchdog_alive(&self) {
        if self.watchdog().is_some() {
            self.send("WATCHDOG=1");
        }
    }

    fn send(&self, message: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
            tracing::debug!(error = %e, "cannot notify the service manager");
        }
    }
}

/// An unbound, non-blocking datagram socket and the address `spec` names.
fn open(spec: &str) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(name) = spec.strip_prefix('@') {
        SocketAddr::from_abstract_name(name.as_bytes())?
    } else if spec.starts_with('/') {
        SocketAddr::from_pathname(spec)?
    } else {
        // vsock: addresses and others systemd may hand a VM are not unix sockets.
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "only unix socket paths and @abstract names are supported",
        ));
    };
    let socket = UnixDatagram::unbound()?;
    // A full receive queue must never block a runtime thread.
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

/// A status text on one line: the protocol is one assignment per line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd's `MONOTONIC_USEC=` is on.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the struct it is given, which we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str(), Some("2000000"), None);
        assert!(n.enabled());
        assert_eq!(n.watchdog(), Some(Duration::from_secs(2)));
        n.ready("3 tenants\nup");
        n.reloading();
        n.watchdog_alive();
        n.stopping();
        assert_eq!(recv(&listener), "READY=1\nSTATUS=3 tenants up");
        let reloading = recv(&listener);
        let usec: u64 = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            reloading.starts_with("RELOADING=1\n") && usec > 0,
            "{reloading}"
        );
        assert_eq!(recv(&listener), "WATCHDOG=1");
        assert_eq!(recv(&listener), "STOPPING=1\nSTATUS=shutting down");
    }

    #[test]
    fn abstract_sockets_work_and_another_pids_watchdog_is_not_ours() {
        let name = format!("tenantwatch-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), Some("1000000"), Some("1"));
        assert_eq!(n.watchdog(), None, "WATCHDOG_PID names another process");
        n.status("hello");
        assert_eq!(recv(&listener), "STATUS=hello");
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let n = Notifier::new(None, Some("1000000"), None);
        assert!(!n.enabled());
        assert_eq!(n.watchdog(), None);
        n.ready("x");
        let n = Notifier::new(Some("vsock:2:1234"), None, None);
        assert!(!n.enabled());
    }
}
