/// A workload identity parsed from a SPIFFE id `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    /// The trust domain, between `spiffe://` and `/ns/`.
    pub trust_domain: &'a str,
    /// The workload's namespace.
    pub namespace: &'a str,
    /// The workload's service account.
    pub service_account: &'a str,
}

impl<'a> SpiffeId<'a> {
    /// Parses exactly what Calico's `^spiffe://[^/]+/ns/([^/]+)/sa/([^/]+)$` accepts.
    pub fn parse(principal: &'a str) -> Option<Self> {
        let rest = principal.strip_prefix("spiffe://")?;
        let (trust_domain, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix("ns/")?;
        let (namespace, rest) = rest.split_once('/')?;
        let service_account = rest.strip_prefix("sa/")?;
        let segment_ok = |s: &str| !s.is_empty() && !s.contains('/');
        (segment_ok(trust_domain) && segment_ok(namespace) && segment_ok(service_account)).then_some(SpiffeId {
            trust_domain,
            namespace,
            service_account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_calicos_pattern() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/steve").unwrap();
        assert_eq!((id.trust_domain, id.namespace, id.service_account), ("cluster.local", "default", "steve"));
        for bad in [
            "",
            "http://foo/ns/a/sa/b",
            "spiffe:///ns/a/sa/b",
            "spiffe://td/ns//sa/b",
            "spiffe://td/ns/a/sa/",
            "spiffe://td/ns/a/sa/b/c",
            "spiffe://td/x/ns/a/sa/b",
            "spiffe://td/ns/a/xa/b",
        ] {
            assert_eq!(SpiffeId::parse(bad), None, "{bad}");
        }
    }
}
