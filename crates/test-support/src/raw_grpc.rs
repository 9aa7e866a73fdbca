//! A gRPC client written frame by frame, so that a request can carry the `:authority` other
//! gRPC implementations send over a Unix socket, which no Rust client sends: grpc-go's socket
//! path, gRPC C-core's percent-encoded path, an empty one, or `localhost`.

use std::{io, path::Path, time::Duration};

use alp_proto::felix::{SyncRequest, ToDataplane, to_dataplane::Payload};
use alp_uds::frame::{FRAME_HEADER_LEN, FrameHeader, PREFACE, encode as frame, flag, kind};
use bytes::{Buf, Bytes, BytesMut};
use loona_hpack::{Decoder, Encoder};
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

/// The `:authority` a client sends when it dials a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// grpc-go with a custom dialer (Calico's Dikastes, `healthz`): the socket path itself.
    SocketPath,
    /// gRPC C-core since 1.57 (Python, C++): the path percent-encoded.
    PercentEncoded,
    /// An empty `:authority`.
    Empty,
    /// `localhost`, as tonic and many others send.
    Localhost,
}

impl Authority {
    /// Every form, for tests that try each.
    pub const ALL: [Authority; 4] =
        [Authority::SocketPath, Authority::PercentEncoded, Authority::Empty, Authority::Localhost];

    /// The header's value for a client dialling `socket`.
    pub fn value(self, socket: &Path) -> Vec<u8> {
        let path = socket.to_string_lossy();
        match self {
            Authority::SocketPath => path.as_bytes().to_vec(),
            Authority::PercentEncoded => path.replace('%', "%25").replace('/', "%2F").into_bytes(),
            Authority::Empty => Vec::new(),
            Authority::Localhost => b"localhost".to_vec(),
        }
    }
}

/// How a call ended, or how far it got.
#[derive(Debug, Default)]
pub struct RawResponse {
    /// `:status` of the response headers.
    pub status: Option<String>,
    /// `grpc-status` (from trailers, or from a trailers-only response).
    pub grpc_status: Option<String>,
    /// The messages received, without their 5-byte gRPC prefix.
    pub messages: Vec<Bytes>,
    /// The error code of a RST_STREAM or GOAWAY the server sent, if any.
    pub reset: Option<u32>,
}

const STREAM: u32 = 1;

/// One call on its own connection: the unary request `message` (a serialised protobuf) to
/// `path` with the given `:authority`; reads until the stream ends, `enough` says the messages
/// so far suffice (for server streams), or `timeout` passes.
pub async fn call(
    socket: &Path,
    authority: Authority,
    path: &str,
    message: &[u8],
    enough: impl Fn(&[Bytes]) -> bool,
    timeout: Duration,
) -> io::Result<RawResponse> {
    let mut stream = UnixStream::connect(socket).await?;
    let mut out = PREFACE.to_vec();
    out.extend(frame(kind::SETTINGS, 0, 0, &[]));
    let authority = authority.value(socket);
    let fields: [(&[u8], &[u8]); 7] = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", &authority),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"user-agent", b"grpc-go/1.75.0"),
    ];
    out.extend(frame(kind::HEADERS, flag::END_HEADERS, STREAM, &Encoder::new().encode(fields)));
    let mut body = vec![0];
    body.extend(u32::try_from(message.len()).expect("a small message").to_be_bytes());
    body.extend(message);
    out.extend(frame(kind::DATA, flag::END_STREAM, STREAM, &body));
    stream.write_all(&out).await?;
    match tokio::time::timeout(timeout, read_response(&mut stream, enough)).await {
        Ok(response) => response,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no complete answer in time")),
    }
}

async fn read_response(stream: &mut UnixStream, enough: impl Fn(&[Bytes]) -> bool) -> io::Result<RawResponse> {
    let mut decoder = Decoder::new();
    let mut response = RawResponse::default();
    let mut data = BytesMut::new();
    loop {
        let mut header = [0u8; FRAME_HEADER_LEN];
        if stream.read_exact(&mut header).await.is_err() {
            return Ok(response);
        }
        let FrameHeader { length: len, frame_type, flags, stream_id } = FrameHeader::parse(&header);
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload).await?;
        match frame_type {
            kind::SETTINGS if flags & flag::ACK == 0 => {
                stream.write_all(&frame(kind::SETTINGS, flag::ACK, 0, &[])).await?
            }
            kind::PING if flags & flag::ACK == 0 => {
                stream.write_all(&frame(kind::PING, flag::ACK, 0, &payload)).await?
            }
            kind::RST_STREAM if stream_id == STREAM => {
                response.reset = Some(u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")));
                return Ok(response);
            }
            kind::GOAWAY => {
                response.reset = Some(u32::from_be_bytes(payload[4..8].try_into().expect("8 bytes")));
                return Ok(response);
            }
            kind::HEADERS if stream_id == STREAM => {
                assert!(flags & flag::END_HEADERS != 0, "the servers here send headers in one frame");
                let fields = decoder.decode(&payload).map_err(|e| io::Error::other(format!("{e:?}")))?;
                for (name, value) in fields {
                    let value = String::from_utf8_lossy(&value).into_owned();
                    match &name[..] {
                        b":status" => response.status = Some(value),
                        b"grpc-status" => response.grpc_status = Some(value),
                        _ => {}
                    }
                }
                if flags & flag::END_STREAM != 0 {
                    return Ok(response);
                }
            }
            kind::DATA if stream_id == STREAM => {
                // Give the window back at once, so that a long server stream keeps flowing.
                let increment = u32::try_from(len).expect("a frame").to_be_bytes();
                if len > 0 {
                    stream
                        .write_all(
                            &[
                                frame(kind::WINDOW_UPDATE, 0, 0, &increment),
                                frame(kind::WINDOW_UPDATE, 0, STREAM, &increment),
                            ]
                            .concat(),
                        )
                        .await?;
                }
                data.extend_from_slice(&payload);
                while data.len() >= 5 {
                    let message_len = u32::from_be_bytes(data[1..5].try_into().expect("4 bytes")) as usize;
                    if data.len() < 5 + message_len {
                        break;
                    }
                    data.advance(5);
                    response.messages.push(data.split_to(message_len).freeze());
                }
                if enough(&response.messages) || flags & flag::END_STREAM != 0 {
                    return Ok(response);
                }
            }
            _ => {}
        }
    }
}

/// Felix's policy-sync method.
pub const SYNC_PATH: &str = "/felix.PolicySync/Sync";

/// Opens `PolicySync/Sync` on `socket` with `authority` and reads through the first InSync
/// (or until the stream ends or `timeout` passes): the response and the messages decoded.
pub async fn sync_through_in_sync(
    socket: &Path,
    authority: Authority,
    timeout: Duration,
) -> io::Result<(RawResponse, Vec<ToDataplane>)> {
    let is_in_sync =
        |m: &Bytes| matches!(ToDataplane::decode(m.clone()), Ok(ToDataplane { payload: Some(Payload::InSync(_)), .. }));
    let request = SyncRequest::default().encode_to_vec();
    let response = call(socket, authority, SYNC_PATH, &request, |ms| ms.iter().any(is_in_sync), timeout).await?;
    let messages = response
        .messages
        .iter()
        .map(|m| ToDataplane::decode(m.clone()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)))
        .collect::<io::Result<_>>()?;
    Ok((response, messages))
}
