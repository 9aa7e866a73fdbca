use super::*;

fn er(f: impl FnOnce(&mut EntityRule)) -> EntityRule {
    let mut e = EntityRule::default();
    f(&mut e);
    e
}

#[test]
fn entity_selector_table() {
    let cases: Vec<(EntityRule, Option<&str>, &str)> = vec![
        (er(|_| {}), Some("ns"), ""),
        (er(|_| {}), None, ""),
        (er(|e| e.selector = "app == 'a'".into()), None, "app == 'a'"),
        (er(|e| e.selector = "app == 'a'".into()), Some("ns"), "(projectcalico.org/namespace == 'ns') && (app == 'a')"),
        (er(|e| e.not_selector = "app == 'a'".into()), Some("ns"), "projectcalico.org/namespace == 'ns'"),
        (er(|e| e.not_selector = "app == 'a'".into()), None, ""),
        (er(|e| e.namespace_selector = "env == 'x'".into()), Some("ns"), "pcns.env == \"x\""),
        (er(|e| e.namespace_selector = "all()".into()), None, "has(projectcalico.org/namespace)"),
        (er(|e| e.namespace_selector = "global()".into()), None, "!has(projectcalico.org/namespace)"),
        (
            er(|e| {
                e.namespace_selector = "env == 'x'".into();
                e.selector = "app == 'a'".into();
            }),
            Some("ns"),
            "(pcns.env == \"x\") && (app == 'a')",
        ),
        (
            er(|e| {
                e.service_accounts =
                    Some(ServiceAccountMatch { names: vec!["b".into(), "a".into()], selector: String::new() })
            }),
            Some("ns"),
            "(projectcalico.org/namespace == 'ns') && (projectcalico.org/serviceaccount in {\"a\", \"b\"})",
        ),
        (
            er(|e| {
                e.service_accounts =
                    Some(ServiceAccountMatch { names: vec!["a".into()], selector: "role == 'db'".into() });
                e.selector = "app == 'a'".into();
            }),
            None,
            "((pcsa.role == \"db\") && (projectcalico.org/serviceaccount in {\"a\"})) && (app == 'a')",
        ),
    ];
    for (e, ns, want) in cases {
        assert_eq!(entity_selector(&e, ns).unwrap(), want, "{e:?} in {ns:?}");
    }
    assert_eq!(entity_selector(&er(|e| e.namespace_selector = "((".into()), None), Err(BadSelector));
}

#[test]
fn not_selector_is_combined_into_a_positive_one() {
    let e = er(|e| {
        e.selector = "app == 'a'".into();
        e.not_selector = "b == 'c'".into();
    });
    let s = side_selectors(&e, None);
    assert!(s.negative.is_none());
    assert_eq!(s.positive.unwrap().unwrap().to_string(), "(app == \"a\" && !b == \"c\")");
    let e = er(|e| e.not_selector = "b == 'c'".into());
    let s = side_selectors(&e, Some("ns"));
    assert_eq!(s.positive.unwrap().unwrap().to_string(), "(projectcalico.org/namespace == \"ns\" && !b == \"c\")");
}

#[test]
fn protocols_and_versions() {
    let mut r = Rule::new(Action::Pass);
    r.protocol = Some(Protocol::Name("ICMPv6".into()));
    let mut sets = BTreeMap::new();
    let p = convert_rule(&r, None, &mut sets);
    assert_eq!(p.action, "next-tier");
    assert_eq!(p.ip_version, IpVersion::Ipv6 as i32);
    assert_eq!(p.protocol.unwrap().number_or_name, Some(NumberOrName::Name("icmpv6".into())));
    r.protocol = Some(Protocol::Number(6));
    let p = convert_rule(&r, None, &mut sets);
    assert_eq!(p.protocol.unwrap().number_or_name, Some(NumberOrName::Number(6)));
    assert_eq!(p.ip_version, IpVersion::Any as i32);
    assert!(sets.is_empty());
    assert_eq!(named_port_protocol(Some(&Protocol::Name("UDP".into()))), "udp");
    assert_eq!(named_port_protocol(Some(&Protocol::Number(132))), "sctp");
    assert_eq!(named_port_protocol(None), "tcp");
}

#[test]
fn nets() {
    assert_eq!(
        src_nets(&["10.0.0.5/24".into(), "10.1.1.1".into(), "fd00::1".into()]),
        ["10.0.0.5/24", "10.1.1.1/32", "fd00::1/128"]
    );
    assert_eq!(dst_nets(&["10.0.0.5/24".into(), "bogus".into()]), ["10.0.0.0/24", "bogus"]);
}
