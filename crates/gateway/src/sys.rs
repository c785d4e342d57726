//! The gateway's system calls on its sockets, through rustix, and its one use of `unsafe`:
//! reading from a socket straight into a buffer that is not yet initialised, as tokio's own
//! sockets do. Zeroing the buffer first instead would cost up to the whole buffer per read
//! (hyper hands over all of its spare capacity, up to a MiB).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;
use tokio::io::ReadBuf;

/// One `recv(2)` into the unfilled part of `buf`; returns how many bytes came (0: end of stream).
pub(crate) fn recv_into(fd: BorrowedFd<'_>, buf: &mut ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: the slice is only written to (by the kernel, through rustix), never read, and
    // nothing is de-initialised: `unfilled_mut` asks exactly that of its caller.
    let unfilled = unsafe { buf.unfilled_mut() };
    let ((received, _), _) = rustix::net::recv(fd, unfilled, rustix::net::RecvFlags::empty())?;
    let n = received.len();
    // SAFETY: `recv` initialised the first `n` bytes of the unfilled part (rustix returns them
    // as the initialised slice).
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}

/// One `send(2)`; a peer that has gone raises `EPIPE`, not `SIGPIPE`.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(
        fd,
        buf,
        rustix::net::SendFlags::NOSIGNAL,
    )?)
}

/// One `sendmsg(2)` of several buffers, without `SIGPIPE` either.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    Ok(rustix::net::sendmsg(
        fd,
        bufs,
        &mut rustix::net::SendAncillaryBuffer::default(),
        rustix::net::SendFlags::NOSIGNAL,
    )?)
}

/// Shuts the sending half.
pub(crate) fn shut_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Write)?)
}

/// The peer's uid, gid and pid (`SO_PEERCRED`).
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, i32)> {
    let cred = rustix::net::sockopt::socket_peercred(fd)?;
    Ok((
        cred.uid.as_raw(),
        cred.gid.as_raw(),
        cred.pid.as_raw_nonzero().get(),
    ))
}

/// The next connection on a listening socket, non-blocking and close-on-exec
/// (`accept4(2)`).
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<std::os::unix::net::UnixStream> {
    let accepted = rustix::net::accept_with(
        fd,
        rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
    )?;
    Ok(std::os::unix::net::UnixStream::from(accepted))
}

/// A socket that owns its descriptor for as long as it lives: the same open descriptor, never
/// closed or replaced behind the owner's back.
pub(crate) trait OwnsItsFd: std::os::fd::AsRawFd {}
impl OwnsItsFd for std::os::unix::net::UnixStream {}
impl OwnsItsFd for std::os::unix::net::UnixListener {}
impl OwnsItsFd for std::os::fd::OwnedFd {}

/// Registers `inner` with the runtime's reactor for `interest` only.
pub(crate) fn register<T: OwnsItsFd>(
    inner: T,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: `register_with_interest` asks that the descriptor stay open and the same for the
    // life of the `AsyncFd`; `OwnsItsFd` types own theirs and close it only when dropped, which
    // the `AsyncFd` does after deregistering it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(inner, interest) }
        .map_err(io::Error::from)
}
