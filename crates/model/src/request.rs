use std::{collections::HashMap, net::IpAddr};

/// A peer's address: parsed by the caller, or Envoy's text, parsed only if a rule looks at it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Address<'a> {
    /// No socket address.
    #[default]
    None,
    /// A parsed IP address.
    Ip(IpAddr),
    /// Envoy's address text, not yet parsed.
    Text(&'a str),
}

impl Address<'_> {
    /// The address as Go's `net.ParseIP` reads it (an IPv4-mapped IPv6 address becomes IPv4);
    /// `None` when absent or when the text does not parse.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::None => None,
            Address::Ip(ip) => Some(ip.to_canonical()),
            Address::Text(s) => s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
        }
    }
}

impl From<Option<IpAddr>> for Address<'_> {
    fn from(ip: Option<IpAddr>) -> Self {
        ip.map_or(Address::None, Address::Ip)
    }
}

/// One side of a check, borrowed from the Envoy `CheckRequest` (nothing is copied).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer<'a> {
    /// The peer's socket address.
    pub address: Address<'a>,
    /// 0 when absent.
    pub port: u32,
    /// The peer's principal (`spiffe://…` under mTLS, `""` in plain text).
    pub principal: &'a str,
    /// Envoy's peer labels.
    pub labels: Option<&'a HashMap<String, String>>,
}

/// The HTTP attributes of an HTTP-filter check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Http<'a> {
    /// The request method, e.g. `GET`.
    pub method: &'a str,
    /// As Envoy sends it: query string included.
    pub path: &'a str,
}

/// What the engine decides on: the flow Calico's checker extracts from a `CheckRequest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The peer that sent the request.
    pub source: Peer<'a>,
    /// The peer the request is sent to: the local workload on ingress.
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
