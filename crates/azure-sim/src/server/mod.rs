//! How the simulated services are served: the listeners they bind
//! (consecutive ports or random ones), their origins, the TLS and
//! plain-HTTP accept loops, and [`instrument`], which every request goes
//! through (recording, latency, injected faults).

pub(crate) mod instrument;
pub(crate) mod plain;
#[cfg(test)]
mod tests;
pub(crate) mod tls;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::errors::SimError;

/// Binds the five HTTPS services, then the managed identity endpoint and
/// the admin API: all on random ports for port 0, otherwise on consecutive
/// ports starting at the requested one. The two plain-HTTP listeners are
/// always on loopback: they hand out tokens and control the simulator.
pub(crate) async fn bind_all(
    listen: SocketAddr,
) -> Result<Vec<(TcpListener, SocketAddr)>, SimError> {
    const COUNT: u16 = 7;
    let base = listen.port();
    if base != 0 && base > u16::MAX - (COUNT - 1) {
        return Err(SimError::InvalidOption(format!(
            "listen port {base} leaves no room for the six service ports after it"
        )));
    }
    let loopback = if listen.ip().is_loopback() {
        listen.ip()
    } else if listen.is_ipv6() {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let mut out = Vec::with_capacity(usize::from(COUNT));
    for i in 0..COUNT {
        let ip = if i < 5 { listen.ip() } else { loopback };
        let addr = SocketAddr::new(ip, if base == 0 { 0 } else { base + i });
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        out.push((l, addr));
    }
    Ok(out)
}

/// `http://host:port` for a plain-HTTP loopback listener.
pub(crate) fn plain_origin(addr: SocketAddr) -> String {
    origin(addr).replacen("https://", "http://", 1)
}

/// `https://host:port` for a bound address; wildcard binds are reached via
/// loopback, which the server certificate covers.
pub(crate) fn origin(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("https://127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            format!("https://[{}]:{}", Ipv6Addr::LOCALHOST, addr.port())
        }
        IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
    }
}
