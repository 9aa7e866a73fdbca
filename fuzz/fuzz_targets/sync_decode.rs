//! Wire input from the policy-sync stream: any bytes, decoded as a sequence of length-delimited
//! `felix.ToDataplane` messages, applied to a store and decided on, must never panic.
#![no_main]

use alp_engine::{Config, Request, Store, decide};
use alp_proto::felix::ToDataplane;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let mut store = Store::new(Config::default());
    let mut buf = data;
    while !buf.is_empty() {
        match ToDataplane::decode_length_delimited(&mut buf) {
            Ok(msg) => {
                let _ = store.apply(&msg);
            }
            Err(_) => break,
        }
    }
    let snap = store.snapshot();
    let req = Request {
        source: alp_model::Peer { address: alp_model::Address::Text("10.0.0.1"), port: 40000, principal: "spiffe://td/ns/a/sa/b", labels: None },
        destination: alp_model::Peer { address: alp_model::Address::Text("10.0.0.2"), port: 80, principal: "", labels: None },
        protocol: 6,
        http: Some(alp_model::Http { method: "GET", path: "/a/../b?x" }),
    };
    let _ = decide(&snap, &req);
    let _ = decide(&snap, &Request { http: None, ..req });
});
