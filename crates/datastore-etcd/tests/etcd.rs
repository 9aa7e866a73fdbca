//! The etcd datastore against a real etcd: initial load, live changes of every kind, etcd killed
//! and restarted, a compaction past the watcher, corrupt values, the writers, TLS.

mod common;

use std::{collections::BTreeMap, time::Duration};

use alp_datastore::Event;
use alp_datastore_etcd::{Config, Connection, Error, PREFIX, encode, load};
use alp_datastore_tokio::spawn_watch;
use alp_resources::{Kind, Resource, ResourceKey};
use common::*;
use etcd_client::{CompactionOptions, GetOptions};
use tokio::{
    sync::{mpsc, watch as state},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// A running watch ([`spawn_watch`] of a [`Config`]) and its outputs.
struct Watching {
    events: mpsc::Receiver<Event>,
    connected: state::Receiver<bool>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Watching {
    fn spawn(config: Config) -> Watching {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        let (tx, events) = mpsc::channel(256);
        let shutdown = CancellationToken::new();
        let (task, connected) = spawn_watch(config, tx, shutdown.clone());
        Watching { events, connected, shutdown, task }
    }

    /// Cancels the watch and checks that it ends and reports itself disconnected.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await.expect("the watch ends on shutdown").unwrap();
        assert!(!*self.connected.borrow());
    }
}

const QUIET: Duration = Duration::from_millis(400);

fn key(kind: Kind, ns: Option<&str>, name: &str) -> ResourceKey {
    ResourceKey { kind, namespace: ns.map(str::to_owned), name: name.to_owned() }
}

async fn put_raw(client: &mut etcd_client::Client, path: &str, value: &str) -> i64 {
    client.put(format!("{PREFIX}{path}"), value, None).await.unwrap().header().unwrap().revision()
}

async fn count_under(client: &mut etcd_client::Client, prefix: &str) -> i64 {
    client.get(prefix, Some(GetOptions::new().with_prefix().with_count_only())).await.unwrap().count()
}

/// The event for `resource` written at `revision`.
fn applied(resource: &Resource, revision: i64) -> Event {
    let mut stored = resource.clone();
    stored.metadata_mut().resource_version = Some(revision.to_string());
    Event::Apply(stored.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_lists_every_kind_then_init_done() {
    let etcd = Etcd::start().await;
    let conn = Connection::connect(&etcd.config()).await.unwrap();
    let resources = every_kind(1);
    let revision = conn.apply(&resources).await.unwrap();
    // Keys of kinds alp does not read, beside them, are ignored.
    let mut raw = raw_client(&etcd).await;
    put_raw(&mut raw, "felixconfigurations/default", r#"{"kind":"FelixConfiguration"}"#).await;
    put_raw(&mut raw, "nodes/node1", "not even JSON").await;
    raw.put("/calico/ipam/v2/handle/x", "1", None).await.unwrap();

    let mut w = Watching::spawn(etcd.config());
    let events = take(&mut w.events, resources.len() + 1).await;
    let expected: Vec<Event> =
        as_stored(&resources, revision).into_iter().map(|r| Event::Apply(r.into())).chain([Event::InitDone]).collect();
    assert_eq!(events, expected);
    wait_connected(&mut w.connected, true).await;
    assert_quiet(&mut w.events, QUIET).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_changes_of_every_kind_reach_the_stream() {
    let etcd = Etcd::start().await;
    let conn = Connection::connect(&etcd.config()).await.unwrap();
    let mut w = Watching::spawn(etcd.config());
    assert_eq!(next(&mut w.events).await, Event::InitDone, "an empty datastore is in sync at once");
    wait_connected(&mut w.connected, true).await;

    for (first, second) in every_kind(1).into_iter().zip(every_kind(2)) {
        let created = conn.apply(std::slice::from_ref(&first)).await.unwrap();
        assert_eq!(next(&mut w.events).await, applied(&first, created));
        let replaced = conn.apply(std::slice::from_ref(&second)).await.unwrap();
        assert_eq!(next(&mut w.events).await, applied(&second, replaced));
        assert!(conn.delete(&[second.key()]).await.unwrap().is_empty());
        assert_eq!(next(&mut w.events).await, Event::Delete(second.key()));
    }
    // Several resources in one transaction arrive together.
    conn.apply(&[tier("a", 1), tier("b", 1)]).await.unwrap();
    assert_eq!(summary(&take(&mut w.events, 2).await), ["apply Tier a v=1", "apply Tier b v=1"]);
    assert_quiet(&mut w.events, QUIET).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_killed_and_restarted_resumes_without_loss_or_duplicates() {
    let mut etcd = Etcd::start().await;
    let proxy = Proxy::start(etcd.addr()).await;
    let direct = Connection::connect(&etcd.config()).await.unwrap();
    direct.apply(&[tier("a", 1), tier("b", 1), tier("c", 1)]).await.unwrap();

    let mut w = Watching::spawn(test_config(&proxy.url()));
    assert_eq!(
        summary(&take(&mut w.events, 4).await),
        ["apply Tier a v=1", "apply Tier b v=1", "apply Tier c v=1", "init-done"]
    );
    wait_connected(&mut w.connected, true).await;

    etcd.stop();
    wait_connected(&mut w.connected, false).await;
    assert_quiet(&mut w.events, QUIET).await;

    // etcd comes back, but not yet for the watcher: changes happen while it is away.
    proxy.cut();
    etcd.restart().await;
    let direct = Connection::connect(&etcd.config()).await.unwrap();
    direct.apply(&[tier("d", 1)]).await.unwrap();
    direct.delete(&[key(Kind::Tier, None, "c")]).await.unwrap();
    direct.apply(&[tier("b", 2)]).await.unwrap();
    direct.apply(&[tier("b", 3)]).await.unwrap();
    assert_quiet(&mut w.events, QUIET).await;
    assert!(!*w.connected.borrow());

    proxy.restore();
    // Resumed from the last revision seen: every change once, in order (not a re-list's diff).
    assert_eq!(
        summary(&take(&mut w.events, 4).await),
        ["apply Tier d v=1", "delete Tier c", "apply Tier b v=2", "apply Tier b v=3"]
    );
    wait_connected(&mut w.connected, true).await;
    assert_quiet(&mut w.events, QUIET).await;
    direct.apply(&[tier("e", 1)]).await.unwrap();
    assert_eq!(summary(&[next(&mut w.events).await]), ["apply Tier e v=1"]);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_past_the_watcher_relists_and_sends_only_the_difference() {
    let etcd = Etcd::start().await;
    let proxy = Proxy::start(etcd.addr()).await;
    let direct = Connection::connect(&etcd.config()).await.unwrap();
    direct.apply(&[tier("a", 1), tier("b", 1), tier("c", 1)]).await.unwrap();

    let mut w = Watching::spawn(test_config(&proxy.url()));
    let mut view: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
    let fold = |view: &mut BTreeMap<ResourceKey, Resource>, events: &[Event]| {
        for e in events {
            match e {
                Event::Apply(r) => {
                    view.insert(r.key(), (**r).clone());
                }
                Event::Delete(k) => {
                    view.remove(k);
                }
                Event::InitDone => {}
            }
        }
    };
    let initial = take(&mut w.events, 4).await;
    assert_eq!(summary(&initial), ["apply Tier a v=1", "apply Tier b v=1", "apply Tier c v=1", "init-done"]);
    fold(&mut view, &initial);
    wait_connected(&mut w.connected, true).await;

    proxy.cut();
    wait_connected(&mut w.connected, false).await;
    direct.apply(&[tier("d", 1)]).await.unwrap();
    direct.delete(&[key(Kind::Tier, None, "c")]).await.unwrap();
    direct.apply(&[tier("b", 2)]).await.unwrap();
    direct.apply(&[tier("x", 1)]).await.unwrap();
    direct.delete(&[key(Kind::Tier, None, "x")]).await.unwrap();
    let latest = direct.apply(&[tier("b", 3)]).await.unwrap();
    let mut raw = raw_client(&etcd).await;
    raw.compact(latest, Some(CompactionOptions::new().with_physical())).await.unwrap();

    proxy.restore();
    // The watch cannot resume (its revision is gone): a new listing, and only what changed.
    let relisted = take(&mut w.events, 3).await;
    assert_eq!(summary(&relisted), ["delete Tier c", "apply Tier b v=3", "apply Tier d v=1"]);
    fold(&mut view, &relisted);
    wait_connected(&mut w.connected, true).await;
    assert_quiet(&mut w.events, QUIET).await;

    // The watch goes on from the listing's revision.
    direct.apply(&[tier("f", 1)]).await.unwrap();
    let live = [next(&mut w.events).await];
    assert_eq!(summary(&live), ["apply Tier f v=1"]);
    fold(&mut view, &live);
    let (stored, errors) = load(&etcd.config()).await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(view.into_values().collect::<Vec<_>>(), stored, "the consumer's view is the datastore");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_notifications_let_a_quiet_watch_resume_after_a_compaction() {
    let etcd = Etcd::start_with(&["--experimental-watch-progress-notify-interval", "100ms"]).await;
    let proxy = Proxy::start(etcd.addr()).await;
    let direct = Connection::connect(&etcd.config()).await.unwrap();
    direct.apply(&[tier("a", 1)]).await.unwrap();
    let mut w = Watching::spawn(test_config(&proxy.url()));
    assert_eq!(summary(&take(&mut w.events, 2).await), ["apply Tier a v=1", "init-done"]);
    wait_connected(&mut w.connected, true).await;

    // Writes outside the prefix move the revision on; a progress notification tells the watcher.
    let mut raw = raw_client(&etcd).await;
    let mut latest = 0;
    for i in 0..5 {
        latest = raw.put(format!("/elsewhere/{i}"), "x", None).await.unwrap().header().unwrap().revision();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    wait_connected(&mut w.connected, false).await;
    raw.compact(latest, Some(CompactionOptions::new().with_physical())).await.unwrap();
    direct.apply(&[tier("b", 1)]).await.unwrap();
    direct.apply(&[tier("b", 2)]).await.unwrap();

    proxy.restore();
    // Resumed past the compaction (a re-list would have sent only b v=2).
    assert_eq!(summary(&take(&mut w.events, 2).await), ["apply Tier b v=1", "apply Tier b v=2"]);
    assert_quiet(&mut w.events, QUIET).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_are_skipped_and_the_watch_goes_on() {
    let etcd = Etcd::start().await;
    let conn = Connection::connect(&etcd.config()).await.unwrap();
    conn.apply(&[tier("a", 1), tier("b", 1)]).await.unwrap();
    let mut raw = raw_client(&etcd).await;
    let corrupt = [
        ("tiers/bad", "{not json".to_owned()),
        ("tiers/wrong-kind", r#"{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"wrong-kind"}}"#.to_owned()),
        ("tiers/other-name", r#"{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"x"}}"#.to_owned()),
        (
            "networksets/shop/n",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkSet","metadata":{"name":"n","namespace":"other"}}"#
                .to_owned(),
        ),
        (
            "globalnetworkpolicies/p",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{"selector":"app =="}}"#
                .to_owned(),
        ),
        ("networkpolicies/no-name", "{}".to_owned()),
    ];
    for (path, value) in &corrupt {
        put_raw(&mut raw, path, value).await;
    }

    let mut w = Watching::spawn(etcd.config());
    assert_eq!(summary(&take(&mut w.events, 3).await), ["apply Tier a v=1", "apply Tier b v=1", "init-done"]);
    wait_connected(&mut w.connected, true).await;

    // Another corrupt value: skipped; the next good one still arrives.
    put_raw(&mut raw, "tiers/bad2", "[1, 2").await;
    conn.apply(&[tier("c", 1)]).await.unwrap();
    assert_eq!(summary(&[next(&mut w.events).await]), ["apply Tier c v=1"]);

    // A good key turning bad keeps its last good resource; deleting the key deletes it.
    put_raw(&mut raw, "tiers/a", r#"{"apiVersion":"projectcalico.org/v3","kind":"Tier","spec":{"order":"high"}}"#)
        .await;
    assert_quiet(&mut w.events, QUIET).await;
    conn.apply(&[tier("a", 2)]).await.unwrap();
    assert_eq!(summary(&[next(&mut w.events).await]), ["apply Tier a v=2"]);
    raw.delete(format!("{PREFIX}tiers/bad"), None).await.unwrap();
    raw.delete(format!("{PREFIX}tiers/a"), None).await.unwrap();
    assert_eq!(summary(&[next(&mut w.events).await]), ["delete Tier a"], "deleting a never-good key says nothing");

    // A corrupt value that is fixed arrives.
    conn.apply(&[tier("other-name", 1)]).await.unwrap();
    assert_eq!(summary(&[next(&mut w.events).await]), ["apply Tier other-name v=1"]);
    assert_quiet(&mut w.events, QUIET).await;

    // The one-shot load reports each skipped value with its key.
    let (resources, errors) = load(&etcd.config()).await.unwrap();
    assert_eq!(resources.iter().map(|r| r.name()).collect::<Vec<_>>(), ["b", "c", "other-name"]);
    assert_eq!(errors.len(), 5, "{errors:#?}");
    for path in
        ["tiers/bad2", "tiers/wrong-kind", "networksets/shop/n", "globalnetworkpolicies/p", "networkpolicies/no-name"]
    {
        assert!(errors.iter().any(|e| e.starts_with(&format!("{PREFIX}{path}: "))), "{path}: {errors:#?}");
    }
    assert!(errors.iter().any(|e| e.contains("spec.selector")), "{errors:#?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_get_gives_the_resources_back() {
    let etcd = Etcd::start().await;
    let conn = Connection::connect(&etcd.config()).await.unwrap();
    let resources = every_kind(1);
    let revision = conn.apply(&resources).await.unwrap();
    let stored = as_stored(&resources, revision);
    for kind in Kind::ALL.into_iter().filter(|k| alp_datastore_etcd::plural(*k).is_some()) {
        let (got, errors) = conn.get(kind, None, None).await.unwrap();
        assert!(errors.is_empty());
        let want: Vec<Resource> = stored.iter().filter(|r| r.kind() == kind).cloned().collect();
        assert_eq!(got, want, "{kind}");
        assert_eq!(got.len(), 1, "{kind}");
    }
    let (got, _) = conn.get(Kind::NetworkPolicy, Some("shop"), Some("np")).await.unwrap();
    assert_eq!(got.iter().map(Resource::key).collect::<Vec<_>>(), [key(Kind::NetworkPolicy, Some("shop"), "np")]);
    assert!(conn.get(Kind::NetworkPolicy, Some("other"), None).await.unwrap().0.is_empty());
    assert_eq!(conn.get(Kind::NetworkPolicy, None, Some("np")).await.unwrap().0.len(), 1);
    assert!(conn.get(Kind::Tier, None, Some("nope")).await.unwrap().0.is_empty());
    assert!(matches!(conn.get(Kind::Pod, None, None).await, Err(Error::NotStored { kind: Kind::Pod })));

    // What is stored is what calicoctl stores.
    let mut raw = raw_client(&etcd).await;
    let value = |resp: etcd_client::GetResponse| -> serde_json::Value {
        serde_json::from_slice(resp.kvs().first().expect("the key exists").value()).unwrap()
    };
    let np = value(raw.get(format!("{PREFIX}networkpolicies/shop/np"), None).await.unwrap());
    assert_eq!(np["metadata"]["annotations"]["projectcalico.org/metadata"], r#"{"name":"np"}"#);
    assert_eq!(np["spec"]["tier"], "sec");
    let wep = value(raw.get(format!("{PREFIX}workloadendpoints/shop/node1-k8s-web-eth0"), None).await.unwrap());
    assert!(wep["metadata"].get("annotations").is_none() && wep["metadata"].get("resourceVersion").is_none());
    let (k, v) = encode(&resources[0]).unwrap();
    let gnp = raw.get(k, None).await.unwrap();
    assert_eq!(gnp.kvs().first().unwrap().value_str().unwrap(), v);

    // Replace and delete, with a missing key reported.
    let mut changed = tier("sec", 5);
    changed.metadata_mut().labels.clear();
    conn.apply(std::slice::from_ref(&changed)).await.unwrap();
    let (mut got, _) = conn.get(Kind::Tier, None, Some("sec")).await.unwrap();
    got.iter_mut().for_each(|r| r.metadata_mut().resource_version = None);
    assert_eq!(got, [changed]);
    let gone = key(Kind::NetworkPolicy, Some("shop"), "np");
    let missing = key(Kind::Tier, None, "never-there");
    assert_eq!(conn.delete(&[gone.clone(), missing.clone()]).await.unwrap(), [missing]);
    assert!(conn.get(Kind::NetworkPolicy, None, None).await.unwrap().0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_apply_writes_nothing() {
    let etcd = Etcd::start().await;
    let conn = Connection::connect(&etcd.config()).await.unwrap();
    let mut raw = raw_client(&etcd).await;

    // A Kubernetes kind has no etcd key: refused before anything is sent.
    let pod = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {nodeName: node1}\n");
    let err = conn.apply(&[tier("a", 1), pod, tier("b", 1)]).await.unwrap_err();
    assert!(matches!(err, Error::NotStored { kind: Kind::Pod }), "{err}");
    assert!(err.to_string().contains("kind Pod has no etcd key"), "{err}");
    assert_eq!(count_under(&mut raw, PREFIX).await, 0);

    // etcd refuses the transaction (over its request size limit): none of it is written.
    let mut huge = parse(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: huge}\nspec: {nets: [192.0.2.0/24]}\n",
    );
    huge.metadata_mut().annotations.insert("padding".to_owned(), "x".repeat(2 << 20));
    let err = conn.apply(&[tier("a", 1), huge, tier("b", 1)]).await.unwrap_err();
    assert!(matches!(err, Error::Etcd(_)), "{err}");
    assert_eq!(count_under(&mut raw, PREFIX).await, 0);

    conn.apply(&[tier("a", 1), tier("b", 1)]).await.unwrap();
    assert_eq!(count_under(&mut raw, PREFIX).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_waits_for_etcd_to_come_up() {
    let mut etcd = Etcd::new(None);
    let mut w = Watching::spawn(etcd.config());
    assert_quiet(&mut w.events, QUIET).await;
    assert!(!*w.connected.borrow());
    etcd.restart().await;
    assert_eq!(next(&mut w.events).await, Event::InitDone);
    wait_connected(&mut w.connected, true).await;
    w.stop().await;
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// CA, server certificate (127.0.0.1) and client certificate, written into `dir`.
fn pki(dir: &std::path::Path) -> ServerTls {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "alp etcd test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    write(&dir.join("ca.crt"), &ca_params.self_signed(&ca_key).unwrap().pem());
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    for name in ["server", "client"] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.subject_alt_names =
            vec![SanType::IpAddress([127, 0, 0, 1].into()), SanType::DnsName("localhost".try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        write(&dir.join(format!("{name}.crt")), &params.signed_by(&key, &issuer).unwrap().pem());
        write(&dir.join(format!("{name}.key")), &key.serialize_pem());
    }
    ServerTls { ca: dir.join("ca.crt"), cert: dir.join("server.crt"), key: dir.join("server.key") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let tls = pki(certs.path());
    let mut etcd = Etcd::new(Some(tls.clone()));
    etcd.restart().await;

    let mut config = etcd.config();
    config.ca_file = Some(tls.ca.clone());
    config.cert_file = Some(certs.path().join("client.crt"));
    config.key_file = Some(certs.path().join("client.key"));
    let conn = Connection::connect(&config).await.unwrap();
    conn.apply(&[tier("a", 1)]).await.unwrap();
    let (resources, errors) = load(&config).await.unwrap();
    assert_eq!((resources.len(), errors.len()), (1, 0));
    let mut w = Watching::spawn(config.clone());
    assert_eq!(summary(&take(&mut w.events, 2).await), ["apply Tier a v=1", "init-done"]);
    w.stop().await;

    // The server wants a client certificate.
    let mut anonymous = config.clone();
    anonymous.cert_file = None;
    anonymous.key_file = None;
    assert!(load(&anonymous).await.is_err());
    // A certificate without its key is a configuration error.
    let mut half = config.clone();
    half.key_file = None;
    assert!(matches!(Connection::connect(&half).await, Err(Error::TlsPair)));
    let mut unreadable = config;
    unreadable.ca_file = Some(certs.path().join("missing.crt"));
    let err = Connection::connect(&unreadable).await.unwrap_err();
    assert!(err.to_string().contains("missing.crt"), "{err}");
}
