//! The part of `envoy.service.auth.v3.CheckRequest` a check reads, as its own prost message with
//! the same field numbers. The authorizer decodes every check into it: the fields a decision
//! never reads (headers, the peer certificate, metadata, TLS session, body) are skipped on the
//! wire instead of being allocated and freed. The full type stays for `alp eval`, the client and
//! the v2 services.

use std::collections::HashMap;

use alp_model::Request;

/// `CheckRequest` (`attributes` = 1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckRequest {
    /// Everything a check reads; absent in an empty request.
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `AttributeContext`: `source` = 1, `destination` = 2, `request` = 4, `context_extensions` = 10.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    /// The peer that sent the request.
    #[prost(message, optional, tag = "1")]
    pub source: Option<Peer>,
    /// The peer the request is sent to: the local workload.
    #[prost(message, optional, tag = "2")]
    pub destination: Option<Peer>,
    /// The request itself; a network-filter check has no HTTP part.
    #[prost(message, optional, tag = "4")]
    pub request: Option<AttributeRequest>,
    /// Per-route extensions set in Envoy's filter config.
    #[prost(map = "string, string", tag = "10")]
    pub context_extensions: HashMap<String, String>,
}

/// `AttributeContext.Peer`: `address` = 1, `labels` = 3, `principal` = 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    /// The peer's address.
    #[prost(message, optional, tag = "1")]
    pub address: Option<Address>,
    /// Envoy's peer labels.
    #[prost(map = "string, string", tag = "3")]
    pub labels: HashMap<String, String>,
    /// The peer's principal: its certificate's URI SAN under mTLS, `""` otherwise.
    #[prost(string, tag = "4")]
    pub principal: String,
}

/// `config.core.v3.Address`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Address {
    /// Which kind of address; the last one on the wire wins.
    #[prost(oneof = "AddressKind", tags = "1, 2, 3")]
    pub address: Option<AddressKind>,
}

/// The `address` oneof: a socket address, or another kind whose fields a check does not read.
/// Kept whole so that the last member on the wire wins, as with the full type.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AddressKind {
    /// An IP address and port.
    #[prost(message, tag = "1")]
    SocketAddress(SocketAddress),
    /// A Unix-socket path (not read).
    #[prost(message, tag = "2")]
    Pipe(Skipped),
    /// An Envoy internal listener (not read).
    #[prost(message, tag = "3")]
    EnvoyInternalAddress(Skipped),
}

/// A message whose fields are all skipped.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Skipped {}

/// `config.core.v3.SocketAddress`: `protocol` = 1, `address` = 2, `port_specifier` = 3 | 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SocketAddress {
    /// `TCP` = 0, `UDP` = 1.
    #[prost(int32, tag = "1")]
    pub protocol: i32,
    /// The IP address, as text.
    #[prost(string, tag = "2")]
    pub address: String,
    /// The port, by number or by name.
    #[prost(oneof = "PortSpecifier", tags = "3, 4")]
    pub port_specifier: Option<PortSpecifier>,
}

/// The `port_specifier` oneof (a named port reads as port 0, as with the full type).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PortSpecifier {
    /// A port number.
    #[prost(uint32, tag = "3")]
    PortValue(u32),
    /// A named port, which a check reads as port 0.
    #[prost(string, tag = "4")]
    NamedPort(String),
}

/// `AttributeContext.Request`: `http` = 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeRequest {
    /// The HTTP part; absent on a connection-level check.
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `AttributeContext.HttpRequest`: `method` = 2, `path` = 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    /// The request method, e.g. `GET`.
    #[prost(string, tag = "2")]
    pub method: String,
    /// The request path, query string included.
    #[prost(string, tag = "4")]
    pub path: String,
}

impl CheckRequest {
    /// The flow of this check, exactly as [`crate::to_request`] reads the full message.
    pub fn to_request(&self) -> Request<'_> {
        crate::flow(self)
    }

    /// Whether the check asks for its decision trace (context extension `alp-trace` = `1`).
    pub fn wants_trace(&self) -> bool {
        crate::trace_requested(self)
    }
}
