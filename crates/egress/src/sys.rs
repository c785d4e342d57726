//! The system calls of the transparent proxy, through rustix (no `unsafe` here): the original
//! destination of a redirected connection (`SO_ORIGINAL_DST`, `IP6T_SO_ORIGINAL_DST`) and
//! IPv6-only listening sockets.

use std::net::{IpAddr, SocketAddr};

use rustix::net::sockopt;
use tokio::net::{TcpSocket, TcpStream};

/// Why the original destination is not available.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The kernel has no NAT record for the connection.
    #[error("cannot read the original destination of the connection from {peer}: {source}; is the nftables redirect in place?")]
    OriginalDst {
        /// The client.
        peer: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The connection was not redirected: it was made to the proxy's own address.
    #[error("the connection from {peer} was made to the proxy itself ({local}), not redirected to it; refused")]
    NotRedirected {
        /// The client.
        peer: SocketAddr,
        /// The proxy's address.
        local: SocketAddr,
    },
    /// A socket option could not be set or read.
    #[error("socket option {what}: {source}")]
    Socket {
        /// Which option.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// The destination the client asked for before nftables redirected the connection to us.
///
/// # Errors
/// [`SysError::NotRedirected`] when the connection was made to the proxy directly: for such a
/// socket the kernel answers with the socket's own address, and connecting there would loop
/// back into the proxy (or, from outside the bridges, make it an open relay).
pub fn original_dst(stream: &TcpStream) -> Result<SocketAddr, SysError> {
    let peer = stream.peer_addr().map_err(|source| SysError::Socket {
        what: "peer address",
        source,
    })?;
    let local = stream.local_addr().map_err(|source| SysError::Socket {
        what: "local address",
        source,
    })?;
    let err = |source: rustix::io::Errno| SysError::OriginalDst {
        peer,
        source: source.into(),
    };
    let original = match local {
        SocketAddr::V4(_) => SocketAddr::V4(sockopt::ip_original_dst(stream).map_err(err)?),
        SocketAddr::V6(l) if l.ip().to_ipv4_mapped().is_some() => {
            SocketAddr::V4(sockopt::ip_original_dst(stream).map_err(err)?)
        }
        SocketAddr::V6(_) => SocketAddr::V6(sockopt::ipv6_original_dst(stream).map_err(err)?),
    };
    let same_ip = |a: IpAddr, b: IpAddr| a.to_canonical() == b.to_canonical();
    // Loop guard: a non-redirected socket reports its own address (rustix/Linux behaviour).
    if same_ip(original.ip(), local.ip()) && original.port() == local.port() {
        return Err(SysError::NotRedirected { peer, local });
    }
    Ok(original)
}

/// A listening socket for `addr`; IPv6 sockets are IPv6-only so that an IPv4 listener can
/// share the port (and IPv4 clients are not seen as mapped addresses).
///
/// # Errors
/// When the socket cannot be created, configured or bound.
pub fn listen_socket(addr: SocketAddr) -> Result<TcpSocket, SysError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|source| SysError::Socket {
        what: "socket",
        source,
    })?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&socket, true).map_err(|e| SysError::Socket {
            what: "IPV6_V6ONLY",
            source: e.into(),
        })?;
    }
    socket
        .set_reuseaddr(true)
        .map_err(|source| SysError::Socket {
            what: "SO_REUSEADDR",
            source,
        })?;
    socket.bind(addr).map_err(|source| SysError::Socket {
        what: "bind",
        source,
    })?;
    Ok(socket)
}
