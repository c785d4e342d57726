//! The users' socket: created with its final mode and group before it becomes visible, removed on
//! drop.

use crate::stream::Stream;
use crate::GatewayError;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Who may connect to the gateway socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwnership {
    /// Group owning the socket (the socket's owner is the gateway's own uid, root).
    pub gid: u32,
    /// Permission bits; 0o660 lets the owner and the group connect.
    pub mode: u32,
}

/// A bound gateway socket. Dropping it removes the socket file if it is still the one bound here.
#[derive(Debug)]
pub struct GatewayListener {
    /// Non-blocking; registered with a runtime by [`GatewayListener::acceptor`], in the runtime
    /// that serves it.
    listener: UnixListener,
    path: PathBuf,
    inode: u64,
}

impl GatewayListener {
    /// Binds `path` with `ownership`.
    ///
    /// The socket is created root-only and then given its group and mode. A stale socket left by a
    /// dead gateway is replaced; a live one, or anything that is not a socket, is an error.
    ///
    /// # Errors
    /// [`GatewayError::InUse`], [`GatewayError::NotASocket`] or [`GatewayError::Listen`].
    pub fn bind(path: &Path, ownership: SocketOwnership) -> Result<Self, GatewayError> {
        let listen_err = |source| GatewayError::Listen {
            path: path.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(GatewayError::NotASocket {
                    path: path.to_owned(),
                })
            }
            Ok(_) => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(GatewayError::InUse {
                        path: path.to_owned(),
                    });
                }
                std::fs::remove_file(path).map_err(listen_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(listen_err(e)),
        }
        // Bound with a umask that leaves it root-only, then opened up to the group: there is no
        // moment at which it is reachable with looser permissions. (Binding under a temporary
        // name and renaming would do the same, but clients then see the temporary name as the
        // peer address in their error messages.) The umask is process-wide; this runs before the
        // gateway serves anything, and nothing else creates files meanwhile.
        let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(previous);
        let listener = bound.map_err(listen_err)?;
        let setup = || -> io::Result<u64> {
            listener.set_nonblocking(true)?;
            std::os::unix::fs::chown(path, None, Some(ownership.gid))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(ownership.mode))?;
            Ok(std::fs::symlink_metadata(path)?.ino())
        };
        match setup() {
            Ok(inode) => Ok(Self {
                listener,
                path: path.to_owned(),
                inode,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(listen_err(e))
            }
        }
    }

    /// The socket path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Registers the socket with the current runtime, for read readiness (a connection
    /// waiting) only.
    pub(crate) fn acceptor(&self) -> io::Result<Acceptor> {
        let duplicate = self.listener.as_fd().try_clone_to_owned()?;
        Ok(Acceptor(crate::sys::register(
            duplicate,
            Interest::READABLE,
        )?))
    }
}

/// The listening socket as registered with the runtime that serves it.
pub(crate) struct Acceptor(AsyncFd<OwnedFd>);

impl Acceptor {
    /// The next connection, non-blocking and registered with the runtime (see [`Stream`]).
    pub(crate) async fn accept(&self) -> io::Result<Stream> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|listener| crate::sys::accept(listener.get_ref().as_fd())) {
                Ok(accepted) => return Stream::from_nonblocking(accepted?),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Drop for GatewayListener {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .map(|m| m.ino() == self.inode)
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_gid() -> u32 {
        nix::unistd::getegid().as_raw()
    }

    #[tokio::test]
    async fn socket_gets_mode_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.sock");
        let ownership = SocketOwnership {
            gid: own_gid(),
            mode: 0o660,
        };
        let listener = GatewayListener::bind(&path, ownership).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o660);
        assert_eq!(meta.gid(), own_gid());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(listener);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn live_socket_is_not_stolen_and_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.sock");
        let ownership = SocketOwnership {
            gid: own_gid(),
            mode: 0o660,
        };
        let first = GatewayListener::bind(&path, ownership).unwrap();
        assert!(matches!(
            GatewayListener::bind(&path, ownership),
            Err(GatewayError::InUse { .. })
        ));
        drop(first);
        // A stale socket file: bound, then the listener closed without removing it.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let second = GatewayListener::bind(&stale, ownership).unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&stale).is_ok());
        drop(second);
    }

    #[tokio::test]
    async fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"keep me").unwrap();
        let ownership = SocketOwnership {
            gid: own_gid(),
            mode: 0o660,
        };
        assert!(matches!(
            GatewayListener::bind(&path, ownership),
            Err(GatewayError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
