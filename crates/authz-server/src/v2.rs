//! `envoy.service.auth.v2.Authorization/Check` and `v2alpha` (Envoy ≤ 1.17), as Dikastes serves
//! them beside v3: the request is converted field by field to v3, decided by the
//! same [`Authorizer`], and only the status is copied back.

use std::collections::HashMap;

use alp_proto::envoy_v2::{
    envoy::{
        api::v2::core as v2core,
        service::auth::{v2, v2alpha},
    },
    google::rpc::Status as V2Status,
};
use envoy_types::pb::envoy::{
    config::core::v3 as v3core,
    service::auth::v3::{AttributeContext, CheckRequest, attribute_context},
};

use crate::Authorizer;

fn address(a: &v2core::Address) -> v3core::Address {
    use v2core::{address::Address as A2, socket_address::PortSpecifier as P2};
    use v3core::{address::Address as A3, socket_address::PortSpecifier as P3};
    let address = a.address.as_ref().map(|kind| match kind {
        A2::SocketAddress(s) => A3::SocketAddress(v3core::SocketAddress {
            // TCP = 0 and UDP = 1 in both versions.
            protocol: s.protocol,
            address: s.address.clone(),
            port_specifier: s.port_specifier.as_ref().map(|p| match p {
                P2::PortValue(v) => P3::PortValue(*v),
                P2::NamedPort(n) => P3::NamedPort(n.clone()),
            }),
            resolver_name: s.resolver_name.clone(),
            ipv4_compat: s.ipv4_compat,
            ..v3core::SocketAddress::default()
        }),
        A2::Pipe(p) => A3::Pipe(v3core::Pipe { path: p.path.clone(), mode: p.mode }),
    });
    v3core::Address { address }
}

fn peer(p: &v2::attribute_context::Peer) -> attribute_context::Peer {
    attribute_context::Peer {
        address: p.address.as_ref().map(address),
        service: p.service.clone(),
        labels: p.labels.clone(),
        principal: p.principal.clone(),
        certificate: p.certificate.clone(),
    }
}

fn http(h: &v2::attribute_context::HttpRequest) -> attribute_context::HttpRequest {
    attribute_context::HttpRequest {
        id: h.id.clone(),
        method: h.method.clone(),
        headers: h.headers.clone(),
        path: h.path.clone(),
        host: h.host.clone(),
        scheme: h.scheme.clone(),
        query: h.query.clone(),
        fragment: h.fragment.clone(),
        size: h.size,
        protocol: h.protocol.clone(),
        body: h.body.clone(),
        ..attribute_context::HttpRequest::default()
    }
}

/// The v3 form of a v2 request.
pub fn to_v3(req: &v2::CheckRequest) -> CheckRequest {
    let attributes = req.attributes.as_ref().map(|a| AttributeContext {
        source: a.source.as_ref().map(peer),
        destination: a.destination.as_ref().map(peer),
        request: a.request.as_ref().map(|r| attribute_context::Request {
            time: r.time.map(|t| envoy_types::pb::google::protobuf::Timestamp { seconds: t.seconds, nanos: t.nanos }),
            http: r.http.as_ref().map(http),
        }),
        context_extensions: a.context_extensions.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>(),
        ..AttributeContext::default()
    });
    CheckRequest { attributes }
}

impl Authorizer {
    /// One v2 (or v2alpha) check: decided as its v3 form, the status copied back.
    pub fn check_v2(&self, req: &v2::CheckRequest) -> v2::CheckResponse {
        let status = self.check_request(&to_v3(req)).status.map(|s| V2Status {
            code: s.code,
            message: s.message,
            details: Vec::new(),
        });
        v2::CheckResponse { status }
    }
}

/// The v2 service.
#[derive(Clone, Debug)]
pub struct V2(pub Authorizer);

/// The v2alpha service (same messages as v2).
#[derive(Clone, Debug)]
pub struct V2Alpha(pub Authorizer);

#[tonic::async_trait]
impl v2::authorization_server::Authorization for V2 {
    async fn check(
        &self,
        request: tonic::Request<v2::CheckRequest>,
    ) -> Result<tonic::Response<v2::CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.check_v2(request.get_ref())))
    }
}

#[tonic::async_trait]
impl v2alpha::authorization_server::Authorization for V2Alpha {
    async fn check(
        &self,
        request: tonic::Request<v2::CheckRequest>,
    ) -> Result<tonic::Response<v2::CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(self.0.check_v2(request.get_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_a_check_reads_survives_the_conversion() {
        let v2_peer = |ip: &str, port: Option<u32>, named: Option<&str>, udp: bool, principal: &str| {
            v2::attribute_context::Peer {
                address: Some(v2core::Address {
                    address: Some(v2core::address::Address::SocketAddress(v2core::SocketAddress {
                        protocol: i32::from(udp),
                        address: ip.to_owned(),
                        port_specifier: match (port, named) {
                            (Some(p), _) => Some(v2core::socket_address::PortSpecifier::PortValue(p)),
                            (None, Some(n)) => Some(v2core::socket_address::PortSpecifier::NamedPort(n.to_owned())),
                            (None, None) => None,
                        },
                        ..Default::default()
                    })),
                }),
                service: "svc".to_owned(),
                labels: [("app".to_owned(), "web".to_owned())].into(),
                principal: principal.to_owned(),
                certificate: "PEM".to_owned(),
            }
        };
        let req = v2::CheckRequest {
            attributes: Some(v2::AttributeContext {
                source: Some(v2_peer("10.0.0.1", Some(40000), None, false, "spiffe://td/ns/a/sa/b")),
                destination: Some(v2_peer("::ffff:10.0.0.2", None, Some("http"), true, "")),
                request: Some(v2::attribute_context::Request {
                    time: None,
                    http: Some(v2::attribute_context::HttpRequest {
                        method: "PUT".to_owned(),
                        path: "/a/b?c=d".to_owned(),
                        host: "h".to_owned(),
                        headers: [(":authority".to_owned(), "h".to_owned())].into(),
                        ..Default::default()
                    }),
                }),
                context_extensions: [("alp-trace".to_owned(), "1".to_owned())].into(),
            }),
        };
        let v3 = to_v3(&req);
        let flow = alp_envoy::to_request(&v3);
        assert_eq!(flow.source.address.ip(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(flow.source.port, 40000);
        assert_eq!(flow.source.principal, "spiffe://td/ns/a/sa/b");
        assert_eq!(flow.source.labels.and_then(|l| l.get("app")).map(String::as_str), Some("web"));
        assert_eq!(flow.destination.address.ip(), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(flow.destination.port, 0, "a named port is no port number");
        assert_eq!(flow.protocol, 17, "UDP");
        let http = flow.http.unwrap();
        assert_eq!((http.method, http.path), ("PUT", "/a/b?c=d"));
        let a = v3.attributes.unwrap();
        assert_eq!(a.context_extensions.get("alp-trace").map(String::as_str), Some("1"));
        let src = a.source.unwrap();
        assert_eq!((src.service.as_str(), src.certificate.as_str()), ("svc", "PEM"));
        assert_eq!(a.request.unwrap().http.unwrap().headers.get(":authority").map(String::as_str), Some("h"));
    }
}
