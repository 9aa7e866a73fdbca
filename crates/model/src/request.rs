use std::{collections::HashMap, net::IpAddr};

/// One side of a check, borrowed from the Envoy `CheckRequest` (nothing is copied).
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer<'a> {
    /// `None` when the request has no socket address or the address does not parse.
    pub ip: Option<IpAddr>,
    /// 0 when absent.
    pub port: u32,
    /// The peer's principal (`spiffe://…` under mTLS, `""` in plain text).
    pub principal: &'a str,
    /// Envoy's peer labels.
    pub labels: Option<&'a HashMap<String, String>>,
}

/// The HTTP attributes of an HTTP-filter check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Http<'a> {
    pub method: &'a str,
    /// As Envoy sends it: query string included.
    pub path: &'a str,
}

/// What the engine decides on: the flow Calico's checker extracts from a `CheckRequest`.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub source: Peer<'a>,
    pub destination: Peer<'a>,
    /// IP protocol number: 6 (TCP) unless Envoy says UDP.
    pub protocol: i32,
    /// `None` on a network-filter (connection-level) check.
    pub http: Option<Http<'a>>,
}

impl Default for Request<'_> {
    fn default() -> Self {
        Request { source: Peer::default(), destination: Peer::default(), protocol: 6, http: None }
    }
}
