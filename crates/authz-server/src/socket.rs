//! A connected socket registered with the runtime for reads only.
//!
//! tokio registers a stream for reads and writes, edge-triggered, so each time the peer drains
//! what was written the kernel reports the socket writable and wakes the thread for nothing.
//! Envoy reads every answer, so that is one extra wake-up (an `epoll_wait` return and a
//! context switch) per check. Here writes go straight to the socket; only a write that would
//! block registers a duplicate descriptor for writability, dropped once a write goes through.

use std::{
    io::{self, IoSlice},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    pin::Pin,
    task::{Context, Poll, ready},
};

use rustix::io::Errno;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, unix::AsyncFd};

/// How much of a read buffer is offered to one `read` (and so zeroed first: the buffer is
/// handed over uninitialised and this crate has no `unsafe`).
const READ_CHUNK: usize = 16 << 10;

/// A non-blocking connected stream socket; see the module doc.
#[derive(Debug)]
pub(crate) struct ReadRegistered {
    read: AsyncFd<OwnedFd>,
    write: Option<AsyncFd<OwnedFd>>,
}

impl ReadRegistered {
    /// `fd` must be a connected, non-blocking stream socket.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        Ok(ReadRegistered { read: register(fd, Interest::READABLE)?, write: None })
    }

    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        write: impl Fn(BorrowedFd<'_>) -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let registered = match &self.write {
                Some(registered) => registered,
                None => match write(self.read.get_ref().as_fd()) {
                    Ok(n) => return Poll::Ready(Ok(n)),
                    Err(Errno::INTR) => continue,
                    Err(Errno::AGAIN) => {
                        // Registered after the failed write: epoll reports the socket at once
                        // if it became writable in between, so no wake-up is lost.
                        let dup = rustix::io::fcntl_dupfd_cloexec(self.read.get_ref(), 0)?;
                        self.write.insert(register(dup, Interest::WRITABLE)?)
                    }
                    Err(e) => return Poll::Ready(Err(e.into())),
                },
            };
            let mut guard = ready!(registered.poll_write_ready(cx))?;
            match guard.try_io(|fd| write(fd.get_ref().as_fd()).map_err(io::Error::from)) {
                Ok(Ok(n)) => {
                    self.write = None;
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

/// The safe constructor is deprecated because it cannot know that nothing else closes the
/// descriptor (its replacement is `unsafe`); here it is an `OwnedFd` moved in, so nothing can.
#[allow(deprecated)]
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::with_interest(fd, interest)
}

impl AsyncRead for ReadRegistered {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.read.poll_read_ready(cx))?;
            let want = buf.remaining().min(READ_CHUNK);
            let unfilled = buf.initialize_unfilled_to(want);
            match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut *unfilled).map_err(io::Error::from)) {
                Ok(Ok(n)) => {
                    if n > 0 && n < want {
                        // Drained: the next read would be EAGAIN, so wait for the next edge.
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for ReadRegistered {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_with(cx, |fd| rustix::io::write(fd, data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_with(cx, |fd| rustix::io::writev(fd, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match rustix::net::shutdown(self.read.get_ref(), rustix::net::Shutdown::Write) {
            Ok(()) | Err(Errno::NOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pair() -> (ReadRegistered, tokio::net::UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        theirs.set_nonblocking(true).expect("nonblocking");
        (ReadRegistered::new(ours.into()).expect("register"), tokio::net::UnixStream::from_std(theirs).expect("tokio"))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Far more than a socket buffer, written while the peer is not reading yet: the writes
    /// block, wait on the writability registration, and every byte arrives in order.
    #[tokio::test(flavor = "current_thread")]
    async fn writes_that_would_block_wait_and_lose_nothing() {
        let (mut ours, mut theirs) = pair();
        let data = pattern(8 << 20);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            ours.write_all(&sent).await.expect("write_all");
            let blocked = ours.write.is_some();
            ours.shutdown().await.expect("shutdown");
            blocked
        });
        tokio::task::yield_now().await;
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.expect("read");
        assert!(got == data, "{} bytes received of {}", got.len(), data.len());
        assert!(!writer.await.expect("writer"), "the write registration is dropped once writes go through");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_follow_the_peer_until_it_closes() {
        let (mut ours, mut theirs) = pair();
        let data = pattern(3 << 20);
        let sent = data.clone();
        tokio::spawn(async move {
            for chunk in sent.chunks(70_001) {
                theirs.write_all(chunk).await.expect("write");
                tokio::task::yield_now().await;
            }
        });
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.expect("read");
        assert!(got == data, "{} bytes received of {}", got.len(), data.len());
    }
}
