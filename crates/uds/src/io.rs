//! [`Filtered`]: a connection whose reads go through an [`AuthorityFilter`]; writes pass as
//! they are. [`channel`]: a tonic channel to a Unix socket.

use std::{
    io::{self, IoSlice},
    path::PathBuf,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{UnixListener, UnixStream},
};
use tokio_stream::{Stream, StreamExt, wrappers::UnixListenerStream};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::AuthorityFilter;

/// How much is asked of the socket at a time (h2 reads with the same size).
const READ_CHUNK: usize = 8 << 10;

/// A server-side connection whose client-to-server bytes are rewritten by an
/// [`AuthorityFilter`], so that h2 (or hyper, or tonic) behind it accepts the `:authority`
/// forms gRPC clients send over Unix sockets.
#[derive(Debug)]
pub struct Filtered<T> {
    inner: T,
    filter: AuthorityFilter,
    /// Read from `inner`, not yet decided (an unfinished frame header or header block).
    input: BytesMut,
    /// Decided, not yet read by the server.
    output: BytesMut,
    eof: bool,
}

impl<T> Filtered<T> {
    /// Wraps a connection accepted on a Unix socket.
    pub fn new(inner: T) -> Self {
        Self::with_filter(inner, AuthorityFilter::new())
    }

    /// Wraps a connection whose bytes pass untouched (a listener that stays strict), so that
    /// both kinds of listener serve one connection type.
    pub fn passthrough(inner: T) -> Self {
        Self::with_filter(inner, AuthorityFilter::passthrough())
    }

    fn with_filter(inner: T, filter: AuthorityFilter) -> Self {
        Filtered { inner, filter, input: BytesMut::new(), output: BytesMut::new(), eof: false }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Filtered<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.filter.is_opaque() && this.input.is_empty() && this.output.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(this.output.get(..n).unwrap_or_default());
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // A frame cut off by the close is dropped: the server sees the close either way.
                return Poll::Ready(Ok(()));
            }
            if this.input.capacity() - this.input.len() < READ_CHUNK {
                this.input.reserve(READ_CHUNK);
            }
            if ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input))? == 0 {
                this.eof = true;
                continue;
            }
            this.filter
                .process(&mut this.input, &mut this.output)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Filtered<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Filtered<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// The connections accepted on `listener`, filtered: what a tonic server's
/// `serve_with_incoming` takes.
pub fn incoming(listener: UnixListener) -> impl Stream<Item = io::Result<Filtered<UnixStream>>> {
    UnixListenerStream::new(listener).map(|accepted| accepted.map(Filtered::new))
}

/// h2c to the Unix socket at `path`, connected now (an error if nothing listens there). Every
/// connection the channel makes goes to the socket; the `:authority` it sends is `localhost`.
pub async fn channel(path: impl Into<PathBuf>) -> Result<Channel, tonic::transport::Error> {
    let path = path.into();
    // The URI is required by the API but names no host: the connector dials the socket.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(hyper_util::rt::TokioIo::new) }
        }))
        .await
}
