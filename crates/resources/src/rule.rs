//! Calico's rule structures (`policy_common.go`): [`Rule`], [`EntityRule`], [`HttpMatch`], and
//! the int-or-string types [`Protocol`] and [`Port`] with Calico's own decoding
//! (`numorstring`).
//!
//! Every struct here rejects unknown fields: a misspelt or unsupported match criterion silently
//! dropped would widen the rule, and alp fails closed.

use std::{collections::BTreeMap, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, Visitor},
};

use crate::meta::null_default;

/// A rule's action. Calico accepts exactly these spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Allow the traffic.
    Allow,
    /// Deny the traffic.
    Deny,
    /// Log and continue with the next rule.
    Log,
    /// Skip to the next tier (`next-tier` on the wire).
    Pass,
}

impl Action {
    /// The spelling in a resource (`Allow`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "Allow",
            Action::Deny => "Deny",
            Action::Log => "Log",
            Action::Pass => "Pass",
        }
    }
}

/// A value of a policy's `types` (and a Kubernetes NetworkPolicy's `policyTypes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyType {
    /// The policy applies to traffic arriving at the selected endpoints.
    Ingress,
    /// The policy applies to traffic leaving the selected endpoints.
    Egress,
}

/// Calico's protocol names, exactly as the v3 validator accepts them, with their numbers.
pub const PROTOCOL_NAMES: [(&str, u8); 6] =
    [("TCP", 6), ("UDP", 17), ("ICMP", 1), ("ICMPv6", 58), ("SCTP", 132), ("UDPLite", 136)];

/// `numorstring.Protocol`: a protocol name or number.
///
/// Decoding is Calico's: a JSON number must fit in 0–255, and a string of decimal digits that
/// fits in a `u8` (`"6"`) is a number. Any other string is kept as a [`Protocol::Name`] and
/// judged by validation (names are case-sensitive in v3: `tcp` is rejected).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// An IP protocol number (valid: 1–255).
    Number(u8),
    /// A name (valid: one of [`PROTOCOL_NAMES`]).
    Name(String),
}

impl Protocol {
    /// The protocol number, for a number or a known name.
    pub fn number(&self) -> Option<u8> {
        match self {
            Protocol::Number(n) => Some(*n),
            Protocol::Name(s) => PROTOCOL_NAMES.iter().find(|(name, _)| name == s).map(|(_, n)| *n),
        }
    }

    /// Whether Calico's validator accepts it: a number 1–255 or a name of [`PROTOCOL_NAMES`].
    pub fn is_valid(&self) -> bool {
        match self {
            Protocol::Number(n) => *n != 0,
            Protocol::Name(s) => PROTOCOL_NAMES.iter().any(|(name, _)| name == s),
        }
    }

    /// `SupportsPorts()`: TCP, UDP or SCTP, by number or name (Calico also accepts the v1
    /// lower-case names here).
    pub fn supports_ports(&self) -> bool {
        match self {
            Protocol::Number(n) => matches!(n, 6 | 17 | 132),
            Protocol::Name(s) => matches!(s.as_str(), "TCP" | "UDP" | "SCTP" | "tcp" | "udp" | "sctp"),
        }
    }

    /// The backend (v1) form Felix sends: names lower-cased (`ToV1`), numbers as decimal.
    pub fn to_v1(&self) -> String {
        match self {
            Protocol::Number(n) => n.to_string(),
            Protocol::Name(s) => s.to_lowercase(),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Number(n) => write!(f, "{n}"),
            Protocol::Name(s) => f.write_str(s),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => serializer.serialize_u8(*n),
            Protocol::Name(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name or a number 0-255")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol::Number)
                    .map_err(|_| E::custom(format_args!("protocol number {v} is out of range 0-255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format_args!("protocol number {v} is out of range 0-255")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                Ok(parse_u8_decimal(v).map_or_else(|| Protocol::Name(v.to_owned()), Protocol::Number))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Go's `strconv.ParseUint(s, 10, 8)`: ASCII digits only (no sign), value ≤ 255.
fn parse_u8_decimal(s: &str) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `numorstring.Port`: a port, a `min:max` range or a named port.
///
/// Decoding is Calico's `UnmarshalJSON`: a number must fit in 0–65535; a string of digits is
/// a single port, `digits:digits` a range (min ≤ max), anything else a name matching
/// `[a-zA-Z0-9_.-]{1,128}`. Validation then requires ports ≥ 1 and names that are valid
/// Kubernetes port names (IANA service names).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// Ports `min..=max`; a single port has `min == max`.
    Range {
        /// First port.
        min: u16,
        /// Last port (inclusive).
        max: u16,
    },
    /// A named port, resolved against the endpoints' container ports.
    Named(String),
}

impl Port {
    /// A single port.
    pub fn single(port: u16) -> Port {
        Port::Range { min: port, max: port }
    }

    /// Calico's `PortFromString`.
    pub fn parse(s: &str) -> Result<Port, String> {
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if all_digits(s) {
            return s.parse::<u16>().map(Port::single).map_err(|_| format!("invalid port format ({s})"));
        }
        if let Some((lo, hi)) = s.split_once(':')
            && all_digits(lo)
            && all_digits(hi)
        {
            let min = lo.parse::<u16>().map_err(|_| format!("invalid minimum port number in range ({s})"))?;
            let max = hi.parse::<u16>().map_err(|_| format!("invalid maximum port number in range ({s})"))?;
            if min > max {
                return Err(format!(
                    "minimum port number ({min}) is greater than maximum port number ({max}) in port range"
                ));
            }
            return Ok(Port::Range { min, max });
        }
        let name_ok = (1..=128).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(format!("invalid name for named port ({s})"));
        }
        Ok(Port::Named(s.to_owned()))
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Range { min, max } if min == max => write!(f, "{min}"),
            Port::Range { min, max } => write!(f, "{min}:{max}"),
            Port::Named(name) => f.write_str(name),
        }
    }
}

impl Serialize for Port {
    /// Calico's `MarshalJSON`: a single port as a number, a range or a name as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Range { min, max } if min == max => serializer.serialize_u16(*min),
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a \"min:max\" range or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(format_args!("port {v} is out of range 0-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format_args!("port {v} is out of range 0-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Port::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `ICMPFields`: ICMP type (0–254) and code (0–255; only with a type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpFields {
    /// `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<i64>,
    /// `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// One entry of `http.paths`: exactly one of `exact` and `prefix` must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPath {
    /// Match the path exactly.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// Match a path prefix.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// `HTTPMatch`: methods (≤ 20, no duplicates) and paths (≤ 20), ANDed; entries of each ORed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    /// HTTP methods, e.g. `GET`.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Path matches.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<HttpPath>,
}

/// `ServiceAccountMatch`: names and a selector over the service accounts' labels, ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountMatch {
    /// Service account names.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A selector over service account labels.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub selector: String,
}

/// `ServiceMatch`: a Kubernetes Service by name (and namespace).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMatch {
    /// The Service's name.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its namespace; empty means the policy's namespace.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// `RuleMetadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMetadata {
    /// Free-form annotations.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `EntityRule`: the match criteria for one side (source or destination) of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityRule {
    /// CIDRs the address must be in.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// CIDRs the address must not be in.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<String>,
    /// A selector over endpoint labels.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// The negated selector.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub not_selector: String,
    /// A selector over namespace labels.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// Ports (numbers, ranges, names).
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Negated ports.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<Port>,
    /// Service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
    /// A Kubernetes Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
}

impl EntityRule {
    /// Whether no criterion is set (matches everything).
    pub fn is_empty(&self) -> bool {
        *self == EntityRule::default()
    }
}

/// A Calico `Rule`: match criteria (all ANDed) and an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// 4 or 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    /// The IP protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// The negated protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    /// ICMP type/code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    /// Negated ICMP type/code.
    #[serde(rename = "notICMP", default, skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    /// Source criteria.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "EntityRule::is_empty")]
    pub source: EntityRule,
    /// Destination criteria.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "EntityRule::is_empty")]
    pub destination: EntityRule,
    /// HTTP criteria (application layer; only on ingress rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
    /// Rule metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

impl Rule {
    /// A rule with just an action (matches everything).
    pub fn new(action: Action) -> Rule {
        Rule {
            action,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            source: EntityRule::default(),
            destination: EntityRule::default(),
            http: None,
            metadata: None,
        }
    }
}
