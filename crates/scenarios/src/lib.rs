//! The benchmark scenarios of BENCHMARKS.md as data: the policy-sync stream Felix would
//! send (decoded `ToDataplane` messages, in Felix's order and with Felix's splitting) and the
//! Envoy ext_authz `CheckRequest`s to decide. Everything is generated from fixed seeds with a
//! small hand-written PRNG, so every call returns the same scenario; nothing here does I/O.
//!
//! * [`s1`]: the production-scale policy walk (Calico's `BaselinePolicyScale`): one tier of 294
//!   GlobalNetworkPolicies × 68 rules and 3,708 NET IP sets of about a million members.
//! * [`s2`]: a mesh service's policy: 20 NetworkPolicies in 2 tiers with service-account,
//!   namespace and HTTP clauses, 50 namespaces and 200 service accounts.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod rng;
mod s1;
mod s2;

use alp_proto::felix::{self, IpSetUpdate, ToDataplane, ip_set_update::IpSetType};
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, address::Address as AddressKind, socket_address::PortSpecifier,
};
pub use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, attribute_context};

pub use s1::{
    S1_DST_IP, S1_DST_PORT, S1_MATCH_EARLY_POLICY, S1_POLICIES, S1_RULES_PER_POLICY, S1_SET_HISTOGRAM, S1_SRC_IP,
    S1_SRC_PORT, S1_TIER, S1Variant, s1, s1_request,
};
pub use s2::{S2_NAMESPACES, S2_REQUESTS, S2_SERVICE_ACCOUNTS, s2};

/// A scenario: the policy-sync stream that builds the store, and labelled checks against it.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// In the order Felix's policy-sync server sends them, ending with `InSync`.
    pub messages: Vec<ToDataplane>,
    /// `(label, request)`; each scenario documents what its labels mean.
    pub requests: Vec<(String, CheckRequest)>,
}

impl Scenario {
    /// The request with this label.
    pub fn request(&self, label: &str) -> Option<&CheckRequest> {
        self.requests.iter().find(|(l, _)| l == label).map(|(_, r)| r)
    }
}

/// The NET IP set `id` as Felix's policy-sync server sends it: split to stay under gRPC's 4 MiB
/// ([`alp_felix::split_ip_set_update`]).
fn net_set(id: &str, members: Vec<String>) -> Vec<ToDataplane> {
    alp_felix::split_ip_set_update(IpSetUpdate { id: id.to_owned(), members, r#type: IpSetType::Net as i32 })
}

/// The stream in proto3 JSON, one `ToDataplane` per line (what `serde_json::from_str` on each
/// line reads back). Map fields (labels) come out in hash order.
pub fn to_json_lines(messages: &[ToDataplane]) -> String {
    let mut out = String::new();
    for m in messages {
        // A prost/pbjson message always serialises; an error here would be a bug in pbjson.
        if let Ok(line) = serde_json::to_string(m) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// One side of a check as Envoy describes it.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    /// The peer's IP address, as text.
    pub ip: &'a str,
    /// The peer's port.
    pub port: u32,
    /// The URI SAN under mTLS (`spiffe://…`), `""` in plain text.
    pub principal: &'a str,
}

/// The HTTP attributes of an HTTP-filter check.
#[derive(Clone, Copy, Debug)]
pub struct HttpAttrs<'a> {
    /// The request method, e.g. `GET`.
    pub method: &'a str,
    /// As Envoy sends it: query string included.
    pub path: &'a str,
    /// The `:authority` (Host) header.
    pub host: &'a str,
}

fn peer(e: &Endpoint<'_>) -> attribute_context::Peer {
    attribute_context::Peer {
        address: Some(Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                address: e.ip.to_owned(),
                port_specifier: Some(PortSpecifier::PortValue(e.port)),
                ..Default::default()
            })),
        }),
        principal: e.principal.to_owned(),
        ..Default::default()
    }
}

/// A TCP `CheckRequest` as Envoy sends it: socket addresses and principals of both sides and,
/// for the HTTP filter, the request attributes (no `request.http` on a network-filter check).
pub fn check_request(source: &Endpoint<'_>, destination: &Endpoint<'_>, http: Option<&HttpAttrs<'_>>) -> CheckRequest {
    let request = http.map(|h| {
        let headers = [
            (":authority", h.host),
            (":method", h.method),
            (":path", h.path),
            (":scheme", "http"),
            ("user-agent", "alp-bench/1"),
            ("x-forwarded-proto", "http"),
            ("x-request-id", "00000000-0000-4000-8000-000000000000"),
        ];
        attribute_context::Request {
            http: Some(attribute_context::HttpRequest {
                id: "1".to_owned(),
                method: h.method.to_owned(),
                headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                path: h.path.to_owned(),
                host: h.host.to_owned(),
                scheme: "http".to_owned(),
                protocol: "HTTP/1.1".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }
    });
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(source)),
            destination: Some(peer(destination)),
            request,
            ..Default::default()
        }),
    }
}

/// A Felix-style IP-set id (`s:` + 38 base64url characters, the length of Felix's
/// `b64url(sha224(...))`) derived from `seed_text` by a non-cryptographic hash.
pub fn felix_set_id(seed_text: &str) -> String {
    const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // FNV-1a of the text seeds the generator that draws the characters.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed_text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut r = rng::Rng::new(h);
    let mut id = String::with_capacity(40);
    id.push_str("s:");
    for _ in 0..38 {
        let i = (r.next_u64() >> 58) as usize;
        id.push(char::from(B64URL.get(i).copied().unwrap_or(b'A')));
    }
    id
}

/// A `felix::PolicyId`.
pub fn policy_id(name: &str, namespace: &str, kind: &str) -> felix::PolicyId {
    felix::PolicyId { name: name.to_owned(), namespace: namespace.to_owned(), kind: kind.to_owned() }
}

/// A single-port range as Felix sends it (`first == last`).
pub fn port(p: i32) -> felix::PortRange {
    felix::PortRange { first: p, last: p }
}
