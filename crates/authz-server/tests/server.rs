//! The server over real Unix sockets: real gRPC clients (envoy-types', the generated healthz
//! client, tonic-health's), real HTTP for `/metrics` and `/terminate`.

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alp_authz_server::{
    Bound, Kind, Listen, Metrics, ServeError, TERMINATE_BODY, UNAVAILABLE_MESSAGE, bind, connect, serve, serve_http_on,
    serve_on,
};
use alp_engine::{Code, Config, Live, LiveWriter, Store, decide};
use alp_proto::dikastes::{HealthCheckRequest, grpc::healthz_client::HealthzClient};
use envoy_types::pb::envoy::{
    config::core::v3::{Address, SocketAddress, address, socket_address},
    service::auth::v3::{
        AttributeContext, CheckRequest, CheckResponse, attribute_context, authorization_client::AuthorizationClient,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
    time::timeout,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest as GrpcHealthRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Allow GET for service account `web`; the tier's default denies everything else.
const SYNC: &str = r#"{"activePolicyUpdate":{"id":{"name":"p1","kind":"GlobalNetworkPolicy"},"policy":{"inboundRules":[{"action":"Allow","srcServiceAccountMatch":{"names":["web"]},"httpMatch":{"methods":["GET"]}}]}}}
{"workloadEndpointUpdate":{"id":{"workloadId":"ns/pod"},"endpoint":{"tiers":[{"name":"default","ingressPolicies":[{"name":"p1","kind":"GlobalNetworkPolicy"}],"defaultAction":"Deny"}],"profileIds":[]}}}
{"inSync":{}}
"#;

const LONG: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn publish(live: &mut LiveWriter) {
    let mut store = Store::new(Config::default());
    for line in SYNC.lines().filter(|l| !l.trim().is_empty()) {
        let msg = alp_proto::jsonl::decode(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        store.apply(&msg).unwrap();
        live.count_updates(1);
    }
    assert!(store.in_sync());
    live.set_connected(true);
    live.publish(store.snapshot(), now_ms());
    live.set_in_sync(true);
}

fn check(sa: &str, method: Option<&str>) -> CheckRequest {
    let sock = |ip: &str, port: u32| {
        Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: ip.to_owned(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..SocketAddress::default()
            })),
        })
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(attribute_context::Peer {
                address: sock("10.0.0.1", 40000),
                principal: format!("spiffe://cluster.local/ns/ns/sa/{sa}"),
                ..Default::default()
            }),
            destination: Some(attribute_context::Peer { address: sock("10.0.0.2", 8080), ..Default::default() }),
            request: method.map(|m| attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: m.to_owned(),
                    path: "/things?secret=1".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

struct Server {
    dir: tempfile::TempDir,
    live: Arc<Live>,
    writer: LiveWriter,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    fn socket(&self) -> PathBuf {
        self.dir.path().join("dikastes.sock")
    }

    async fn channel(&self) -> Channel {
        connect(self.socket().to_str().unwrap()).await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        timeout(LONG, self.task).await.expect("serve returns after cancel").unwrap().unwrap();
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let writer = LiveWriter::new();
    let live = writer.reader();
    let metrics = Arc::new(Metrics::new(live.clone()));
    let shutdown = CancellationToken::new();
    let bound = bind(&Listen::Unix(dir.path().join("dikastes.sock"))).unwrap();
    let task = tokio::spawn(serve_on(bound, live.clone(), metrics.clone(), shutdown.clone()));
    Server { dir, live, writer, metrics, shutdown, task }
}

async fn status(client: &mut AuthorizationClient<Channel>, req: CheckRequest) -> (i32, String) {
    let resp: CheckResponse = client.check(req).await.expect("Check never fails at the gRPC level").into_inner();
    assert!(resp.http_response.is_none() && resp.dynamic_metadata.is_none(), "only a status, as Calico: {resp:?}");
    let s = resp.status.expect("a status");
    assert!(s.details.is_empty());
    (s.code, s.message)
}

async fn grpc_health(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(GrpcHealthRequest { service: service.to_owned() })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn before_the_first_snapshot_everything_is_unavailable_and_not_ready() {
    let server = start().await;
    let channel = server.channel().await;
    let mut authz = AuthorizationClient::new(channel.clone());
    for method in [Some("GET"), None] {
        let (code, message) = status(&mut authz, check("web", method)).await;
        assert_eq!(code, Code::Unavailable as i32);
        assert_eq!(message, UNAVAILABLE_MESSAGE);
    }

    let mut healthz = HealthzClient::new(channel.clone());
    assert!(!healthz.check_readiness(HealthCheckRequest {}).await.unwrap().into_inner().healthy);
    assert!(healthz.check_liveness(HealthCheckRequest {}).await.unwrap().into_inner().healthy);

    assert_eq!(grpc_health(channel.clone(), "").await.unwrap(), ServingStatus::NotServing as i32);
    assert_eq!(
        grpc_health(channel.clone(), "envoy.service.auth.v3.Authorization").await.unwrap(),
        ServingStatus::NotServing as i32
    );
    assert_eq!(grpc_health(channel.clone(), "dikastes.Healthz").await.unwrap(), ServingStatus::Serving as i32);
    assert_eq!(grpc_health(channel, "nope").await.unwrap_err().code(), tonic::Code::NotFound);

    assert_eq!(server.metrics.checks(Kind::Http, Code::Unavailable), 1);
    assert_eq!(server.metrics.checks(Kind::Network, Code::Unavailable), 1);
    server.stop().await;
}

#[tokio::test]
async fn after_a_publish_checks_follow_the_policy_and_health_is_ready() {
    let mut server = start().await;
    publish(&mut server.writer);
    let channel = server.channel().await;
    let mut authz = AuthorizationClient::new(channel.clone());

    assert_eq!(status(&mut authz, check("web", Some("GET"))).await, (Code::Ok as i32, String::new()));
    assert_eq!(status(&mut authz, check("web", Some("POST"))).await, (Code::PermissionDenied as i32, String::new()));
    assert_eq!(status(&mut authz, check("db", Some("GET"))).await.0, Code::PermissionDenied as i32);

    // Connection-level checks answer as the engine does (D4: an HTTP-constrained Allow lets
    // the connection through; no rule for `db` → the tier's default).
    let snap = server.live.load().as_ref().cloned().unwrap();
    for sa in ["web", "db"] {
        let req = check(sa, None);
        let want = decide(&snap, &alp_envoy::to_request(&req)).code;
        assert_eq!(status(&mut authz, req).await.0, want as i32, "network check for {sa}");
    }
    assert_eq!(status(&mut authz, check("web", None)).await.0, Code::Ok as i32);
    assert_eq!(status(&mut authz, check("db", None)).await.0, Code::PermissionDenied as i32);

    let mut healthz = HealthzClient::new(channel.clone());
    assert!(healthz.check_readiness(HealthCheckRequest {}).await.unwrap().into_inner().healthy);
    assert!(healthz.check_liveness(HealthCheckRequest {}).await.unwrap().into_inner().healthy);
    assert_eq!(grpc_health(channel.clone(), "").await.unwrap(), ServingStatus::Serving as i32);

    // D5: losing sync keeps the snapshot serving but readiness goes false.
    server.writer.set_in_sync(false);
    assert!(!healthz.check_readiness(HealthCheckRequest {}).await.unwrap().into_inner().healthy);
    assert_eq!(grpc_health(channel, "").await.unwrap(), ServingStatus::NotServing as i32);
    assert_eq!(status(&mut authz, check("web", Some("GET"))).await.0, Code::Ok as i32);
    server.stop().await;
}

#[tokio::test]
async fn health_watch_follows_sync_and_ends_on_shutdown() {
    let mut server = start().await;
    let mut watch = HealthClient::new(server.channel().await)
        .watch(GrpcHealthRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = timeout(LONG, watch.message()).await.unwrap().unwrap();
    assert_eq!(first.unwrap().status, ServingStatus::NotServing as i32);
    publish(&mut server.writer);
    assert_eq!(timeout(LONG, watch.message()).await.unwrap().unwrap().unwrap().status, ServingStatus::Serving as i32);

    // An open watch must not hold the graceful stop.
    server.shutdown.cancel();
    timeout(LONG, server.task).await.expect("serve returns with a watch open").unwrap().unwrap();
    assert!(timeout(LONG, watch.message()).await.unwrap().map_or(true, |m| m.is_none()));
}

fn mode(path: &Path) -> (bool, u32) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.file_type().is_socket(), meta.permissions().mode() & 0o777)
}

#[tokio::test]
async fn unix_socket_replaces_a_stale_file_and_is_world_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dikastes.sock");
    std::fs::write(&path, "stale").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let live = LiveWriter::new().reader();
    let metrics = Arc::new(Metrics::new(live.clone()));
    let shutdown = CancellationToken::new();
    let bound = bind(&Listen::Unix(path.clone())).unwrap();
    assert_eq!(mode(&path), (true, 0o777));
    let task = tokio::spawn(serve_on(bound, live.clone(), metrics.clone(), shutdown.clone()));
    let mut authz = AuthorizationClient::new(connect(path.to_str().unwrap()).await.unwrap());
    assert_eq!(status(&mut authz, check("web", Some("GET"))).await.0, Code::Unavailable as i32);
    shutdown.cancel();
    timeout(LONG, task).await.unwrap().unwrap().unwrap();

    // A stale socket left by a previous run is replaced too (through `serve`).
    assert!(path.exists());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(Listen::Unix(path.clone()), live, metrics, shutdown.clone()));
    let channel = timeout(LONG, async {
        loop {
            if let Ok(c) = connect(path.to_str().unwrap()).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(mode(&path), (true, 0o777));
    assert_eq!(status(&mut AuthorizationClient::new(channel), check("web", None)).await.0, Code::Unavailable as i32);
    shutdown.cancel();
    timeout(LONG, task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn a_directory_at_the_listen_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sock");
    std::fs::create_dir(&path).unwrap();
    let err = bind(&Listen::Unix(path)).unwrap_err();
    assert!(matches!(err, ServeError::RemoveStale { .. }), "{err}");
}

#[tokio::test]
async fn tcp_listener_serves_checks() {
    let mut writer = LiveWriter::new();
    publish(&mut writer);
    let live = writer.reader();
    let metrics = Arc::new(Metrics::new(live.clone()));
    let shutdown = CancellationToken::new();
    let bound = bind(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = bound.local_addr().unwrap();
    assert!(matches!(bound, Bound::Tcp(_)));
    let task = tokio::spawn(serve_on(bound, live, metrics, shutdown.clone()));
    let mut authz = AuthorizationClient::new(connect(&format!("tcp://{addr}")).await.unwrap());
    assert_eq!(status(&mut authz, check("web", Some("GET"))).await.0, Code::Ok as i32);
    shutdown.cancel();
    timeout(LONG, task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn in_flight_checks_finish_during_a_graceful_stop() {
    let mut server = start().await;
    publish(&mut server.writer);
    let mut authz = AuthorizationClient::new(server.channel().await);
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let mut c = authz.clone();
            tokio::spawn(async move { c.check(check("web", Some(if i % 2 == 0 { "GET" } else { "PUT" }))).await })
        })
        .collect();
    assert_eq!(status(&mut authz, check("web", Some("GET"))).await.0, 0);
    server.shutdown.cancel();
    let mut answered = 0;
    for c in calls {
        // Calls already sent are answered; any that lost the race with the stop fail cleanly.
        if let Ok(r) = c.await.unwrap() {
            assert!(r.into_inner().status.is_some());
            answered += 1;
        }
    }
    assert!(answered > 0);
    timeout(LONG, server.task).await.unwrap().unwrap().unwrap();
    assert!(connect(server.dir.path().join("dikastes.sock").to_str().unwrap()).await.is_err());
}

#[tokio::test]
async fn metrics_count_checks_by_code_and_kind() {
    let mut server = start().await;
    let mut authz = AuthorizationClient::new(server.channel().await);
    status(&mut authz, check("web", Some("GET"))).await;
    publish(&mut server.writer);
    status(&mut authz, check("web", Some("GET"))).await;
    status(&mut authz, check("web", Some("GET"))).await;
    status(&mut authz, check("web", Some("POST"))).await;
    status(&mut authz, check("db", None)).await;

    let text = server.metrics.encode();
    for line in [
        r#"alp_checks_total{code="UNAVAILABLE",kind="http"} 1"#,
        r#"alp_checks_total{code="OK",kind="http"} 2"#,
        r#"alp_checks_total{code="PERMISSION_DENIED",kind="http"} 1"#,
        r#"alp_checks_total{code="PERMISSION_DENIED",kind="network"} 1"#,
        r#"alp_checks_total{code="INTERNAL",kind="network"} 0"#,
        "alp_check_duration_seconds_count 5",
        r#"alp_check_duration_seconds_bucket{le="+Inf"} 5"#,
        r#"alp_check_duration_seconds_bucket{le="0.000001"}"#,
        r#"alp_check_duration_seconds_bucket{le="0.01"}"#,
        "alp_sync_connected 1",
        "alp_sync_in_sync 1",
        "alp_sync_updates_total 3",
        "alp_snapshots_published_total 1",
        "alp_snapshot_age_seconds ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    server.stop().await;
}

async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    timeout(LONG, s.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn http_serves_metrics_and_terminate() {
    let live = LiveWriter::new().reader();
    let metrics = Arc::new(Metrics::new(live.clone()));
    let shutdown = CancellationToken::new();
    let terminate = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_http_on(listener, metrics, shutdown.clone(), Some(terminate.clone())));

    let r = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{r}");
    assert!(r.contains("alp_checks_total{code=\"OK\",kind=\"http\"} 0"), "{r}");
    assert!(r.contains("alp_sync_in_sync 0"), "{r}");

    let r = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{r}");

    assert!(!terminate.is_cancelled());
    let r = http(addr, "POST /terminate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with(&format!("\r\n\r\n{TERMINATE_BODY}")), "{r:?}");
    assert!(terminate.is_cancelled());

    shutdown.cancel();
    timeout(LONG, task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn http_without_terminate_has_no_such_route_and_terminate_can_be_the_shutdown_token() {
    let metrics = Arc::new(Metrics::new(LiveWriter::new().reader()));
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_http_on(listener, metrics.clone(), shutdown.clone(), None));
    let r = http(addr, "GET /terminate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    shutdown.cancel();
    timeout(LONG, task).await.unwrap().unwrap().unwrap();

    // The same token for both: the reply still goes out, then the server stops.
    let token = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_http_on(listener, metrics, token.clone(), Some(token.clone())));
    let r = http(addr, "PUT /terminate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    assert!(r.ends_with(TERMINATE_BODY), "{r:?}");
    timeout(LONG, task).await.unwrap().unwrap().unwrap();
}

#[test]
fn listen_parses_paths_and_tcp() {
    assert_eq!(
        "/var/run/dikastes/dikastes.sock".parse::<Listen>().unwrap(),
        Listen::Unix("/var/run/dikastes/dikastes.sock".into())
    );
    assert_eq!("unix:///tmp/s".parse::<Listen>().unwrap(), Listen::Unix("/tmp/s".into()));
    assert_eq!("tcp://127.0.0.1:9000".parse::<Listen>().unwrap(), Listen::Tcp(([127, 0, 0, 1], 9000).into()));
    assert_eq!("tcp://[::1]:9000".parse::<Listen>().unwrap(), Listen::Tcp("[::1]:9000".parse().unwrap()));
    assert!(matches!("tcp://localhost:9000".parse::<Listen>().unwrap(), Listen::Tcp(a) if a.port() == 9000));
    assert!("tcp://nohost".parse::<Listen>().is_err());
    assert!("".parse::<Listen>().is_err());
    assert_eq!("tcp://127.0.0.1:9000".parse::<Listen>().unwrap().to_string(), "tcp://127.0.0.1:9000");
}

/// The v2 form of [`check`]: what an Envoy ≤ 1.17 sends.
fn check_v2(sa: &str, method: Option<&str>) -> alp_proto::envoy_v2::envoy::service::auth::v2::CheckRequest {
    use alp_proto::envoy_v2::envoy::{api::v2::core as core2, service::auth::v2 as auth2};
    let sock = |ip: &str, port: u32| {
        Some(core2::Address {
            address: Some(core2::address::Address::SocketAddress(core2::SocketAddress {
                address: ip.to_owned(),
                port_specifier: Some(core2::socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        })
    };
    auth2::CheckRequest {
        attributes: Some(auth2::AttributeContext {
            source: Some(auth2::attribute_context::Peer {
                address: sock("10.0.0.1", 40000),
                principal: format!("spiffe://cluster.local/ns/ns/sa/{sa}"),
                ..Default::default()
            }),
            destination: Some(auth2::attribute_context::Peer { address: sock("10.0.0.2", 8080), ..Default::default() }),
            request: method.map(|m| auth2::attribute_context::Request {
                http: Some(auth2::attribute_context::HttpRequest {
                    method: m.to_owned(),
                    path: "/things?secret=1".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn v2_and_v2alpha_checks_answer_as_v3_does() {
    use alp_proto::envoy_v2::envoy::service::auth::{
        v2::authorization_client::AuthorizationClient as V2Client,
        v2alpha::authorization_client::AuthorizationClient as V2AlphaClient,
    };
    let mut server = start().await;
    let channel = server.channel().await;
    let mut v2 = V2Client::new(channel.clone());
    let mut v2alpha = V2AlphaClient::new(channel.clone());
    let status = |resp: alp_proto::envoy_v2::envoy::service::auth::v2::CheckResponse| {
        let s = resp.status.expect("a status");
        (s.code, s.message)
    };

    let before = status(v2.check(check_v2("web", Some("GET"))).await.unwrap().into_inner());
    assert_eq!(before, (Code::Unavailable as i32, UNAVAILABLE_MESSAGE.to_owned()));
    let before = status(v2alpha.check(check_v2("web", Some("GET"))).await.unwrap().into_inner());
    assert_eq!(before.0, Code::Unavailable as i32);

    publish(&mut server.writer);
    let mut v3 = AuthorizationClient::new(channel);
    for (sa, method, want) in [
        ("web", Some("GET"), Code::Ok),
        ("web", Some("POST"), Code::PermissionDenied),
        ("db", Some("GET"), Code::PermissionDenied),
        ("web", None, Code::Ok),
        ("db", None, Code::PermissionDenied),
    ] {
        let v3_answer = status_v3(&mut v3, check(sa, method)).await;
        let v2_answer = status(v2.check(check_v2(sa, method)).await.unwrap().into_inner());
        let v2alpha_answer = status(v2alpha.check(check_v2(sa, method)).await.unwrap().into_inner());
        assert_eq!(v3_answer.0, want as i32, "{sa} {method:?}");
        assert_eq!(v2_answer, v3_answer, "v2: {sa} {method:?}");
        assert_eq!(v2alpha_answer, v3_answer, "v2alpha: {sa} {method:?}");
    }
    // Every check was counted, whatever its API version: 3 versions × 5 + the 2 before the publish.
    let counted: u64 = [Kind::Http, Kind::Network]
        .into_iter()
        .flat_map(|k| [Code::Ok, Code::PermissionDenied, Code::Unavailable].map(|c| server.metrics.checks(k, c)))
        .sum();
    assert_eq!(counted, 17);
    server.stop().await;
}

async fn status_v3(client: &mut AuthorizationClient<Channel>, req: CheckRequest) -> (i32, String) {
    status(client, req).await
}

/// One raw `Authorization/Check` call over h2 with `body` as it is: the grpc-status of the answer
/// (from the trailers, or the headers of a trailers-only answer) and the message, if any.
async fn raw_check(client: &mut h2::client::SendRequest<bytes::Bytes>, body: Vec<u8>) -> (String, Vec<u8>) {
    let request = http::Request::post(format!("http://alp{}", alp_authz_server::CHECK_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.clone().ready().await.unwrap().send_request(request, false).unwrap();
    // Large bodies go out as the server's window opens.
    let mut body = bytes::Bytes::from(body);
    while !body.is_empty() {
        send.reserve_capacity(body.len());
        let granted = std::future::poll_fn(|cx| send.poll_capacity(cx)).await.unwrap().unwrap();
        send.send_data(body.split_to(granted.min(body.len())), false).unwrap();
    }
    send.send_data(bytes::Bytes::new(), true).unwrap();
    let response = response.await.unwrap();
    let header_status = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    let mut body = response.into_body();
    let mut message = Vec::new();
    while let Some(chunk) = body.data().await {
        message.extend_from_slice(&chunk.unwrap());
    }
    let trailer_status =
        body.trailers().await.unwrap().and_then(|t| t.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()));
    (header_status.or(trailer_status).expect("a grpc-status"), message)
}

fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

#[tokio::test]
async fn malformed_checks_get_a_grpc_error_and_the_connection_keeps_serving() {
    use prost::Message;
    let mut server = start().await;
    publish(&mut server.writer);
    let io = tokio::net::UnixStream::connect(server.socket()).await.unwrap();
    let (mut client, conn) = h2::client::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let good = check("web", Some("GET")).encode_to_vec();
    let mut two = framed(0, &good);
    two.extend_from_slice(&framed(0, &good));
    let mut short = framed(0, &good);
    short.truncate(short.len() - 1);
    for (what, body, want) in [
        ("no message", Vec::new(), "13"),
        ("a prefix cut short", vec![0, 0, 0], "13"),
        ("not a CheckRequest", framed(0, &[0x0a, 0x05, 0xff]), "13"),
        // attributes { request { http { method: "\xc3\x28" } } }
        ("invalid UTF-8 in the method", framed(0, &[0x0a, 0x08, 0x22, 0x06, 0x12, 0x04, 0x12, 0x02, 0xc3, 0x28]), "13"),
        ("compressed", framed(1, &good), "12"),
        ("length beyond the body", short, "13"),
        ("two messages", two, "13"),
        ("over 4 MiB", framed(0, &vec![0; (4 << 20) + 1]), "8"),
    ] {
        let (status, message) = raw_check(&mut client, body).await;
        assert_eq!(status, want, "{what}");
        assert!(message.is_empty(), "{what}: no CheckResponse with a gRPC error");
    }
    // The same connection still answers, from the policy.
    for (method, want) in [("GET", Code::Ok), ("PUT", Code::PermissionDenied)] {
        let (status, message) = raw_check(&mut client, framed(0, &check("web", Some(method)).encode_to_vec())).await;
        assert_eq!(status, "0");
        let resp = CheckResponse::decode(&message[5..]).unwrap();
        assert_eq!(resp.status.unwrap().code, want as i32, "{method}");
    }
    server.stop().await;
}

/// grpc-go (Calico's `dikastes client` and `healthz`) sends the socket path as `:authority`,
/// gRPC C-core the path percent-encoded, others nothing or `localhost`: each gets its answer.
#[tokio::test]
async fn every_authority_a_grpc_client_sends_over_a_unix_socket_is_answered() {
    use alp_test_support::raw_grpc::{Authority, RawResponse, call};
    use prost::Message;
    let mut server = start().await;
    publish(&mut server.writer);
    let socket = server.socket();
    let unary = async |authority, path: &str, message: Vec<u8>| -> RawResponse {
        let response = call(&socket, authority, path, &message, |_| false, LONG).await.unwrap();
        assert_eq!(response.status.as_deref(), Some("200"), "{authority:?} {path}");
        assert_eq!((response.grpc_status.as_deref(), response.reset), (Some("0"), None), "{authority:?} {path}");
        response
    };
    for authority in Authority::ALL {
        for (method, want) in [("GET", Code::Ok), ("POST", Code::PermissionDenied)] {
            let response =
                unary(authority, alp_authz_server::CHECK_PATH, check("web", Some(method)).encode_to_vec()).await;
            let answer = CheckResponse::decode(response.messages[0].clone()).unwrap();
            assert_eq!(answer.status.unwrap().code, want as i32, "{authority:?} {method}");
        }
        let response =
            unary(authority, "/dikastes.Healthz/CheckReadiness", HealthCheckRequest {}.encode_to_vec()).await;
        let answer = alp_proto::dikastes::HealthCheckResponse::decode(response.messages[0].clone()).unwrap();
        assert!(answer.healthy, "{authority:?}");
        let request = GrpcHealthRequest { service: String::new() }.encode_to_vec();
        let response = unary(authority, "/grpc.health.v1.Health/Check", request).await;
        let answer = tonic_health::pb::HealthCheckResponse::decode(response.messages[0].clone()).unwrap();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{authority:?}");
    }
    server.stop().await;
}
