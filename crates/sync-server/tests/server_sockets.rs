//! The policy-sync server's sockets: Felix's binder (creds files) and serve-all mode.

mod server_common;

use std::{os::unix::fs::PermissionsExt as _, time::Duration};

use alp_test_support::mk_in_sync;
use server_common::*;
use tokio::sync::watch;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_binder_waits_for_the_creds_directory_and_follows_its_files() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send([endpoint("ns/a", &[], &[]), endpoint("ns/b", &[], &[]), mk_in_sync()]).await;
    // No creds directory yet: the binder waits for it and does not create it.
    tokio::time::sleep(POLL * 5).await;
    assert!(!agent.prefix().join("creds").exists());

    agent.write_creds("uid-a", "ns", "a");
    agent.write_creds("uid-b", "ns", "b");
    std::fs::write(agent.prefix().join("creds/ignored.txt"), "{}").unwrap();
    let (a, b) = (agent.socket("uid-a"), agent.socket("uid-b"));
    socket_appears(&a).await;
    socket_appears(&b).await;
    assert_eq!(mode(&a), 0o777);
    assert!(!agent.socket("ignored").exists() && !agent.prefix().join("mount/ignored.txt").exists());

    // The connection's workload is the socket's.
    let mut on_a = open(&a).await;
    assert_eq!(through_in_sync(&mut on_a).await, strs(&["endpoint ns/a", "in-sync"]));
    let mut on_b = open(&b).await;
    assert_eq!(through_in_sync(&mut on_b).await, strs(&["endpoint ns/b", "in-sync"]));

    // A removed creds file closes the socket (and removes it, as a Go listener does);
    // the other workload is untouched.
    agent.remove_creds("uid-a");
    socket_disappears(&a).await;
    assert!(channel(&a).await.is_err(), "connected to a closed socket");
    assert!(b.exists());
    assert!(agent.prefix().join("mount/uid-a").is_dir(), "the mount directory belongs to the CSI driver");
    agent.send([namespace("n1", 1)]).await;
    assert_eq!(take(&mut on_b, 1).await, strs(&["ns n1"]));

    // The creds file comes back: a socket again.
    agent.write_creds("uid-a", "ns", "a");
    socket_appears(&a).await;
    let mut again = open(&a).await;
    assert_eq!(through_in_sync(&mut again).await, strs(&["endpoint ns/a", "ns n1", "in-sync"]));

    agent.stop().await.unwrap();
    assert!(!a.exists() && !b.exists(), "shutdown removes every socket");
}

#[tokio::test]
async fn a_stale_file_at_the_socket_path_is_replaced() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send([endpoint("ns/a", &[], &[]), mk_in_sync()]).await;
    let socket = agent.socket("uid-a");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::fs::write(&socket, "left over").unwrap();
    agent.write_creds("uid-a", "ns", "a");
    until("a socket replaces the file", || {
        std::fs::symlink_metadata(&socket).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
    })
    .await;
    let mut stream = open(&socket).await;
    assert_eq!(through_in_sync(&mut stream).await, strs(&["endpoint ns/a", "in-sync"]));
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn an_unparsable_creds_file_is_tried_again_until_it_parses() {
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send([endpoint("ns/a", &[], &[]), mk_in_sync()]).await;
    agent.write_creds_json("uid-a", r#"{"Namespace":"ns","Workload":"#);
    tokio::time::sleep(POLL * 5).await;
    assert!(!agent.socket("uid-a").exists());
    agent.write_creds("uid-a", "ns", "a");
    socket_appears(&agent.socket("uid-a")).await;
    let mut stream = open(&agent.socket("uid-a")).await;
    assert_eq!(through_in_sync(&mut stream).await, strs(&["endpoint ns/a", "in-sync"]));
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn serve_all_makes_a_socket_per_local_workload_and_removes_those_that_go() {
    let (workloads_tx, workloads_rx) = watch::channel(vec![("ns".to_owned(), "a".to_owned())]);
    let agent = Agent::serve_all(workloads_rx);
    agent.send([endpoint("ns/a", &[], &[]), endpoint("ns/b.with.dots", &[], &[]), mk_in_sync()]).await;
    let a = agent.socket("ns.a");
    socket_appears(&a).await;
    assert_eq!(mode(&a), 0o777);
    let mut on_a = open(&a).await;
    assert_eq!(through_in_sync(&mut on_a).await, strs(&["endpoint ns/a", "in-sync"]));

    workloads_tx.send_replace(vec![("ns".into(), "a".into()), ("ns".into(), "b.with.dots".into())]);
    let b = agent.socket("ns.b.with.dots");
    socket_appears(&b).await;
    let mut on_b = open(&b).await;
    assert_eq!(through_in_sync(&mut on_b).await, strs(&["endpoint ns/b.with.dots", "in-sync"]));

    // ns/a goes: its socket and the directory serve-all made are removed.
    workloads_tx.send_replace(vec![("ns".into(), "b.with.dots".into())]);
    socket_disappears(&a).await;
    until("directory removed", || !agent.prefix().join("mount/ns.a").exists()).await;
    assert!(b.exists());
    // Its open stream goes on until the calculator removes the endpoint.
    agent.send([endpoint_remove("ns/a")]).await;
    assert_eq!(take(&mut on_a, 1).await, strs(&["remove endpoint ns/a"]));
    assert_eq!(next(&mut on_a).await, Ok(None));

    // The calculator's list going away leaves the sockets as they are.
    drop(workloads_tx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(b.exists());
    agent.stop().await.unwrap();
    assert!(!b.exists());
}

/// grpc-go (Calico's Dikastes) sends the socket path as `:authority`, gRPC C-core the path
/// percent-encoded, others nothing or `localhost`: each reaches InSync.
#[tokio::test]
async fn every_authority_a_grpc_client_sends_over_a_unix_socket_reaches_in_sync() {
    use alp_test_support::raw_grpc::{Authority, sync_through_in_sync};
    let agent = Agent::creds(alp_sync_server::DEFAULT_QUEUE_LIMIT);
    agent.send([endpoint("ns/a", &[], &[]), mk_in_sync()]).await;
    agent.write_creds("uid-a", "ns", "a");
    let socket = agent.socket("uid-a");
    socket_appears(&socket).await;
    for authority in Authority::ALL {
        let (response, messages) = sync_through_in_sync(&socket, authority, WAIT).await.unwrap();
        assert_eq!((response.status.as_deref(), response.reset), (Some("200"), None), "{authority:?}");
        let seen: Vec<String> = messages.iter().map(describe).collect();
        assert_eq!(seen, strs(&["endpoint ns/a", "in-sync"]), "{authority:?}");
    }
    agent.stop().await.unwrap();
}
