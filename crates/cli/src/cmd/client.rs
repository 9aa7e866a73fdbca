//! `alp client <ns> <sa>` (and `dikastes client`): one Check against a running authorizer.

use std::{collections::HashMap, process::ExitCode};

use anyhow::Context;
use envoy_types::pb::envoy::{
    config::core::v3::{Address, SocketAddress, address, socket_address},
    service::auth::v3::{AttributeContext, CheckRequest, attribute_context, authorization_client::AuthorizationClient},
};

use alp_authz_server::TRACE_EXTENSION;
use envoy_types::pb::google::protobuf::{Value, value::Kind};

use super::server::DEFAULT_LISTEN;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace of the calling workload.
    pub namespace: String,
    /// Service account of the calling workload.
    pub account: String,
    /// The authorizer: a Unix socket path or `tcp://HOST:PORT`.
    #[arg(short = 'd', long, env = "ALP_DIAL", default_value = DEFAULT_LISTEN)]
    pub dial: String,
    /// HTTP method; without it the check is a connection-level (network filter) check.
    #[arg(long)]
    pub method: Option<String>,
    /// HTTP path (with `--method`; default `/`).
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub source_ip: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub source_port: u32,
    #[arg(long)]
    pub dest_ip: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub dest_port: u32,
    /// SPIFFE trust domain of the caller's identity.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
}

fn peer(ip: Option<&str>, port: u32, principal: String) -> attribute_context::Peer {
    attribute_context::Peer {
        address: ip.map(|ip| Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: ip.to_owned(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        principal,
        ..Default::default()
    }
}

pub fn request(args: &Args) -> CheckRequest {
    let principal = format!("spiffe://{}/ns/{}/sa/{}", args.trust_domain, args.namespace, args.account);
    let http = args.method.as_ref().map(|m| attribute_context::HttpRequest {
        method: m.clone(),
        path: args.path.clone().unwrap_or_else(|| "/".into()),
        ..Default::default()
    });
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(args.source_ip.as_deref(), args.source_port, principal)),
            destination: Some(peer(args.dest_ip.as_deref(), args.dest_port, String::new())),
            request: http.map(|h| attribute_context::Request { http: Some(h), ..Default::default() }),
            context_extensions: HashMap::from([(TRACE_EXTENSION.to_owned(), "1".to_owned())]),
            ..Default::default()
        }),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let channel =
            alp_authz_server::connect(&args.dial).await.with_context(|| format!("connecting to {}", args.dial))?;
        let resp = AuthorizationClient::new(channel).check(request(&args)).await.context("Check")?.into_inner();
        let status = resp.status.unwrap_or_default();
        let name = alp_authz_server::code_name(status.code);
        println!("code: {} ({name})", status.code);
        if !status.message.is_empty() {
            println!("message: {}", status.message);
        }
        if let Some(trace) = resp.dynamic_metadata.as_ref().and_then(|m| m.fields.get("trace")) {
            println!("trace: {}", to_json(trace));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A `google.protobuf.Value` as JSON, keys sorted; whole numbers (the trace's indexes) print
/// without a fraction.
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => Json::from(*n as i64),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Some(Kind::StringValue(s)) => Json::from(s.as_str()),
        Some(Kind::BoolValue(b)) => Json::from(*b),
        Some(Kind::StructValue(s)) => {
            let sorted: std::collections::BTreeMap<_, _> =
                s.fields.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(to_json).collect()),
    }
}
