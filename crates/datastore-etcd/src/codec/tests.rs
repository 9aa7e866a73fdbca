use alp_resources::parse_documents;

use super::*;
use crate::keys::PREFIX;

fn one(yaml: &str) -> Resource {
    parse_documents(yaml, "t.yaml").remove(0).unwrap()
}

fn gnp() -> Resource {
    one("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: all()}\n")
}

#[test]
fn policies_carry_their_original_name_and_decode_back() {
    let r = gnp();
    let (key, value) = encode(&r).unwrap();
    assert_eq!(key, format!("{PREFIX}globalnetworkpolicies/p"));
    let json: Value = serde_json::from_str(&value).unwrap();
    assert_eq!(json["metadata"]["annotations"][METADATA_ANNOTATION], r#"{"name":"p"}"#);
    assert_eq!(json["kind"], "GlobalNetworkPolicy");
    assert_eq!(json["apiVersion"], "projectcalico.org/v3");
    let mut back = decode(&key, value.as_bytes(), 7).unwrap().unwrap();
    assert_eq!(back.metadata().resource_version.as_deref(), Some("7"));
    back.metadata_mut().resource_version = None;
    assert_eq!(back, r, "the annotation is internal and goes away again");
}

#[test]
fn resource_version_is_not_stored() {
    let mut r = one("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t, resourceVersion: '12'}\n");
    r.metadata_mut().uid = Some("u-1".into());
    let (_, value) = encode(&r).unwrap();
    let json: Value = serde_json::from_str(&value).unwrap();
    assert!(json["metadata"].get("resourceVersion").is_none(), "{value}");
    assert_eq!(json["metadata"]["uid"], "u-1");
    assert!(json["metadata"].get("annotations").is_none(), "only policies get the annotation: {value}");
}

#[test]
fn legacy_default_tier_keys_and_names_are_read() {
    let key = format!("{PREFIX}globalnetworkpolicies/default.p");
    let value = r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"default.p"},"spec":{"tier":"default"}}"#;
    let r = decode(&key, value.as_bytes(), 3).unwrap().unwrap();
    assert_eq!(r.name(), "p");
    // A non-default tier's prefixed key with the original name in the annotation.
    let key = format!("{PREFIX}networkpolicies/shop/sec.p");
    let value = r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkPolicy","metadata":{"name":"sec.p","namespace":"shop","annotations":{"projectcalico.org/metadata":"{\"name\":\"p\"}"}},"spec":{"tier":"sec"}}"#;
    let r = decode(&key, value.as_bytes(), 3).unwrap().unwrap();
    assert_eq!(r.key(), ResourceKey { kind: Kind::NetworkPolicy, namespace: Some("shop".into()), name: "p".into() });
    assert!(r.metadata().annotations.is_empty());
}

#[test]
fn name_and_namespace_come_from_the_key_when_missing() {
    let key = format!("{PREFIX}networksets/shop/db");
    let value = r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkSet","spec":{"nets":["10.0.0.0/8"]}}"#;
    let r = decode(&key, value.as_bytes(), 1).unwrap().unwrap();
    assert_eq!(r.key(), ResourceKey { kind: Kind::NetworkSet, namespace: Some("shop".into()), name: "db".into() });
}

#[test]
fn bad_values_name_key_and_field() {
    let cases: [(&str, &str, &str); 8] = [
        ("tiers/t", "{not json", "invalid JSON"),
        (
            "tiers/t",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"t"}}"#,
            "kind: Profile stored under tiers",
        ),
        (
            "tiers/t",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"u"}}"#,
            "metadata.name: \"u\" is not the key's name \"t\"",
        ),
        (
            "networksets/a/n",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkSet","metadata":{"name":"n","namespace":"b"}}"#,
            "metadata.namespace: \"b\" is not the key's namespace \"a\"",
        ),
        (
            "globalnetworkpolicies/p",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{"selector":"app =="}}"#,
            "spec.selector",
        ),
        (
            "tiers/t",
            r#"[{"apiVersion":"projectcalico.org/v3","kind":"Tier"},{"apiVersion":"projectcalico.org/v3","kind":"Tier"}]"#,
            "expected one resource, found 2",
        ),
        (
            "tiers/t",
            r#"{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t","annotations":{"projectcalico.org/metadata":"{"}}}"#,
            "metadata.annotations.projectcalico.org/metadata",
        ),
        ("networkpolicies/only-ns", "{}", "expected <plural>/<namespace>/<name>"),
    ];
    for (path, value, expected) in cases {
        let key = format!("{PREFIX}{path}");
        let err = decode(&key, value.as_bytes(), 1).unwrap_err().to_string();
        assert!(err.starts_with(&key), "{err}");
        assert!(err.contains(expected), "{path}: {err}");
    }
}

#[test]
fn other_keys_are_ignored_whatever_their_value() {
    let key = format!("{PREFIX}felixconfigurations/default");
    assert!(decode(&key, b"not json", 1).unwrap().is_none());
}
