//! End to end through a REAL Envoy with REAL mTLS: curl → Envoy (deploy/envoy/sidecar-inbound.yaml)
//! → ext_authz over a Unix socket → `alp server` ← policy from a scripted Felix policy-sync server.
//! Every case asserts what Envoy answers the client: 200, 403, 400, or no HTTP response at all
//! (TLS handshake refused, or the connection closed by the network ext_authz filter).
//!
//! Envoy comes from `$ALP_ENVOY`, `<repo>/.venv/bin/envoy` or `PATH`; without it these tests fail.
//!
//! Listeners (see `e2e/harness.rs`):
//! * `Inbound`: the deploy file's listener, unchanged but for a direct response instead of the app:
//!   network ext_authz (per connection) + HTTP ext_authz (per request), Envoy normalises paths.
//! * `Tcp`: the network ext_authz filter only, so only the connection is authorized.
//! * `Raw`: the HTTP ext_authz filter only, Envoy's path normalisation off, so what alp sees is
//!   what the client sent.

#[path = "e2e/harness.rs"]
mod harness;

use std::time::Duration;

use alp_test_support::msg_json;
use harness::{Env, Listener::*, Pki, Placeholders, Req, Snapshot, WAIT, WAIT_RECONNECT};

const DENIED: Option<u16> = Some(403);
const OK: Option<u16> = Some(200);
const BAD_REQUEST: Option<u16> = Some(400);
/// No HTTP response: the connection was refused or closed.
const CLOSED: Option<u16> = None;

const SERVICE_ACCOUNTS: [&str; 2] = [
    r#"{"serviceAccountUpdate":{"id":{"namespace":"default","name":"web"},"labels":{"role":"frontend"}}}"#,
    r#"{"serviceAccountUpdate":{"id":{"namespace":"default","name":"db"},"labels":{"role":"backend"}}}"#,
];
const NAMESPACES: [&str; 3] = [
    r#"{"namespaceUpdate":{"id":{"name":"default"},"labels":{"env":"prod"}}}"#,
    r#"{"namespaceUpdate":{"id":{"name":"ops"},"labels":{"env":"ops"}}}"#,
    r#"{"namespaceUpdate":{"id":{"name":"partner"},"labels":{"env":"partner"}}}"#,
];

fn with_identities(mut s: Snapshot) -> Snapshot {
    for l in SERVICE_ACCOUNTS.iter().chain(&NAMESPACES) {
        s = s.line(l);
    }
    s
}

/// The user-facing bootstrap is valid Envoy configuration (placeholders filled, nothing else
/// changed), and so is the variant the other tests run. The filter configurations of the Istio
/// EnvoyFilter, placed in a static bootstrap, are valid too.
#[test]
fn deploy_files_validate_with_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let _pki = Pki::new(dir.path());
    let ports = Placeholders::new(dir.path());

    let deploy = dir.path().join("sidecar-inbound.yaml");
    std::fs::write(&deploy, harness::deploy_config(&ports)).unwrap();
    if let Err(out) = harness::envoy_validate(&deploy) {
        panic!("deploy/envoy/sidecar-inbound.yaml does not validate:\n{out}");
    }
    let variant = dir.path().join("e2e.yaml");
    std::fs::write(&variant, harness::e2e_config(&ports)).unwrap();
    if let Err(out) = harness::envoy_validate(&variant) {
        panic!("the e2e variant does not validate:\n{out}");
    }

    let istio = std::fs::read_to_string(harness::repo_root().join("deploy/envoy/istio-envoyfilter.yaml")).unwrap();
    for needle in [
        "kind: ServiceEntry",
        "kind: DestinationRule",
        "kind: EnvoyFilter",
        "address: unix:///var/run/dikastes/dikastes.sock",
        "mode: DISABLE",
        "context: SIDECAR_INBOUND",
        "name: envoy.filters.network.tcp_proxy",
        "name: envoy.filters.http.router",
    ] {
        assert!(istio.contains(needle), "istio-envoyfilter.yaml lacks {needle:?}");
    }
    let istio_bootstrap = dir.path().join("istio-filters.yaml");
    std::fs::write(&istio_bootstrap, istio_filters_as_bootstrap(&istio, &ports)).unwrap();
    if let Err(out) = harness::envoy_validate(&istio_bootstrap) {
        panic!("the EnvoyFilter patch values are not valid Envoy filter configs:\n{out}");
    }
}

/// The `patch.value` blocks of the EnvoyFilter (network filter first, HTTP filter second), put
/// where Istio puts them: before `tcp_proxy` and before the router, with the cluster Istio
/// generates from the ServiceEntry.
fn istio_filters_as_bootstrap(istio: &str, p: &Placeholders) -> String {
    let mut values: Vec<Vec<&str>> = vec![];
    let mut cur: Option<Vec<&str>> = None;
    for line in istio.lines() {
        if line == "      value:" {
            cur = Some(vec![]);
            continue;
        }
        if let Some(v) = cur.as_mut() {
            if let Some(rest) = line.strip_prefix("        ") {
                v.push(rest);
                continue;
            }
            values.push(cur.take().unwrap());
        }
    }
    values.extend(cur);
    assert_eq!(values.len(), 2, "expected two patch values in istio-envoyfilter.yaml");
    assert_eq!(values[0].first(), Some(&"name: envoy.filters.network.ext_authz"));
    assert_eq!(values[1].first(), Some(&"name: envoy.filters.http.ext_authz"));
    let indent = |v: &[&str], n: usize| -> String {
        v.iter()
            .enumerate()
            .map(|(i, l)| format!("{}{}{l}\n", " ".repeat(n), if i == 0 { "- " } else { "  " }))
            .collect()
    };
    let cluster = "outbound|1||dikastes.calico.cluster.local";
    format!(
        r#"admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: {tcp}}}}}
    filter_chains:
    - filters:
{network}      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: "{cluster}"
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: {http}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, direct_response: {{status: 200}}}}]
          http_filters:
{http_filter}          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: "{cluster}"
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: "{cluster}"
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{pipe: {{path: /var/run/dikastes/dikastes.sock}}}}}}
"#,
        admin = p.admin_port,
        tcp = p.tcp_port,
        http = p.raw_port,
        network = indent(&values[0], 6),
        http_filter = indent(&values[1], 10),
    )
}

/// Method, exact path, prefix path, path tricks, service account by name and by selector,
/// namespace selector, source address, trust domain, and connection-level checks.
#[test]
fn policies_decide_what_envoy_lets_through() {
    let mut env = Env::start_envoy();
    env.start_alp();
    let pki = &env.pki;
    let web = pki.workload("default", "web");
    let db = pki.workload("default", "db");
    let ops = pki.workload("ops", "tool");
    let partner = pki.workload("partner", "web");
    let foreign = pki.client("foreign", "spiffe://evil.example/ns/default/sa/web");

    // --- methods and paths -------------------------------------------------------------------
    env.install(&Snapshot::new().policy(
        "http",
        r#"[{"action":"Deny","httpMatch":{"methods":["DELETE"]}},
            {"action":"Deny","httpMatch":{"paths":[{"exact":"/admin"}]}},
            {"action":"Deny","httpMatch":{"paths":[{"prefix":"/private"}]}},
            {"action":"Allow","httpMatch":{"methods":["PUT"],"paths":[{"exact":"/upload"}]}},
            {"action":"Allow","httpMatch":{"methods":["PATCH"],"paths":[{"prefix":"/api"}]}},
            {"action":"Allow","httpMatch":{"methods":["GET","POST"]}}]"#,
    ));
    // By method.
    env.expect("allow by method", Req::get(&web, "/"), OK);
    env.expect("allow by method", Req::new(&web, "POST", "/"), OK);
    env.expect("deny by method", Req::new(&web, "DELETE", "/"), DENIED);
    env.expect("method not allowed: end of tier", Req::new(&web, "PUT", "/"), DENIED);
    // By exact path.
    env.expect("deny by exact path", Req::get(&web, "/admin"), DENIED);
    env.expect("exact path, trailing slash", Req::get(&web, "/admin/"), DENIED);
    env.expect("exact path, query string", Req::get(&web, "/admin?x=1"), DENIED);
    env.expect("exact path is not a prefix", Req::get(&web, "/admin/x"), OK);
    env.expect("allow by exact path", Req::new(&web, "PUT", "/upload"), OK);
    env.expect("allow by exact path: other path", Req::new(&web, "PUT", "/upload/x"), DENIED);
    // By prefix path.
    env.expect("deny by prefix", Req::get(&web, "/private"), DENIED);
    env.expect("deny by prefix", Req::get(&web, "/private/x/y"), DENIED);
    env.expect("prefix matches whole segments", Req::get(&web, "/privateer"), OK);
    env.expect("allow by prefix", Req::new(&web, "PATCH", "/api"), OK);
    env.expect("allow by prefix", Req::new(&web, "PATCH", "/api/v1/x"), OK);
    env.expect("allow by prefix: other path", Req::new(&web, "PATCH", "/apix"), DENIED);
    // Path traversal, sent raw. Inbound: Envoy normalises, alp sees /admin. Raw: alp sees the
    // path as sent and normalises it itself.
    env.expect("traversal (Envoy normalises)", Req::get(&web, "/public/../admin").path_as_is(), DENIED);
    env.expect("control: raw listener allows", Req::get(&web, "/public/x").on(Raw), OK);
    env.expect("traversal (alp normalises)", Req::get(&web, "/public/../admin").path_as_is().on(Raw), DENIED);
    env.expect("encoded traversal", Req::get(&web, "/public/%2e%2e/admin").path_as_is().on(Raw), DENIED);
    env.expect("matrix-parameter traversal", Req::get(&web, "/public/..;x/admin").path_as_is().on(Raw), DENIED);
    env.expect("repeated slashes", Req::get(&web, "//admin").path_as_is().on(Raw), DENIED);
    env.expect("encoded letters", Req::get(&web, "/%61dmin").path_as_is().on(Raw), DENIED);
    // A request target without a leading `/`: Envoy itself answers 400 (on both listeners,
    // normalising or not) and never asks the authorizer, so alp's INVALID_ARGUMENT for such a
    // path (Calico's answer too) cannot be reached through Envoy.
    let http_checks = |env: &Env| env.counter("http.inbound_http.ext_authz.") + env.counter("http.e2e_raw.ext_authz.");
    let before = http_checks(&env);
    env.expect("no leading slash (Envoy rejects)", Req::get(&web, "/").target("x"), BAD_REQUEST);
    env.expect("no leading slash (Envoy rejects)", Req::get(&web, "/").target("x").on(Raw), BAD_REQUEST);
    env.expect("no leading slash (Envoy rejects)", Req::get(&web, "/").target("admin?/a").on(Raw), BAD_REQUEST);
    let after = http_checks(&env);
    env.check("no leading slash never reaches the authorizer", before > 0 && before == after, || {
        format!("HTTP ext_authz counters went from {before} to {after}")
    });

    // --- identities ----------------------------------------------------------------------------
    env.install(&with_identities(Snapshot::new()).policy(
        "identity",
        r#"[{"action":"Allow","srcServiceAccountMatch":{"names":["web"]},"httpMatch":{"paths":[{"prefix":"/by-name"}]}},
            {"action":"Allow","srcServiceAccountMatch":{"selector":"role == 'backend'"},"httpMatch":{"paths":[{"prefix":"/by-sa-selector"}]}},
            {"action":"Allow","originalSrcNamespaceSelector":"env == 'ops'","httpMatch":{"paths":[{"prefix":"/by-ns-selector"}]}},
            {"action":"Allow","srcNet":["127.0.0.5/32"],"httpMatch":{"paths":[{"prefix":"/by-net"}]}}]"#,
    ));
    env.expect("by service-account name", Req::get(&web, "/by-name"), OK);
    env.expect("by service-account name: other account", Req::get(&db, "/by-name"), DENIED);
    env.expect("by service-account name: other account", Req::get(&ops, "/by-name"), DENIED);
    env.expect("by service-account selector", Req::get(&db, "/by-sa-selector"), OK);
    env.expect("by service-account selector: other labels", Req::get(&web, "/by-sa-selector"), DENIED);
    env.expect("by namespace selector", Req::get(&ops, "/by-ns-selector"), OK);
    env.expect("by namespace selector: other namespace", Req::get(&web, "/by-ns-selector"), DENIED);
    env.expect("by namespace selector: other namespace", Req::get(&partner, "/by-ns-selector"), DENIED);
    env.expect("by source address", Req::get(&web, "/by-net").from("127.0.0.5"), OK);
    env.expect("by source address: other address", Req::get(&web, "/by-net").from("127.0.0.6"), DENIED);
    env.expect(
        "source address cannot be claimed with X-Forwarded-For",
        Req::get(&web, "/by-net").from("127.0.0.6").header("X-Forwarded-For: 127.0.0.5"),
        DENIED,
    );
    let san_failures = env.counter("ssl.fail_verify_san");
    env.expect("foreign trust domain: TLS handshake refused", Req::get(&foreign, "/by-name"), CLOSED);
    let after = env.counter("ssl.fail_verify_san");
    env.check("the foreign certificate fails the SAN check", after == san_failures + 1, || {
        format!("ssl.fail_verify_san went from {san_failures} to {after}")
    });

    // --- connections (network ext_authz filter) ----------------------------------------------
    env.install(&with_identities(Snapshot::new()).policy(
        "tcp",
        r#"[{"action":"Deny","httpMatch":{"methods":["DELETE"],"paths":[{"exact":"/admin"}]}},
            {"action":"Deny","originalSrcNamespaceSelector":"env == 'ops'"},
            {"action":"Allow"}]"#,
    ));
    env.expect("connection allowed", Req::get(&web, "/").on(Tcp), OK);
    // Difference D4: a Deny rule with an HTTP clause does not close the connection; on the
    // TCP-only listener nothing then checks the request itself.
    env.expect("HTTP-constrained deny keeps the connection (D4)", Req::new(&web, "DELETE", "/admin").on(Tcp), OK);
    env.expect("HTTP filter denies the request", Req::new(&web, "DELETE", "/admin"), DENIED);
    env.expect("connection denied by source namespace", Req::get(&ops, "/").on(Tcp), CLOSED);
    env.expect("connection denied by source namespace (inbound)", Req::get(&ops, "/"), CLOSED);

    env.install(
        &with_identities(Snapshot::new())
            .policy("tcp", r#"[{"action":"Allow","originalSrcNamespaceSelector":"env == 'ops'"}]"#),
    );
    env.expect("connection allowed by source namespace", Req::get(&ops, "/").on(Tcp), OK);
    env.expect("connection allowed by source namespace (inbound)", Req::get(&ops, "/"), OK);
    env.expect("connection from another namespace closed", Req::get(&web, "/").on(Tcp), CLOSED);

    env.finish();
}

/// Fail closed at every stage of the authorizer's life: before the first InSync, while the
/// stream is down, after it comes back with a different policy, with a missing IP set, and
/// with the authorizer gone.
#[test]
fn envoy_fails_closed_through_the_authorizers_life() {
    let mut env = Env::start_envoy();
    let web = env.pki.workload("default", "web");
    let db = env.pki.workload("default", "db");

    // --- before the first InSync: UNAVAILABLE, so 403 / connection closed ----------------------
    env.start_alp();
    env.expect("no policy-sync server yet", Req::get(&web, "/").on(Raw), DENIED);
    env.expect("no policy-sync server yet (connection)", Req::get(&web, "/"), CLOSED);
    env.expect("no policy-sync server yet (connection)", Req::get(&web, "/").on(Tcp), CLOSED);
    let code = env.alp_client("default", "web", &[]);
    env.check("UNAVAILABLE before InSync", code.as_ref().is_some_and(|c| c.0 == 14), || {
        format!("alp client: {code:?}")
    });
    let ready = env.readiness();
    env.check("not ready before InSync", ready == 3, || format!("alp health readiness exited {ready}"));

    let allow_all = Snapshot::new().policy("all", r#"[{"action":"Allow"}]"#);
    let generation = env.next_generation();
    env.start_sync(allow_all.messages(generation, false));
    let connected = env.sync().wait_for_connections(1, WAIT);
    env.check("the sync client connects", connected, || "no Sync call".into());
    std::thread::sleep(Duration::from_millis(300));
    env.expect("policy sent but no InSync", Req::get(&web, "/").on(Raw), DENIED);
    let code = env.alp_client("default", "web", &[]);
    env.check("still UNAVAILABLE without InSync", code.as_ref().is_some_and(|c| c.0 == 14), || {
        format!("alp client: {code:?}")
    });

    env.sync().server().send(msg_json(r#"{"inSync":{}}"#));
    env.wait_generation(generation, WAIT);
    env.expect("after InSync", Req::get(&web, "/").on(Raw), OK);
    env.expect("after InSync", Req::get(&web, "/"), OK);
    env.expect("after InSync", Req::get(&web, "/").on(Tcp), OK);
    let ready = env.readiness();
    env.check("ready after InSync", ready == 0, || format!("alp health readiness exited {ready}"));

    // --- a rule naming an IP set the store does not have: fail closed (D1) --------------------
    let via_set = Snapshot::new().policy("ipset", r#"[{"action":"Allow","srcIpSetIds":["s:e2e-set"]}]"#);
    env.install(&via_set);
    env.expect("missing IP set", Req::get(&web, "/").on(Raw), DENIED);
    env.expect("missing IP set (connection)", Req::get(&web, "/"), CLOSED);
    let code = env.alp_client("default", "web", &["--source-ip", "127.0.0.1", "--method", "GET"]);
    env.check("missing IP set is INTERNAL", code.as_ref().is_some_and(|c| c.0 == 13), || {
        format!("alp client: {code:?}")
    });
    env.install(&via_set.clone().line(r#"{"ipsetUpdate":{"id":"s:e2e-set","members":["127.0.0.1"],"type":"IP"}}"#));
    env.expect("IP set present, member", Req::get(&web, "/").on(Raw), OK);
    env.expect("IP set present, member", Req::get(&web, "/"), OK);
    env.expect("IP set present, not a member", Req::get(&web, "/").on(Raw).from("127.0.0.7"), DENIED);

    // --- stream broken: the last snapshot keeps serving, readiness false -----------------------
    env.stop_sync();
    env.wait_until("readiness to turn false after the stream broke", WAIT, |e| e.readiness() != 0);
    env.expect("stream down: last snapshot serves", Req::get(&web, "/").on(Raw), OK);
    env.expect("stream down: last snapshot serves", Req::get(&web, "/"), OK);
    env.expect("stream down: last snapshot serves", Req::get(&web, "/").on(Raw).from("127.0.0.7"), DENIED);

    // --- the stream comes back with a CHANGED policy: new verdicts, nothing restarted --------
    let alp_log_before = std::fs::metadata(&env.alp.as_ref().unwrap().log).map(|m| m.len()).unwrap_or(0);
    let changed = Snapshot::new()
        .policy("changed", r#"[{"action":"Deny","srcServiceAccountMatch":{"names":["web"]}},{"action":"Allow"}]"#);
    let generation = env.next_generation();
    env.start_sync(changed.messages(generation, true));
    env.wait_generation(generation, WAIT_RECONNECT);
    env.expect("changed policy denies web", Req::get(&web, "/").on(Raw), DENIED);
    env.expect("changed policy closes web's connection", Req::get(&web, "/"), CLOSED);
    env.expect("changed policy allows db", Req::get(&db, "/").on(Raw), OK);
    env.expect("changed policy allows db", Req::get(&db, "/"), OK);
    let ready = env.readiness();
    env.check("ready again", ready == 0, || format!("alp health readiness exited {ready}"));
    let running = env.alp.as_mut().unwrap().exited().is_none();
    env.check("alp was not restarted", running, || format!("alp exited (log grew from {alp_log_before} bytes)"));

    // --- the authorizer is gone: Envoy denies on its own ---------------------------------------
    env.kill_alp();
    env.expect("authorizer killed", Req::get(&db, "/").on(Raw), DENIED);
    env.expect("authorizer killed (connection)", Req::get(&db, "/"), CLOSED);
    env.expect("authorizer killed (connection)", Req::get(&db, "/").on(Tcp), CLOSED);

    env.finish();
}
