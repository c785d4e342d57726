//! The gateway's one use of `unsafe`: reading from a socket straight into a buffer that is not
//! yet initialised, as tokio's own sockets do. Zeroing the buffer first instead would cost up to
//! the whole buffer per read (hyper hands over all of its spare capacity, up to a MiB).
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
