//! The decision trace on request ([`alp_envoy::TRACE_EXTENSION`]) goes back in
//! `CheckResponse.dynamic_metadata`. Envoy's own checks pay nothing for it.

use std::collections::BTreeMap;

use alp_engine::{Code, Decision};
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind};

fn string(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_owned())) }
}

/// `{"trace": [{"kind", "tier", "namespace", "name", "index", "action"}, …]}`.
pub(crate) fn trace_metadata(d: &Decision<'_>) -> Struct {
    let hits = d
        .trace
        .iter()
        .map(|h| {
            let fields = BTreeMap::from([
                ("kind".to_owned(), string(h.kind())),
                ("tier".to_owned(), string(h.tier())),
                ("namespace".to_owned(), string(h.namespace())),
                ("name".to_owned(), string(h.name())),
                ("index".to_owned(), Value { kind: Some(Kind::NumberValue(f64::from(h.index))) }),
                ("action".to_owned(), string(h.action.as_str())),
            ]);
            Value { kind: Some(Kind::StructValue(Struct { fields: fields.into_iter().collect() })) }
        })
        .collect();
    let list = Value { kind: Some(Kind::ListValue(ListValue { values: hits })) };
    Struct { fields: [("trace".to_owned(), list)].into_iter().collect() }
}

/// The canonical name of a `google.rpc.Code` number.
pub fn code_name(code: i32) -> &'static str {
    [Code::Ok, Code::Unknown, Code::InvalidArgument, Code::PermissionDenied, Code::Internal, Code::Unavailable]
        .into_iter()
        .find(|c| *c as i32 == code)
        .map_or("OTHER", Code::name)
}
