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
    #[prost(message, optional, tag = "1")]
    pub attributes: Option<AttributeContext>,
}

/// `AttributeContext`: `source` = 1, `destination` = 2, `request` = 4, `context_extensions` = 10.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeContext {
    #[prost(message, optional, tag = "1")]
    pub source: Option<Peer>,
    #[prost(message, optional, tag = "2")]
    pub destination: Option<Peer>,
    #[prost(message, optional, tag = "4")]
    pub request: Option<AttributeRequest>,
    #[prost(map = "string, string", tag = "10")]
    pub context_extensions: HashMap<String, String>,
}

/// `AttributeContext.Peer`: `address` = 1, `labels` = 3, `principal` = 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Peer {
    #[prost(message, optional, tag = "1")]
    pub address: Option<Address>,
    #[prost(map = "string, string", tag = "3")]
    pub labels: HashMap<String, String>,
    #[prost(string, tag = "4")]
    pub principal: String,
}

/// `config.core.v3.Address`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Address {
    #[prost(oneof = "AddressKind", tags = "1, 2, 3")]
    pub address: Option<AddressKind>,
}

/// The `address` oneof: a socket address, or another kind whose fields a check does not read.
/// Kept whole so that the last member on the wire wins, as with the full type.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AddressKind {
    #[prost(message, tag = "1")]
    SocketAddress(SocketAddress),
    #[prost(message, tag = "2")]
    Pipe(Skipped),
    #[prost(message, tag = "3")]
    EnvoyInternalAddress(Skipped),
}

/// A message whose fields are all skipped.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Skipped {}

/// `config.core.v3.SocketAddress`: `protocol` = 1, `address` = 2, `port_specifier` = 3 | 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SocketAddress {
    #[prost(int32, tag = "1")]
    pub protocol: i32,
    #[prost(string, tag = "2")]
    pub address: String,
    #[prost(oneof = "PortSpecifier", tags = "3, 4")]
    pub port_specifier: Option<PortSpecifier>,
}

/// The `port_specifier` oneof (a named port reads as port 0, as with the full type).
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PortSpecifier {
    #[prost(uint32, tag = "3")]
    PortValue(u32),
    #[prost(string, tag = "4")]
    NamedPort(String),
}

/// `AttributeContext.Request`: `http` = 2.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeRequest {
    #[prost(message, optional, tag = "2")]
    pub http: Option<HttpRequest>,
}

/// `AttributeContext.HttpRequest`: `method` = 2, `path` = 4.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HttpRequest {
    #[prost(string, tag = "2")]
    pub method: String,
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
