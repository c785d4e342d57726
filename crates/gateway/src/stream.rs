//! The gateway's unix sockets, registered with the runtime for read readiness only.
//!
//! A socket registered for write readiness too (as tokio's own are) gets an epoll event each time
//! its peer reads what was written to it: the engine taking in a request, a client taking in its
//! answer. Nobody waits for those events, yet each one wakes a parked worker thread, and on a
//! virtual machine a wake-up on another CPU is an interrupt to the hypervisor: two per request,
//! more than the gateway's own work. So writes are tried at once, and only a socket on which a
//! write has once had to wait is registered (as a duplicate descriptor) for write readiness, for
//! the rest of its life: a stream whose peer reads slowly, where the events are few and needed.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream as StdStream;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A connected unix stream socket (see the module docs).
pub(crate) struct Stream {
    socket: AsyncFd<StdStream>,
    /// The same socket under a second descriptor, registered for write readiness once a write
    /// would have blocked.
    writable: Option<AsyncFd<OwnedFd>>,
}

/// The peer's credentials, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerCred {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) pid: i32,
}

impl Stream {
    /// Takes over a socket that is already in non-blocking mode.
    pub(crate) fn from_nonblocking(socket: StdStream) -> io::Result<Self> {
        Ok(Self {
            socket: crate::sys::register(socket, Interest::READABLE)?,
            writable: None,
        })
    }

    /// Takes over a socket from tokio (which registered it for both readinesses).
    pub(crate) fn from_tokio(socket: tokio::net::UnixStream) -> io::Result<Self> {
        let socket = socket.into_std()?;
        socket.set_nonblocking(true)?;
        Self::from_nonblocking(socket)
    }

    /// Connects to the unix socket at `path`.
    pub(crate) async fn connect(path: &std::path::Path) -> io::Result<Self> {
        Self::from_tokio(tokio::net::UnixStream::connect(path).await?)
    }

    /// Who is on the other end.
    pub(crate) fn peer_cred(&self) -> io::Result<PeerCred> {
        let (uid, gid, pid) = crate::sys::peer_cred(self.socket.get_ref().as_fd())?;
        Ok(PeerCred { uid, gid, pid })
    }

    /// Runs `write` (one non-blocking system call); when it would block, waits for write
    /// readiness and tries again.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        write: impl Fn(BorrowedFd<'_>) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let writable = match &self.writable {
            Some(writable) => writable,
            None => match write(self.socket.get_ref().as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let duplicate = self.socket.get_ref().as_fd().try_clone_to_owned()?;
                    // Registered now, it reports at once if the socket has become writable
                    // meanwhile (epoll checks the current state when a descriptor is added).
                    self.writable
                        .insert(crate::sys::register(duplicate, Interest::WRITABLE)?)
                }
                other => return Poll::Ready(other),
            },
        };
        loop {
            let mut guard = ready!(writable.poll_write_ready(cx))?;
            match write(self.socket.get_ref().as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Ok(n) => {
                    // A short write means the buffer is full: the next one would block.
                    if n < len {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.socket.poll_read_ready(cx))?;
            let wanted = buf.remaining();
            match crate::sys::recv_into(this.socket.get_ref().as_fd(), buf) {
                Ok(n) => {
                    // Less than asked for: the socket is drained, and with edge-triggered
                    // events the next byte to arrive reports again. (Saves a read that would
                    // only say "would block", as tokio's sockets do.)
                    if n > 0 && n < wanted {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, buf.len(), |fd| crate::sys::send(fd, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.get_mut()
            .poll_write_with(cx, len, |fd| crate::sys::send_vectored(fd, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(crate::sys::shut_write(self.socket.get_ref().as_fd()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (Stream, StdStream) {
        let (ours, theirs) = StdStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::from_nonblocking(ours).unwrap(), theirs)
    }

    #[tokio::test]
    async fn reads_and_writes_and_half_closes() {
        let (mut ours, mut theirs) = pair();
        ours.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        std::io::Read::read_exact(&mut theirs, &mut got).unwrap();
        assert_eq!(&got, b"ping");
        std::io::Write::write_all(&mut theirs, b"pong").unwrap();
        let mut back = [0u8; 4];
        ours.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"pong");
        // Half-close: the peer sees the end, and can still answer.
        ours.shutdown().await.unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut theirs, &mut rest).unwrap();
        assert!(rest.is_empty());
        std::io::Write::write_all(&mut theirs, b"bye").unwrap();
        drop(theirs);
        let mut tail = Vec::new();
        ours.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, b"bye");
        assert!(ours.writable.is_none(), "no write ever had to wait");
    }

    #[tokio::test]
    async fn a_write_that_would_block_waits_for_the_reader_and_loses_nothing() {
        let (mut ours, theirs) = pair();
        // Far more than a socket buffer holds: the writer must wait for the reader many times.
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let reader = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut theirs, &mut got).unwrap();
            got
        });
        ours.write_all(&data).await.unwrap();
        assert!(ours.writable.is_some(), "a write had to wait");
        ours.shutdown().await.unwrap();
        drop(ours);
        assert_eq!(reader.join().unwrap(), expected);
    }

    #[tokio::test]
    async fn peer_credentials_are_our_own_for_a_pair() {
        let (ours, _theirs) = pair();
        let cred = ours.peer_cred().unwrap();
        assert_eq!(cred.uid, rustix::process::getuid().as_raw());
        assert_eq!(cred.pid, i32::try_from(std::process::id()).unwrap());
    }
}
