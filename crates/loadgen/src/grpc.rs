//! A lean ext_authz v3 client for the load generator: HTTP/2 from `h2` directly (no tower
//! buffer, no per-call encoding), each `CheckRequest` framed once up front (with
//! [`alp_authz_server::grpc_frame`]), so that the generator's CPU per check stays well below
//! the server's it measures.

use bytes::{Buf, Bytes, BytesMut};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, Uri, header};
use prost::Message;
use tokio::net::{TcpStream, UnixStream};

const CHECK_URI: &str = "http://localhost/envoy.service.auth.v3.Authorization/Check";

/// A check that did not come back as a gRPC OK carrying a `CheckResponse`.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("HTTP/2: {0}")]
    H2(#[from] h2::Error),
    #[error("gRPC status {0}")]
    Grpc(String),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// The h2 client as a load generator needs it. An open loop can have thousands of answers
/// received but not yet read when the generator falls behind for a moment; h2's defaults (a 64 KiB
/// window, and a budget of ~100 small unread DATA frames, past which it closes the connection
/// with ENHANCE_YOUR_CALM) are made for untrusted peers, not for a server under measurement.
fn builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(1 << 20).initial_connection_window_size(1 << 30).data_frame_budget(1 << 30);
    builder
}

/// Opens one HTTP/2 connection to `target` (a Unix socket path or `tcp://HOST:PORT`); the
/// connection is driven by a task on the current runtime.
pub async fn connect(target: &str) -> anyhow::Result<SendRequest<Bytes>> {
    let send = if let Some(hostport) = target.strip_prefix("tcp://") {
        let stream = TcpStream::connect(hostport.trim_end_matches('/')).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = builder().handshake(stream).await?;
        tokio::spawn(conn);
        send
    } else {
        let path = target.strip_prefix("unix://").or_else(|| target.strip_prefix("unix:")).unwrap_or(target);
        let (send, conn) = builder().handshake(UnixStream::connect(path).await?).await?;
        tokio::spawn(conn);
        send
    };
    Ok(send.ready().await?)
}

fn grpc_status(headers: &HeaderMap) -> Result<bool, CheckError> {
    match headers.get("grpc-status") {
        None => Ok(false),
        Some(v) if v == "0" => Ok(true),
        Some(v) => Err(CheckError::Grpc(String::from_utf8_lossy(v.as_bytes()).into_owned())),
    }
}

/// Sends one framed check on `send` and returns the `status.code` of the answer.
pub async fn check(send: &SendRequest<Bytes>, body: Bytes) -> Result<i32, CheckError> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(Uri::from_static(CHECK_URI))
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(())
        .map_err(|_| CheckError::Malformed("request"))?;
    let mut send = send.clone().ready().await?;
    let (response, mut stream) = send.send_request(request, false)?;
    stream.send_data(body, true)?;
    let response = response.await?;
    if grpc_status(response.headers())? {
        return Err(CheckError::Malformed("trailers-only OK without a message"));
    }
    let mut body = response.into_body();
    let mut message = Bytes::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        message = if message.is_empty() {
            chunk
        } else {
            let mut joined = BytesMut::from(&message[..]);
            joined.extend_from_slice(&chunk);
            joined.freeze()
        };
    }
    let trailers = body.trailers().await?.ok_or(CheckError::Malformed("no trailers"))?;
    if !grpc_status(&trailers)? {
        return Err(CheckError::Malformed("no grpc-status"));
    }
    if message.len() < 5 {
        return Err(CheckError::Malformed("short message"));
    }
    message.advance(1);
    let len = message.get_u32() as usize;
    let payload = message.get(..len).ok_or(CheckError::Malformed("truncated message"))?;
    let response = CheckResponse::decode(payload).map_err(|_| CheckError::Malformed("CheckResponse"))?;
    Ok(response.status.map_or(0, |s| s.code))
}
