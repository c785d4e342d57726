//! systemd's readiness protocol (`sd_notify`): with `Type=notify`, the service manager waits
//! for `READY=1` on the datagram socket named by `$NOTIFY_SOCKET` before starting what comes
//! after the unit. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent.

use std::os::unix::net::UnixDatagram;

/// Tells the service manager the service is ready, with a status line.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={status}"));
}

/// Tells the service manager the service is stopping.
pub fn stopping() {
    send("STOPPING=1");
}

fn send(message: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&target, message) {
        tracing::warn!(error = %e, socket = ?target, "cannot notify the service manager");
    }
}

fn send_to(target: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = target.as_encoded_bytes().strip_prefix(b"@") {
        // An abstract socket: `@name` stands for a leading NUL byte.
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        socket.send_to(message.as_bytes(), target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_path_socket_gets_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1\nSTATUS=x").unwrap();
        assert_eq!(received(&socket), "READY=1\nSTATUS=x");
    }

    #[test]
    fn an_abstract_socket_gets_the_message() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("stockade-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        assert_eq!(received(&socket), "STOPPING=1");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send_to(dir.path().join("absent").as_os_str(), "READY=1").is_err());
    }
}
