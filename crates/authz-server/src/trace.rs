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

/// A `google.protobuf.Value` as JSON text (for printing).
pub fn value_to_json(v: &Value) -> String {
    fn conv(v: &Value) -> String {
        match &v.kind {
            None | Some(Kind::NullValue(_)) => "null".into(),
            Some(Kind::NumberValue(n)) => format!("{n}"),
            Some(Kind::StringValue(s)) => format!("{s:?}"),
            Some(Kind::BoolValue(b)) => b.to_string(),
            Some(Kind::StructValue(s)) => {
                let mut fields: Vec<_> = s.fields.iter().collect();
                fields.sort_by(|a, b| a.0.cmp(b.0));
                let inner: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{}", conv(v))).collect();
                format!("{{{}}}", inner.join(","))
            }
            Some(Kind::ListValue(l)) => format!("[{}]", l.values.iter().map(conv).collect::<Vec<_>>().join(",")),
        }
    }
    conv(v)
}

/// The canonical name of a `google.rpc.Code` number.
pub fn code_name(code: i32) -> &'static str {
    [Code::Ok, Code::Unknown, Code::InvalidArgument, Code::PermissionDenied, Code::Internal, Code::Unavailable]
        .into_iter()
        .find(|c| *c as i32 == code)
        .map_or("OTHER", Code::name)
}
