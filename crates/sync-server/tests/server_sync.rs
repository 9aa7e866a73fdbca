//! The policy-sync server over real Unix sockets: what a stream carries and when it ends.

mod server_common;

use std::time::Duration;

use alp_engine::LiveWriter;
use alp_felix::MAX_MEMBERS_PER_MESSAGE;
use alp_proto::felix::{DataplaneStats, to_dataplane::Payload};
use alp_sync::{ClientConfig, run_client};
use alp_sync_server::ServeError;
use alp_test_support::mk_in_sync;
use server_common::*;
use tokio_util::sync::CancellationToken;
use tonic::Code;

const POD: &str = "ns/pod";

/// Everything the pod's endpoint references, plus things it does not, then InSync.
fn node_state() -> Vec<alp_proto::felix::ToDataplane> {
    vec![
        ip_set("s:a", members(2)),
        ip_set("s:unused", members(3)),
        policy("p1", &["s:a"]),
        policy("p2", &[]),
        policy("unused", &["s:unused"]),
        profile("kns.ns"),
        profile("ksa.ns.default"),
        endpoint(POD, &["p1", "p2"], &["kns.ns", "ksa.ns.default"]),
        endpoint("ns/probe", &[], &[]),
        service_account("ns", "default"),
        namespace("ns", 10),
        mk_in_sync(),
    ]
}

/// The join sequence of `ns/pod` for [`node_state`] (the endpoint's sync, then SAs and namespaces,
/// then InSync).
const POD_JOIN: &[&str] = &[
    "set s:a (2)",
    "policy p1",
    "policy p2",
    "profile kns.ns",
    "profile ksa.ns.default",
    "endpoint ns/pod",
    "sa ns/default",
    "ns ns",
    "in-sync",
];

/// Connects a probe workload and reads through its InSync: every update sent so far has been
/// processed once it returns.
async fn processed(agent: &Agent) -> tonic::Streaming<alp_proto::felix::ToDataplane> {
    let socket = agent.socket("uid-probe");
    if !socket.exists() {
        agent.write_creds("uid-probe", "ns", "probe");
        socket_appears(&socket).await;
    }
    let mut probe = open(&socket).await;
    through_in_sync(&mut probe).await;
    probe
}

#[tokio::test]
async fn creds_file_makes_a_socket_whose_stream_carries_the_join_sequence_then_updates() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send(node_state()).await;
    let _probe = processed(&agent).await;

    // Keys in another case, as Go's decoder accepts.
    agent.write_creds_json("uid-1", r#"{"uid":"uid-1","workload":"pod","NAMESPACE":"ns","serviceAccount":"default"}"#);
    let socket = agent.socket("uid-1");
    socket_appears(&socket).await;
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o777);

    let mut stream = open(&socket).await;
    assert_eq!(take(&mut stream, POD_JOIN.len()).await, strs(POD_JOIN));

    // Live: a policy change with a new set, then an unrelated set change, then a SA.
    agent
        .send([
            ip_set("s:b", members(1)),
            policy("p2", &["s:b"]),
            ip_set("s:unused", members(4)),
            service_account("ns", "other"),
        ])
        .await;
    assert_eq!(take(&mut stream, 3).await, strs(&["set s:b (1)", "policy p2", "sa ns/other"]));

    // Report: no flow collector.
    let report = client(&socket).await.report(DataplaneStats {}).await.unwrap().into_inner();
    assert!(!report.successful);

    assert!(agent.stop().await.is_ok());
    assert_eq!(next(&mut stream).await, Ok(None), "shutdown ends the stream");
}

#[tokio::test]
async fn a_second_client_for_the_same_workload_ends_the_first() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send(node_state()).await;
    let _probe = processed(&agent).await;
    agent.write_creds("uid-1", "ns", "pod");
    let socket = agent.socket("uid-1");
    socket_appears(&socket).await;

    let mut first = open(&socket).await;
    assert_eq!(through_in_sync(&mut first).await, strs(POD_JOIN));
    let mut second = open(&socket).await;
    assert_eq!(through_in_sync(&mut second).await, strs(POD_JOIN), "the newer stream gets a full sync");
    assert_eq!(next(&mut first).await, Ok(None), "the older stream ends cleanly");

    agent.send([policy("p1", &[])]).await;
    assert_eq!(take(&mut second, 2).await, strs(&["policy p1", "remove set s:a"]));
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn endpoint_removal_sends_the_remove_then_ends_the_stream_cleanly() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send(node_state()).await;
    let _probe = processed(&agent).await;
    agent.write_creds("uid-1", "ns", "pod");
    socket_appears(&agent.socket("uid-1")).await;
    let mut stream = open(&agent.socket("uid-1")).await;
    through_in_sync(&mut stream).await;

    agent.send([endpoint_remove(POD)]).await;
    assert_eq!(take(&mut stream, 1).await, strs(&["remove endpoint ns/pod"]));
    assert_eq!(next(&mut stream).await, Ok(None));

    // The workload reconnects: no endpoint any more, the rest as before.
    let mut again = open(&agent.socket("uid-1")).await;
    assert_eq!(through_in_sync(&mut again).await, strs(&["sa ns/default", "ns ns", "in-sync"]));
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn a_stalled_client_blocks_nobody_and_is_disconnected() {
    const LIMIT: usize = 50;
    const ROUND: usize = 20;
    const ROUNDS: usize = 20;
    const UPDATES: usize = ROUND * ROUNDS;
    const LABEL_BYTES: usize = 64 << 10;
    let agent = Agent::creds(LIMIT);
    agent.send(node_state()).await;
    agent.send([endpoint("ns/stalled", &[], &[])]).await;
    let _probe = processed(&agent).await;
    agent.write_creds("uid-pod", "ns", "pod");
    agent.write_creds("uid-stalled", "ns", "stalled");
    socket_appears(&agent.socket("uid-pod")).await;
    socket_appears(&agent.socket("uid-stalled")).await;

    let mut stalled = open(&agent.socket("uid-stalled")).await;
    through_in_sync(&mut stalled).await;
    let mut healthy = open(&agent.socket("uid-pod")).await;
    through_in_sync(&mut healthy).await;

    // 25 MiB for every stream, far more than the stalled client's HTTP/2 windows and queue
    // hold, in rounds the healthy client reads before the next (a reader that keeps up never
    // lags by more than a round). Were the processor blocked by the stalled stream, the
    // healthy one would stop receiving.
    for round in 0..ROUNDS {
        let names: Vec<String> = (0..ROUND).map(|i| format!("n{}", round * ROUND + i)).collect();
        agent.send(names.iter().map(|n| namespace(n, LABEL_BYTES))).await;
        for name in &names {
            match next(&mut healthy).await {
                Ok(Some(m)) => assert_eq!(describe(&m), format!("ns {name}")),
                other => panic!("healthy client, {name}: {other:?}"),
            }
        }
    }
    // The stalled client finally reads: what was buffered, then the disconnection.
    let mut buffered = 0;
    let end = loop {
        match next(&mut stalled).await {
            Ok(Some(_)) => buffered += 1,
            other => break other,
        }
    };
    assert_eq!(end, Err(Code::ResourceExhausted), "after {buffered} buffered messages");
    assert!(buffered < UPDATES, "the stalled client was sent everything: {buffered}");

    // It reconnects and resyncs, namespaces included.
    let mut again = open(&agent.socket("uid-stalled")).await;
    let resync = through_in_sync(&mut again).await;
    assert_eq!(resync.len(), 2 + 1 + UPDATES + 1, "{:?}", &resync[..4]);
    assert_eq!(resync.first().map(String::as_str), Some("endpoint ns/stalled"));
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn a_join_sequence_longer_than_the_queue_limit_is_not_held_against_the_client() {
    const LIMIT: usize = 5;
    const POLICIES: usize = 40;
    // 4 MB of policies: more than the client's HTTP/2 window takes before it reads.
    let big = |name: &str| {
        let rule = alp_proto::felix::Rule {
            action: "Allow".into(),
            original_src_selector: "x".repeat(100_000),
            ..Default::default()
        };
        let update = alp_proto::felix::ActivePolicyUpdate {
            id: Some(alp_proto::felix::PolicyId {
                name: name.into(),
                namespace: String::new(),
                kind: "GlobalNetworkPolicy".into(),
            }),
            policy: Some(alp_proto::felix::Policy { inbound_rules: vec![rule], ..Default::default() }),
        };
        alp_proto::felix::ToDataplane::from(Payload::ActivePolicyUpdate(update))
    };
    let names: Vec<String> = (0..POLICIES).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let agent = Agent::creds(LIMIT);
    agent.send(names.iter().map(|n| big(n))).await;
    agent.send([endpoint(POD, &refs, &[]), endpoint("ns/probe", &[], &[]), mk_in_sync()]).await;
    let mut probe = processed(&agent).await;
    agent.write_creds("uid-1", "ns", "pod");
    socket_appears(&agent.socket("uid-1")).await;

    // The client opens its stream and reads nothing while a few updates come.
    let mut stream = open(&agent.socket("uid-1")).await;
    agent.send((0..LIMIT - 1).map(|i| namespace(&format!("n{i}"), 10))).await;
    assert_eq!(take(&mut probe, LIMIT - 1).await.len(), LIMIT - 1, "updates processed");

    let mut expected: Vec<String> = names.iter().map(|n| format!("policy {n}")).collect();
    expected.extend(strs(&["endpoint ns/pod", "in-sync"]));
    expected.extend((0..LIMIT - 1).map(|i| format!("ns n{i}")));
    assert_eq!(take(&mut stream, expected.len()).await, expected);
    agent.stop().await.unwrap();
    assert_eq!(next(&mut stream).await, Ok(None));
}

#[tokio::test]
async fn a_large_ip_set_arrives_split_and_reassembles_in_the_real_clients_store() {
    const MEMBERS: usize = 2 * MAX_MEMBERS_PER_MESSAGE + 1_000;
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent
        .send([
            ip_set("s:big", members(MEMBERS)),
            policy("p1", &["s:big"]),
            endpoint(POD, &["p1"], &[]),
            endpoint("ns/probe", &[], &[]),
            mk_in_sync(),
        ])
        .await;
    let _probe = processed(&agent).await;
    agent.write_creds("uid-1", "ns", "pod");
    let socket = agent.socket("uid-1");
    socket_appears(&socket).await;

    let mut raw = open(&socket).await;
    assert_eq!(
        through_in_sync(&mut raw).await,
        strs(&[
            "set s:big (82200)",
            "delta s:big +82200 -0",
            "delta s:big +1000 -0",
            "policy p1",
            "endpoint ns/pod",
            "in-sync"
        ])
    );
    drop(raw);

    let writer = LiveWriter::new();
    let live = writer.reader();
    let shutdown = CancellationToken::new();
    let mut cfg = ClientConfig::new(&socket);
    cfg.initial_backoff = Duration::from_millis(5);
    let client = tokio::spawn(run_client(cfg, writer, shutdown.clone()));
    until("client in sync", || live.is_in_sync()).await;
    let len = live.load().as_ref().and_then(|s| s.ip_set("s:big").map(|set| set.len()));
    assert_eq!(len, Some(MEMBERS));

    // A delta removing more than one message's worth, split as well.
    let d = alp_test_support::mk_ip_set_delta(
        "s:big",
        vec!["192.168.0.1/32".into()],
        members(MAX_MEMBERS_PER_MESSAGE + 10),
    );
    agent.send([d]).await;
    let expected = MEMBERS - MAX_MEMBERS_PER_MESSAGE - 10 + 1;
    until("delta applied", || {
        live.load().as_ref().and_then(|s| s.ip_set("s:big").map(|set| set.len())) == Some(expected)
    })
    .await;
    assert!(live.load().as_ref().and_then(|s| s.ip_set("s:big")).is_some_and(|s| s.contains_str("192.168.0.1")
        && !s.contains_str("10.0.0.1")
        && s.contains_str("10.2.134.23")));

    shutdown.cancel();
    client.await.unwrap();
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn the_server_stops_when_the_calculator_goes_away() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send(node_state()).await;
    let mut probe = processed(&agent).await;
    let Agent { dir, updates_tx, task, .. } = agent;
    drop(updates_tx);
    let result = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(matches!(result, Err(ServeError::UpdatesClosed)), "{result:?}");
    assert_eq!(next(&mut probe).await, Ok(None));
    socket_disappears(&dir.path().join("mount/uid-probe/socket")).await;
}
