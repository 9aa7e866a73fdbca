use super::*;

fn rk(kind: Kind, ns: Option<&str>, name: &str) -> ResourceKey {
    ResourceKey { kind, namespace: ns.map(str::to_owned), name: name.to_owned() }
}

#[test]
fn keys_round_trip_for_every_stored_kind() {
    let cases = [
        (Kind::GlobalNetworkPolicy, None, "globalnetworkpolicies/p"),
        (Kind::StagedGlobalNetworkPolicy, None, "stagedglobalnetworkpolicies/p"),
        (Kind::NetworkPolicy, Some("shop"), "networkpolicies/shop/p"),
        (Kind::StagedNetworkPolicy, Some("shop"), "stagednetworkpolicies/shop/p"),
        (Kind::StagedKubernetesNetworkPolicy, Some("shop"), "stagedkubernetesnetworkpolicies/shop/p"),
        (Kind::Tier, None, "tiers/p"),
        (Kind::Profile, None, "profiles/p"),
        (Kind::WorkloadEndpoint, Some("shop"), "workloadendpoints/shop/p"),
        (Kind::GlobalNetworkSet, None, "globalnetworksets/p"),
        (Kind::NetworkSet, Some("shop"), "networksets/shop/p"),
    ];
    for (kind, ns, path) in cases {
        let key = rk(kind, ns, "p");
        let etcd = format!("{PREFIX}{path}");
        assert_eq!(etcd_key(&key).unwrap(), etcd, "{kind}");
        assert_eq!(parse_key(&etcd), Ok(Some(key)), "{etcd}");
    }
    let stored = Kind::ALL.into_iter().filter(|k| plural(*k).is_some()).count();
    assert_eq!(stored, cases.len(), "every stored kind is covered");
}

#[test]
fn kinds_by_command_line_name() {
    assert_eq!(kind_named("GlobalNetworkPolicy"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(kind_named("globalnetworkpolicy"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(kind_named("globalnetworkpolicies"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(kind_named("GNP"), Some(Kind::GlobalNetworkPolicy));
    assert_eq!(kind_named("stagedkubernetesnetworkpolicies"), Some(Kind::StagedKubernetesNetworkPolicy));
    assert_eq!(kind_named("wep"), Some(Kind::WorkloadEndpoint));
    assert_eq!(kind_named("tiers"), Some(Kind::Tier));
    assert_eq!(kind_named("Pod"), None);
    assert_eq!(kind_named("KubernetesNetworkPolicy"), None);
    assert_eq!(kind_named("felixconfiguration"), None);
}

#[test]
fn profile_names_with_dots_are_one_segment() {
    let key = rk(Kind::Profile, None, "ksa.shop.web");
    assert_eq!(etcd_key(&key).unwrap(), "/calico/resources/v3/projectcalico.org/profiles/ksa.shop.web");
    assert_eq!(
        parse_key("/calico/resources/v3/projectcalico.org/profiles/kns.shop"),
        Ok(Some(rk(Kind::Profile, None, "kns.shop")))
    );
}

#[test]
fn kubernetes_kinds_have_no_key() {
    for kind in [Kind::Pod, Kind::Namespace, Kind::ServiceAccount, Kind::KubernetesNetworkPolicy] {
        let err = etcd_key(&rk(kind, Some("shop"), "x")).unwrap_err();
        assert!(matches!(err, Error::NotStored { kind: k } if k == kind), "{err}");
        assert!(err.to_string().contains(kind.as_str()), "{err}");
    }
}

#[test]
fn unsafe_names_are_refused() {
    assert!(etcd_key(&rk(Kind::Tier, None, "a/b")).is_err());
    assert!(etcd_key(&rk(Kind::Tier, None, "")).is_err());
    assert!(etcd_key(&rk(Kind::NetworkPolicy, None, "p")).is_err(), "namespaced kind without a namespace");
    assert!(etcd_key(&rk(Kind::NetworkPolicy, Some("a/b"), "p")).is_err());
}

#[test]
fn other_keys_are_ignored_and_malformed_ones_reported() {
    for ignored in [
        "/calico/resources/v3/projectcalico.org/felixconfigurations/default",
        "/calico/resources/v3/projectcalico.org/nodes/n1",
        "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
        "/calico/resources/v3/projectcalico.org/tiers",
        "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
        "/calico/resources/v3/projectcalico.org/",
    ] {
        assert_eq!(parse_key(ignored), Ok(None), "{ignored}");
    }
    assert_eq!(parse_key(&format!("{PREFIX}networkpolicies/shop")), Err(KeyShape::Namespaced));
    assert_eq!(parse_key(&format!("{PREFIX}networkpolicies/shop/p/x")), Err(KeyShape::Namespaced));
    assert_eq!(parse_key(&format!("{PREFIX}networkpolicies/shop/")), Err(KeyShape::Namespaced));
    assert_eq!(parse_key(&format!("{PREFIX}tiers/a/b")), Err(KeyShape::ClusterScoped));
    assert_eq!(parse_key(&format!("{PREFIX}tiers/")), Err(KeyShape::ClusterScoped));
}

#[test]
fn prefixes_and_range_ends() {
    assert_eq!(kind_prefix(Kind::NetworkPolicy, Some("shop")).unwrap(), format!("{PREFIX}networkpolicies/shop/"));
    assert_eq!(kind_prefix(Kind::NetworkPolicy, None).unwrap(), format!("{PREFIX}networkpolicies/"));
    assert_eq!(kind_prefix(Kind::Tier, Some("ignored")).unwrap(), format!("{PREFIX}tiers/"));
    assert_eq!(range_end("/a/"), b"/a0");
    assert_eq!(range_end("a\u{7f}"), [b'a', 0x80]);
}
