//! The scripted server, driven by a bare tonic client over its Unix socket.

use std::{path::Path, time::Duration};

use alp_proto::felix::{SyncRequest, ToDataplane, grpc::policy_sync_client::PolicySyncClient, to_dataplane::Payload};
use alp_test_support::{
    BlockingSyncServer, ScriptedSyncServer, WORKLOAD_ID, mk_endpoint, mk_in_sync, mk_policy_remove, mk_policy_update,
    msg_json,
};
use tonic::{Code, Streaming};

const WAIT: Duration = Duration::from_secs(10);

async fn open(path: &Path) -> Streaming<ToDataplane> {
    let channel = alp_uds::channel(path).await.unwrap();
    PolicySyncClient::new(channel).sync(SyncRequest {}).await.unwrap().into_inner()
}

async fn next(stream: &mut Streaming<ToDataplane>) -> Result<Option<ToDataplane>, Code> {
    tokio::time::timeout(WAIT, stream.message()).await.unwrap().map_err(|s| s.code())
}

#[tokio::test]
async fn new_streams_get_the_initial_script_then_live_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&dir.path().join("s.sock"));
    server.set_initial(vec![mk_policy_update("p1", "[]"), mk_in_sync()]);
    let mut a = open(server.path()).await;
    assert!(server.wait_for_connections(1, WAIT).await);
    assert_eq!(next(&mut a).await, Ok(Some(mk_policy_update("p1", "[]"))));
    assert_eq!(next(&mut a).await, Ok(Some(mk_in_sync())));

    server.set_initial(vec![mk_in_sync()]);
    let mut b = open(server.path()).await;
    assert!(server.wait_for_connections(2, WAIT).await);
    assert_eq!(next(&mut b).await, Ok(Some(mk_in_sync())));

    assert_eq!(server.send(mk_policy_remove("p1")), 2);
    assert_eq!(next(&mut a).await, Ok(Some(mk_policy_remove("p1"))));
    assert_eq!(next(&mut b).await, Ok(Some(mk_policy_remove("p1"))));

    assert_eq!(server.drop_streams(), 2);
    assert_eq!(next(&mut a).await, Ok(None));
    assert_eq!(next(&mut b).await, Ok(None));
    assert_eq!((server.connections(), server.open_streams()), (2, 0));
    assert_eq!(server.connection_times().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn streams_can_fail_or_end_after_the_initial_script() {
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&dir.path().join("s.sock"));
    let mut a = open(server.path()).await;
    assert!(server.wait_for_connections(1, WAIT).await);
    assert_eq!(server.fail_streams(tonic::Status::unavailable("going away")), 1);
    assert_eq!(next(&mut a).await, Err(Code::Unavailable));

    server.set_initial(vec![mk_in_sync()]);
    server.set_end_after_initial(true);
    let mut b = open(server.path()).await;
    assert_eq!(next(&mut b).await, Ok(Some(mk_in_sync())));
    assert_eq!(next(&mut b).await, Ok(None));
    assert_eq!(server.send(mk_in_sync()), 0);
    server.stop().await;
}

#[tokio::test]
async fn start_replaces_a_stale_socket_and_stop_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    std::fs::write(&path, "stale").unwrap();
    let server = ScriptedSyncServer::start(&path);
    let mut a = open(&path).await;
    server.stop().await;
    assert!(!path.exists());
    assert_eq!(next(&mut a).await, Ok(None));
    assert!(!ScriptedSyncServer::wait_for_connections(&ScriptedSyncServer::start(&path), 1, Duration::ZERO).await);
}

#[test]
fn blocking_server_works_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let server = BlockingSyncServer::start(&path);
    server.server().set_initial(vec![mk_in_sync()]);
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = client_rt.block_on(async {
        let mut stream = open(&path).await;
        next(&mut stream).await
    });
    assert_eq!(first, Ok(Some(mk_in_sync())));
    assert!(server.wait_for_connections(1, WAIT));
    assert_eq!(server.server().connections(), 1);
    // The client's connection must be gone (or driven) for a graceful stop to finish at once.
    drop(client_rt);
    let started = std::time::Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(1), "stop took {:?}", started.elapsed());
    assert!(!path.exists());
}

#[test]
fn builders_make_the_messages_they_name() {
    let Some(Payload::ActivePolicyUpdate(u)) =
        mk_policy_update("a\"b", r#"[{"action":"Allow"},{"action":"Deny"}]"#).payload
    else {
        panic!("not a policy update")
    };
    let id = u.id.unwrap();
    assert_eq!((id.name.as_str(), id.kind.as_str()), ("a\"b", "GlobalNetworkPolicy"));
    assert_eq!(u.policy.unwrap().inbound_rules.len(), 2);

    let Some(Payload::WorkloadEndpointUpdate(u)) = mk_endpoint(&[("t1", &["p1", "p2"]), ("default", &[])]).payload
    else {
        panic!("not an endpoint update")
    };
    assert_eq!(u.id.unwrap().workload_id, WORKLOAD_ID);
    let tiers = u.endpoint.unwrap().tiers;
    assert_eq!(tiers.len(), 2);
    assert_eq!(tiers[0].ingress_policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["p1", "p2"]);
    assert_eq!(tiers[0].default_action, "Deny");
    assert!(tiers[1].ingress_policies.is_empty());

    assert_eq!(msg_json(r#"{"inSync":{}}"#), mk_in_sync());
}

#[test]
#[should_panic(expected = "ipsetUpdate.members")]
fn msg_json_names_the_bad_field() {
    msg_json(r#"{"ipsetUpdate":{"members":7}}"#);
}

#[tokio::test]
async fn every_authority_a_grpc_client_sends_over_a_unix_socket_is_served() {
    use alp_test_support::raw_grpc::{Authority, sync_through_in_sync};
    let dir = tempfile::tempdir().unwrap();
    let server = ScriptedSyncServer::start(&dir.path().join("s.sock"));
    server.set_initial(vec![mk_policy_update("p1", "[]"), mk_in_sync()]);
    for authority in Authority::ALL {
        let (response, messages) = sync_through_in_sync(server.path(), authority, WAIT).await.unwrap();
        assert_eq!((response.status.as_deref(), response.reset), (Some("200"), None), "{authority:?}");
        assert_eq!(messages, [mk_policy_update("p1", "[]"), mk_in_sync()], "{authority:?}");
    }
    server.stop().await;
}
