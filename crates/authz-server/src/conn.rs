//! One HTTP/2 connection from Envoy, served with h2 directly. `Authorization/Check` (v3), which
//! Envoy calls on every connection and request, is answered on a short path: the body is read
//! as it arrived, decoded as [`wire::CheckRequest`] and decided, and the response frames are
//! written back; no per-request tower stack. Every other method (v2 and v2alpha `Check`,
//! `dikastes.Healthz`, `grpc.health.v1.Health`) goes to tonic's [`Routes`] through a small body
//! bridge.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use alp_envoy::wire;
use bytes::{BufMut, Bytes, BytesMut};
use h2::{
    RecvStream,
    server::{Builder, SendResponse},
};
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tonic::{Status, service::Routes};
use tower::ServiceExt;
use tracing::debug;

use crate::{Authorizer, MAX_CONCURRENT_STREAMS};

/// The method every Envoy check calls.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The largest request message accepted, as tonic's default.
const MAX_MESSAGE: usize = 4 << 20;

/// HTTP/2 flow-control windows (hyper's server defaults), so that many checks in flight on one
/// connection are not held back by the 64 KiB of the protocol's default.
const WINDOW: u32 = 1 << 20;

/// The request headers accepted (hyper's server default); Envoy's gRPC headers are a few hundred bytes.
const MAX_HEADER_LIST: u32 = 16 << 10;

/// What a connection's streams share.
#[derive(Clone, Debug)]
pub(crate) struct Services {
    pub authorizer: Authorizer,
    pub routes: Routes,
}

/// Serves one connection until the peer closes it, or, once `shutdown` is cancelled, until the
/// streams in flight are done (a GOAWAY tells the peer to open a new connection elsewhere).
pub(crate) async fn serve_connection<T>(io: T, services: Arc<Services>, shutdown: CancellationToken)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .max_header_list_size(MAX_HEADER_LIST)
        .handshake::<_, Bytes>(io);
    let mut conn = match handshake.await {
        Ok(conn) => conn,
        Err(e) => return debug!(error = %e, "HTTP/2 handshake failed"),
    };
    let mut draining = false;
    loop {
        let next = if draining {
            conn.accept().await
        } else {
            tokio::select! {
                next = conn.accept() => next,
                () = shutdown.cancelled() => {
                    conn.graceful_shutdown();
                    draining = true;
                    continue;
                }
            }
        };
        match next {
            None => break,
            Some(Err(e)) => {
                debug!(error = %e, "HTTP/2 connection ended");
                break;
            }
            Some(Ok((request, respond))) => {
                let services = services.clone();
                if request.uri().path() == CHECK_PATH {
                    tokio::spawn(async move { check(&services.authorizer, request, respond).await });
                } else {
                    tokio::spawn(async move { route(services.routes.clone(), request, respond).await });
                }
            }
        }
    }
}

/// The v3 check's short path.
async fn check(authorizer: &Authorizer, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let answer = read_message(request.into_body()).await.and_then(|message| {
        let req = wire::CheckRequest::decode(message)
            .map_err(|e| Status::internal(format!("decoding the CheckRequest: {e}")))?;
        Ok(grpc_frame(&authorizer.check_wire(&req)))
    });
    let sent = match answer {
        Ok(frame) => send_message(&mut respond, frame),
        Err(status) => respond.send_response(status.into_http(), true).map(drop),
    };
    if let Err(e) = sent {
        debug!(error = %e, "check: the answer could not be sent");
    }
}

/// The one gRPC message of a unary request, without its 5-byte prefix. The body is usually one
/// DATA frame, used without a copy.
async fn read_message(mut body: RecvStream) -> Result<Bytes, Status> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| Status::internal(format!("reading the request: {e}")))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        match joined.as_mut() {
            None if first.is_empty() => first = chunk,
            None => {
                let mut buf = BytesMut::with_capacity(first.len() + chunk.len());
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
            }
            Some(buf) => buf.extend_from_slice(&chunk),
        }
        if joined.as_ref().map_or(first.len(), BytesMut::len) > MAX_MESSAGE + 5 {
            return Err(Status::resource_exhausted(format!("request larger than {MAX_MESSAGE} bytes")));
        }
    }
    let mut buf = joined.map_or(first, BytesMut::freeze);
    if buf.is_empty() {
        return Err(Status::internal("missing request message"));
    }
    let Some((&[compressed, a, b, c, d], _)) = buf.split_first_chunk::<5>() else {
        return Err(Status::internal("truncated gRPC message prefix"));
    };
    if compressed != 0 {
        return Err(Status::unimplemented("compressed requests are not supported"));
    }
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if buf.len() - 5 != len {
        return Err(Status::internal(format!(
            "expected one message of {len} bytes, the request has {} after the prefix",
            buf.len() - 5
        )));
    }
    Ok(buf.split_off(5))
}

/// `message` as one length-prefixed, uncompressed gRPC message.
pub fn grpc_frame(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // The buffer has the room the message asked for.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// Headers, the message and `grpc-status: 0` in trailers.
fn send_message(respond: &mut SendResponse<Bytes>, frame: Bytes) -> Result<(), h2::Error> {
    let mut head = Response::new(());
    head.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    let mut stream = respond.send_response(head, false)?;
    stream.send_data(frame, false)?;
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert(Status::GRPC_STATUS, HeaderValue::from_static("0"));
    stream.send_trailers(trailers)
}

/// Any other method: through tonic's router, its response body written back frame by frame.
/// These answers are a few small messages (health, v2 checks), so data is sent as it comes and
/// h2 holds it until the peer's window opens.
async fn route(routes: Routes, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let request = request.map(|body| tonic::body::Body::new(RecvBody { body, data_done: false }));
    let Ok(response) = routes.oneshot(request).await;
    let (head, body) = response.into_parts();
    let end = body.is_end_stream();
    let mut stream = match respond.send_response(Response::from_parts(head, ()), end) {
        Ok(stream) => stream,
        Err(e) => return debug!(error = %e, "response headers not sent"),
    };
    if end {
        return;
    }
    let mut body = std::pin::pin!(body);
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // The peer reset the stream or left (e.g. a health watch it no longer wants).
            _ = std::future::poll_fn(|cx| stream.poll_reset(cx)) => return,
        };
        let sent = match frame {
            None => {
                if let Err(e) = stream.send_data(Bytes::new(), true) {
                    debug!(error = %e, "end of stream not sent");
                }
                return;
            }
            Some(Err(e)) => {
                debug!(error = %e, "response body failed");
                return stream.send_reset(h2::Reason::INTERNAL_ERROR);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => stream.send_data(data, false),
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        if let Err(e) = stream.send_trailers(trailers) {
                            debug!(error = %e, "trailers not sent");
                        }
                        return;
                    }
                    Err(_) => continue,
                },
            },
        };
        if let Err(e) = sent {
            return debug!(error = %e, "response data not sent");
        }
    }
}

/// An h2 request body as an [`http_body::Body`], releasing flow-control capacity as it is read.
struct RecvBody {
    body: RecvStream,
    data_done: bool,
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.body.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.body.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.data_done = true,
            }
        }
        Poll::Ready(ready!(this.body.poll_trailers(cx)).transpose().map(|t| t.map(Frame::trailers)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBody").field("data_done", &self.data_done).finish_non_exhaustive()
    }
}
