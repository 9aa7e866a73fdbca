//! Wire input from Envoy: any bytes as a `CheckRequest` body. The subset the authorizer decodes
//! must never panic, must accept whatever the full message accepts and read the same flow from
//! it, and the flow must decide without panicking.
#![no_main]

use alp_engine::{Config, Store, decide};
use alp_envoy::{CheckRequest, to_request, wire};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let subset = wire::CheckRequest::decode(data);
    if let Ok(full) = CheckRequest::decode(data) {
        let subset = subset.as_ref().expect("the subset decodes what the full message decodes");
        assert_eq!(subset.to_request(), to_request(&full));
        assert_eq!(subset.wants_trace(), alp_envoy::wants_trace(&full));
    }
    if let Ok(subset) = subset {
        let req = subset.to_request();
        let _ = (req.source.address.ip(), req.destination.address.ip());
        let _ = decide(&Store::new(Config::default()).snapshot(), &req);
    }
});
