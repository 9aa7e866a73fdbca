//! Envoy's side of the authorizer: an ext_authz v3 `CheckRequest` becomes the engine's
//! [`Request`] by borrowing (no copies on the check path), and `CheckRequest`s can be read in
//! proto3 JSON for `alp eval`. envoy-types has no serde support, so the JSON form is mirrored
//! here for the fields a check uses. [`wire::CheckRequest`] is the subset the authorizer decodes.

use std::collections::HashMap;

use alp_model::{Address as PeerAddress, Http, Peer, Request};
use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress,
    address::Address as AddressKind,
    socket_address::{PortSpecifier, Protocol},
};
pub use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};
use serde::{Deserialize, Deserializer};

pub mod wire;

/// IP protocol numbers of Envoy's `SocketAddress.Protocol`.
const TCP: i32 = 6;
const UDP: i32 = 17;

/// The context extension that asks for the decision trace: a check whose `alp-trace` is `1`
/// (what `alp client` sends; Envoy sends it only if configured to) gets its trace back.
pub const TRACE_EXTENSION: &str = "alp-trace";

/// Whether `check` asks for its decision trace.
pub fn wants_trace(check: &CheckRequest) -> bool {
    trace_requested(check)
}

/// The flow Calico's checker extracts from a `CheckRequest`; see [`flow`].
pub fn to_request(check: &CheckRequest) -> Request<'_> {
    flow(check)
}

/// What a check reads of a `CheckRequest`, in the full message and in [`wire::CheckRequest`]
/// alike, so that both are read by the same code.
trait CheckFields {
    type Peer: PeerFields;
    fn source(&self) -> Option<&Self::Peer>;
    fn destination(&self) -> Option<&Self::Peer>;
    fn http(&self) -> Option<Http<'_>>;
    fn context_extensions(&self) -> Option<&HashMap<String, String>>;
}

/// What the flow reads of a peer.
trait PeerFields {
    /// The socket address: its text, the port (0 unless a port value) and Envoy's protocol
    /// number; `None` for another kind of address or none.
    fn socket(&self) -> Option<(&str, u32, i32)>;
    fn principal(&self) -> &str;
    fn labels(&self) -> &HashMap<String, String>;
}

/// [`CheckFields`] and [`PeerFields`] for a message family: the full message's and [`wire`]'s
/// have the same field names and the same oneof variants.
macro_rules! check_fields {
    ($check:ty, $peer:ty, $socket_address:path, $port_value:path) => {
        impl CheckFields for $check {
            type Peer = $peer;

            fn source(&self) -> Option<&$peer> {
                self.attributes.as_ref()?.source.as_ref()
            }

            fn destination(&self) -> Option<&$peer> {
                self.attributes.as_ref()?.destination.as_ref()
            }

            fn http(&self) -> Option<Http<'_>> {
                let h = self.attributes.as_ref()?.request.as_ref()?.http.as_ref()?;
                Some(Http { method: &h.method, path: &h.path })
            }

            fn context_extensions(&self) -> Option<&HashMap<String, String>> {
                self.attributes.as_ref().map(|a| &a.context_extensions)
            }
        }

        impl PeerFields for $peer {
            fn socket(&self) -> Option<(&str, u32, i32)> {
                match self.address.as_ref()?.address.as_ref()? {
                    $socket_address(s) => {
                        let port = match s.port_specifier {
                            Some($port_value(v)) => v,
                            _ => 0,
                        };
                        Some((&s.address, port, s.protocol))
                    }
                    _ => None,
                }
            }

            fn principal(&self) -> &str {
                &self.principal
            }

            fn labels(&self) -> &HashMap<String, String> {
                &self.labels
            }
        }
    };
}

check_fields!(CheckRequest, attribute_context::Peer, AddressKind::SocketAddress, PortSpecifier::PortValue);
check_fields!(wire::CheckRequest, wire::Peer, wire::AddressKind::SocketAddress, wire::PortSpecifier::PortValue);

fn trace_requested<C: CheckFields>(check: &C) -> bool {
    check.context_extensions().and_then(|e| e.get(TRACE_EXTENSION)).is_some_and(|v| v == "1")
}

fn peer<P: PeerFields>(p: Option<&P>) -> Peer<'_> {
    let sock = p.and_then(PeerFields::socket);
    Peer {
        // Parsed by the engine only if a rule looks at it.
        address: sock.map_or(PeerAddress::None, |(address, _, _)| PeerAddress::Text(address)),
        port: sock.map_or(0, |(_, port, _)| port),
        principal: p.map_or("", PeerFields::principal),
        labels: p.map(PeerFields::labels),
    }
}

/// The flow Calico's checker extracts (`adapter_checkrequest.go`): addresses, ports, principals,
/// labels, protocol (TCP unless Envoy says UDP) and the HTTP method and path (absent on a network-filter check).
fn flow<C: CheckFields>(check: &C) -> Request<'_> {
    let destination = check.destination();
    let protocol = match destination.and_then(PeerFields::socket) {
        Some((_, _, p)) if p == Protocol::Udp as i32 => UDP,
        _ => TCP,
    };
    Request { source: peer(check.source()), destination: peer(destination), protocol, http: check.http() }
}

/// A `CheckRequest` in proto3 JSON that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("field {path}: {message}")]
pub struct JsonError {
    /// Where in the document, e.g. `attributes.source.address.socketAddress.portValue`.
    pub path: String,
    /// What did not decode, as serde reports it.
    pub message: String,
}

/// Reads one `CheckRequest` in proto3 JSON (lowerCamelCase or proto field names).
pub fn check_request_from_json(text: &str) -> Result<CheckRequest, JsonError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let json: JsonCheck = serde_path_to_error::deserialize(de)
        .map_err(|e| JsonError { path: e.path().to_string(), message: e.inner().to_string() })?;
    Ok(json.into())
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonCheck {
    attributes: Option<JsonAttributes>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonAttributes {
    source: Option<JsonPeer>,
    destination: Option<JsonPeer>,
    request: Option<JsonRequest>,
    #[serde(alias = "context_extensions")]
    context_extensions: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonPeer {
    address: Option<JsonAddress>,
    service: String,
    labels: HashMap<String, String>,
    principal: String,
    certificate: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonAddress {
    #[serde(alias = "socket_address")]
    socket_address: Option<JsonSocket>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonSocket {
    #[serde(deserialize_with = "protocol")]
    protocol: i32,
    address: String,
    #[serde(alias = "port_value", deserialize_with = "opt_u32")]
    port_value: Option<u32>,
    #[serde(alias = "named_port")]
    named_port: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonRequest {
    http: Option<JsonHttp>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonHttp {
    id: String,
    method: String,
    headers: HashMap<String, String>,
    path: String,
    host: String,
    scheme: String,
    protocol: String,
}

/// proto3 JSON: an enum by name or number.
fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum P {
        Name(String),
        Number(i32),
    }
    match Option::<P>::deserialize(d)? {
        None => Ok(0),
        Some(P::Number(n)) => Ok(n),
        Some(P::Name(name)) => Protocol::from_str_name(&name)
            .map(|p| p as i32)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown protocol {name:?} (TCP or UDP)"))),
    }
}

/// proto3 JSON: a uint32 as a number or a decimal string.
fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u32),
        Text(String),
    }
    match Option::<N>::deserialize(d)? {
        None => Ok(None),
        Some(N::Number(n)) => Ok(Some(n)),
        Some(N::Text(s)) => s.parse().map(Some).map_err(|_| serde::de::Error::custom(format!("not a uint32: {s:?}"))),
    }
}

impl From<JsonPeer> for attribute_context::Peer {
    fn from(p: JsonPeer) -> Self {
        let address = p.address.and_then(|a| a.socket_address).map(|s| Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                protocol: s.protocol,
                address: s.address,
                port_specifier: match (s.port_value, s.named_port) {
                    (Some(v), _) => Some(PortSpecifier::PortValue(v)),
                    (None, Some(n)) => Some(PortSpecifier::NamedPort(n)),
                    (None, None) => None,
                },
                ..Default::default()
            })),
        });
        attribute_context::Peer {
            address,
            service: p.service,
            labels: p.labels,
            principal: p.principal,
            certificate: p.certificate,
        }
    }
}

impl From<JsonCheck> for CheckRequest {
    fn from(j: JsonCheck) -> Self {
        CheckRequest {
            attributes: j.attributes.map(|a| AttributeContext {
                source: a.source.map(Into::into),
                destination: a.destination.map(Into::into),
                request: a.request.map(|r| attribute_context::Request {
                    http: r.http.map(|h| attribute_context::HttpRequest {
                        id: h.id,
                        method: h.method,
                        headers: h.headers,
                        path: h.path,
                        host: h.host,
                        scheme: h.scheme,
                        protocol: h.protocol,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                context_extensions: a.context_extensions,
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_envoy_sends() {
        let check = check_request_from_json(
            r#"{"attributes":{"source":{"address":{"socketAddress":{"address":"10.0.0.1","portValue":45000}},
                "principal":"spiffe://cluster.local/ns/a/sa/b"},
              "destination":{"address":{"socket_address":{"address":"::ffff:10.0.0.2","port_value":"8080","protocol":"UDP"}}},
              "request":{"http":{"method":"GET","path":"/x?y=1"}}}}"#,
        )
        .unwrap();
        let req = to_request(&check);
        assert_eq!(req.source.address.ip(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(req.source.port, 45000);
        assert_eq!(req.source.principal, "spiffe://cluster.local/ns/a/sa/b");
        assert_eq!(req.destination.address.ip(), Some("10.0.0.2".parse().unwrap()), "v4-mapped becomes v4");
        assert_eq!(req.destination.port, 8080);
        assert_eq!(req.protocol, UDP);
        let http = req.http.unwrap();
        assert_eq!((http.method, http.path), ("GET", "/x?y=1"));
    }

    #[test]
    fn addresses_parse_as_go_does() {
        for (text, want) in [
            ("10.0.0.1", Some("10.0.0.1")),
            ("255.255.255.255", Some("255.255.255.255")),
            ("01.0.0.1", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("256.0.0.1", None),
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("", None),
        ] {
            assert_eq!(alp_model::Address::Text(text).ip(), want.map(|w| w.parse().unwrap()), "{text}");
        }
    }

    #[test]
    fn defaults_follow_calico() {
        let check = check_request_from_json("{}").unwrap();
        let req = to_request(&check);
        assert_eq!(req.protocol, TCP, "no destination address means TCP");
        assert!(req.http.is_none(), "no request.http is a network check");
        assert_eq!((req.source.address.ip(), req.source.port), (None, 0));
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            check_request_from_json(r#"{"attributes":{"source":{"address":{"socketAddress":{"portValue":"x"}}}}}"#)
                .unwrap_err();
        assert_eq!(err.path, "attributes.source.address.socketAddress.portValue");
        let err = check_request_from_json(
            r#"{"attributes":{"destination":{"address":{"socketAddress":{"protocol":"SCTP"}}}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("protocol"), "{err}");
    }
}
