//! `alp-echo`: the floor of an ext_authz hop on this machine. It serves
//! `envoy.service.auth.v3.Authorization/Check` over a Unix socket with h2 directly and answers
//! every check OK without decoding it: what remains of a check's latency and CPU against it is
//! HTTP/2, the socket and the scheduler, not tonic or alp. Benchmarks only (S3's reference).

use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use envoy_types::pb::{envoy::service::auth::v3::CheckResponse, google::rpc::Status};
use http::{HeaderMap, HeaderValue, Response, header};
use tokio::net::{UnixListener, UnixStream};

#[derive(Parser, Debug)]
#[command(about = "A reference ext_authz v3 server that answers every check OK without decoding it")]
struct Args {
    /// The Unix socket to listen on (replaced if it exists).
    #[arg(long)]
    socket: PathBuf,
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    ok: Bytes,
) -> Result<(), h2::Error> {
    let mut body = request.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let mut response = Response::new(());
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    let mut send = respond.send_response(response, false)?;
    send.send_data(ok, false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    send.send_trailers(trailers)
}

async fn serve(stream: UnixStream, ok: Bytes) -> Result<(), h2::Error> {
    let mut conn = h2::server::Builder::new().max_concurrent_streams(1024).handshake(stream).await?;
    while let Some(accepted) = conn.accept().await {
        let (request, respond) = accepted?;
        tokio::spawn(answer(request, respond, ok.clone()));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ok =
        alp_authz_server::grpc_frame(&CheckResponse { status: Some(Status::default()), ..CheckResponse::default() });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let _ = std::fs::remove_file(&args.socket);
        let listener = UnixListener::bind(&args.socket).with_context(|| args.socket.display().to_string())?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream, ok.clone()));
        }
    })
}
