//! The subset message reads the full `CheckRequest`'s bytes into the same flow: for any message
//! Envoy could send (fields a check skips included), `wire::CheckRequest::to_request` equals
//! `to_request` on the full decode, and so does the trace flag.

use std::collections::HashMap;

use alp_envoy::{CheckRequest, TRACE_EXTENSION, attribute_context, to_request, wants_trace, wire};
use envoy_types::pb::envoy::config::core::v3::{
    Address, Pipe, SocketAddress, address::Address as AddressKind, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use proptest::{collection::hash_map, option, prelude::*};
use prost::Message;

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just("10.0.0.1".to_owned()),
        Just("::ffff:10.1.2.3".to_owned()),
        Just("2001:db8::7".to_owned()),
        Just("spiffe://cluster.local/ns/a/sa/b".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
    .boxed()
}

fn labels() -> BoxedStrategy<HashMap<String, String>> {
    hash_map(text(), text(), 0..3).boxed()
}

fn address() -> BoxedStrategy<Option<Address>> {
    let port = option::of(prop_oneof![
        any::<u32>().prop_map(PortSpecifier::PortValue),
        text().prop_map(PortSpecifier::NamedPort)
    ]);
    let socket = (0..3i32, text(), port, text()).prop_map(|(protocol, address, port_specifier, resolver_name)| {
        AddressKind::SocketAddress(SocketAddress {
            protocol,
            address,
            port_specifier,
            resolver_name,
            ..Default::default()
        })
    });
    let pipe = text().prop_map(|path| AddressKind::Pipe(Pipe { path, mode: 0o644 }));
    option::of(option::of(prop_oneof![4 => socket, 1 => pipe]).prop_map(|address| Address { address })).boxed()
}

fn peer() -> BoxedStrategy<Option<attribute_context::Peer>> {
    option::of((address(), labels(), text(), text(), text()).prop_map(
        |(address, labels, principal, service, certificate)| attribute_context::Peer {
            address,
            service,
            labels,
            principal,
            certificate,
        },
    ))
    .boxed()
}

fn http() -> BoxedStrategy<Option<attribute_context::Request>> {
    let http = (text(), text(), labels(), text(), text()).prop_map(|(method, path, headers, host, body)| {
        attribute_context::HttpRequest { id: "7".to_owned(), method, headers, path, host, body, ..Default::default() }
    });
    option::of(option::of(http).prop_map(|http| attribute_context::Request { http, ..Default::default() })).boxed()
}

fn extensions() -> BoxedStrategy<HashMap<String, String>> {
    (labels(), option::of(prop_oneof![Just("1".to_owned()), Just("0".to_owned()), text()]))
        .prop_map(|(mut m, trace)| {
            if let Some(v) = trace {
                m.insert(TRACE_EXTENSION.to_owned(), v);
            }
            m
        })
        .boxed()
}

fn check() -> BoxedStrategy<CheckRequest> {
    option::of((peer(), peer(), http(), extensions()).prop_map(|(source, destination, request, context_extensions)| {
        AttributeContext { source, destination, request, context_extensions, ..Default::default() }
    }))
    .prop_map(|attributes| CheckRequest { attributes })
    .boxed()
}

proptest! {
    /// Two messages back to back are one merged message on the wire (oneofs: the last member
    /// wins; maps: entries add up), so concatenations test the merge rules too.
    #[test]
    fn the_subset_reads_the_same_flow(first in check(), second in option::of(check())) {
        let mut bytes = first.encode_to_vec();
        if let Some(second) = second {
            second.encode(&mut bytes).expect("encode");
        }
        let full = CheckRequest::decode(bytes.as_slice()).expect("full decode");
        let subset = wire::CheckRequest::decode(bytes.as_slice()).expect("subset decode");
        prop_assert_eq!(subset.to_request(), to_request(&full));
        prop_assert_eq!(subset.wants_trace(), wants_trace(&full));
    }
}

#[test]
fn a_udp_destination_and_an_http_request_come_through() {
    let full = CheckRequest {
        attributes: Some(AttributeContext {
            destination: Some(attribute_context::Peer {
                address: Some(Address {
                    address: Some(AddressKind::SocketAddress(SocketAddress {
                        protocol: 1,
                        address: "10.0.0.9".to_owned(),
                        port_specifier: Some(PortSpecifier::PortValue(53)),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: "PUT".to_owned(),
                    path: "/a".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: HashMap::from([(TRACE_EXTENSION.to_owned(), "1".to_owned())]),
            ..Default::default()
        }),
    };
    let subset = wire::CheckRequest::decode(full.encode_to_vec().as_slice()).expect("decode");
    let req = subset.to_request();
    assert_eq!((req.protocol, req.destination.port), (17, 53));
    assert_eq!(req.destination.address.ip(), Some("10.0.0.9".parse().expect("ip")));
    assert_eq!(req.http.map(|h| (h.method, h.path)), Some(("PUT", "/a")));
    assert!(subset.wants_trace());
}
