//! Felix's ids and hashes: IP-set ids (`s:`, `n:`, `svc:`), rule ids and the interface name of a
//! Kubernetes workload endpoint.

use alp_proto::felix::{Rule, RuleMetadata};
use base64::Engine as _;
use prost::Message as _;
use sha2::{Digest as _, Sha224};

/// `hash.MakeUniqueID(prefix, content)` (`libcalico-go/lib/hash/unique_id.go`):
/// `"<prefix>:" + base64url_nopad(SHA-224("<prefix>:" + content))`.
pub(crate) fn make_unique_id(prefix: &str, content: &str) -> String {
    let mut hasher = Sha224::new();
    hasher.update(prefix.as_bytes());
    hasher.update(b":");
    hasher.update(content.as_bytes());
    let mut id = format!("{prefix}:");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(hasher.finalize(), &mut id);
    id
}

/// The id of a named-port IP set (`IPSetData.UniqueID` in `felix/calc/rule_scanner.go`):
/// `make_unique_id("n", "<selector id>,<tcp|udp|sctp>,<port name>")`, where the selector id is
/// the `s:` id of the positive selector the named port is filtered by (`all()` when none).
pub(crate) fn named_port_set_id(selector_id: &str, protocol: &str, port_name: &str) -> String {
    make_unique_id("n", &format!("{selector_id},{protocol},{port_name}"))
}

/// The id of a `destination.services` IP set (`svc:`, IP and port) or a `source.services` one
/// (`svcnoport:`, addresses only), over `"<namespace>/<name>"`.
pub(crate) fn service_set_id(include_ports: bool, namespace: &str, name: &str) -> String {
    let prefix = if include_ports { "svc" } else { "svcnoport" };
    make_unique_id(prefix, &format!("{namespace}/{name}"))
}

/// Felix's `RuleIDLength`.
const RULE_ID_LEN: usize = 16;

/// `fillInRuleIDs` (`felix/calc/rule_convert.go`): each id chains the previous hash, so a
/// rule's id depends on its position and the rules before it. `h0 = SHA-224(seed)`, then
/// `h = SHA-224(h_prev ‖ marshal(rule without rule_id))`, id = first 16 characters of
/// base64url(h).
///
/// Approximate: the rule is marshalled with prost from alp's subset of `felixbackend.proto`;
/// fields alp does not model are absent either way, so ids match Felix's for the usual rules,
/// but rule metadata annotations are appended after the other fields in key order (Go's
/// marshalling of maps is not deterministic in the first place).
pub(crate) fn fill_in_rule_ids(rules: &mut [Rule], seed: &str) {
    let mut hash = Sha224::digest(seed.as_bytes()).to_vec();
    for rule in rules {
        rule.rule_id.clear();
        let metadata = rule.metadata.take();
        let mut data = rule.encode_to_vec();
        if let Some(meta) = &metadata {
            encode_metadata_sorted(meta, &mut data);
        }
        rule.metadata = metadata;
        let mut hasher = Sha224::new();
        hasher.update(&hash);
        hasher.update(&data);
        hash = hasher.finalize().to_vec();
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash);
        rule.rule_id = encoded.chars().take(RULE_ID_LEN).collect();
    }
}

/// Field 123 (`RuleMetadata`) with its map entries in key order.
fn encode_metadata_sorted(meta: &RuleMetadata, buf: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint, string};
    let mut entries: Vec<(&String, &String)> = meta.annotations.iter().collect();
    entries.sort();
    let mut inner = Vec::new();
    for (k, v) in entries {
        let mut entry = Vec::new();
        string::encode(1, k, &mut entry);
        string::encode(2, v, &mut entry);
        encode_key(1, WireType::LengthDelimited, &mut inner);
        encode_varint(entry.len() as u64, &mut inner);
        inner.extend_from_slice(&entry);
    }
    encode_key(123, WireType::LengthDelimited, buf);
    encode_varint(inner.len() as u64, buf);
    buf.extend_from_slice(&inner);
}

/// The host-side interface name Calico's CNI gives a Kubernetes pod
/// (`VethNameForWorkload`): `"cali"` + the first 11 hex digits of SHA-1(`"<ns>.<pod>"`).
pub(crate) fn veth_name_for_workload(namespace: &str, pod: &str) -> String {
    let digest = sha1(format!("{namespace}.{pod}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", hex.get(..11).unwrap_or_default())
}

/// SHA-1, used only to name interfaces as Calico does; not for security.
fn sha1(message: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_vectors() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn veth_name() {
        // python3: hashlib.sha1(b"shop.customer").hexdigest()[:11]
        assert_eq!(veth_name_for_workload("shop", "customer"), "cali87622d9d1ba");
    }

    #[test]
    fn unique_ids() {
        // python3: "n:" + b64url(sha224(b"n:" + b"<all() id>,tcp,http")) without padding
        assert_eq!(
            named_port_set_id("s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug", "tcp", "http"),
            "n:cl9_Kgeu4H0OGLbhovVR3NBLUOZscKeMK1Mu4A"
        );
        assert!(service_set_id(true, "ns", "svc").starts_with("svc:"));
        assert!(service_set_id(false, "ns", "svc").starts_with("svcnoport:"));
    }

    #[test]
    fn rule_ids_chain() {
        let allow = Rule { action: "allow".into(), ..Rule::default() };
        let mut a = vec![allow.clone(), allow.clone()];
        fill_in_rule_ids(&mut a, "seed");
        assert_eq!(a[0].rule_id.len(), 16);
        assert_ne!(a[0].rule_id, a[1].rule_id, "position matters");
        let mut b = vec![allow];
        fill_in_rule_ids(&mut b, "other seed");
        assert_ne!(a[0].rule_id, b[0].rule_id, "seed matters");
        let mut c = a.clone();
        fill_in_rule_ids(&mut c, "seed");
        assert_eq!(a, c, "deterministic, and the old id is not hashed");
    }
}
