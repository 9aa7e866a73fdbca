//! Wire types shared by the agent and the authorizer: Felix's `felix` policy-sync messages
//! and Dikastes's `dikastes` health messages, with proto3 JSON (serde) for offline tools.
//! The gRPC service stubs sit behind the `grpc` feature so the pure crates stay free of tonic.

/// Felix's policy-sync API (`felix/proto/felixbackend.proto`, the part the authorizer uses).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod felix {
    include!(concat!(env!("OUT_DIR"), "/felix.rs"));
    include!(concat!(env!("OUT_DIR"), "/felix.serde.rs"));

    /// `PolicySync` client and server.
    #[cfg(feature = "grpc")]
    pub mod grpc {
        include!(concat!(env!("OUT_DIR"), "/grpc/felix.rs"));
    }

    /// A payload as one message of the stream. Felix's policy-sync server leaves
    /// `sequence_number` unset (0), and so does every alp sender.
    impl From<to_dataplane::Payload> for ToDataplane {
        fn from(payload: to_dataplane::Payload) -> Self {
            ToDataplane { sequence_number: 0, payload: Some(payload) }
        }
    }
}

/// Dikastes's health service (`app-policy/proto/healthz.proto`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod dikastes {
    include!(concat!(env!("OUT_DIR"), "/dikastes.rs"));
    include!(concat!(env!("OUT_DIR"), "/dikastes.serde.rs"));

    /// `Healthz` client and server.
    #[cfg(feature = "grpc")]
    pub mod grpc {
        include!(concat!(env!("OUT_DIR"), "/grpc/dikastes.rs"));
    }
}

/// Envoy's v2 and v2alpha `Authorization/Check` (Envoy ≤ 1.17): the request fields a check
/// uses, and the status-only response Dikastes gives.
#[cfg(feature = "grpc")]
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod envoy_v2 {
    pub mod envoy {
        pub mod api {
            pub mod v2 {
                pub mod core {
                    include!(concat!(env!("OUT_DIR"), "/envoy_v2/envoy.api.v2.core.rs"));
                }
            }
        }
        pub mod service {
            pub mod auth {
                pub mod v2 {
                    include!(concat!(env!("OUT_DIR"), "/envoy_v2/envoy.service.auth.v2.rs"));
                }
                pub mod v2alpha {
                    include!(concat!(env!("OUT_DIR"), "/envoy_v2/envoy.service.auth.v2alpha.rs"));
                }
            }
        }
    }
    pub mod google {
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/envoy_v2/google.rpc.rs"));
        }
    }
}

/// The policy-sync stream as proto3 JSON lines: one `felix.ToDataplane` per line.
pub mod jsonl {
    use crate::felix::ToDataplane;

    /// A line that is not a `ToDataplane` in proto3 JSON.
    #[derive(Debug, thiserror::Error)]
    #[error("line {line}: field {field}: {message}")]
    pub struct LineError {
        /// 1-based.
        pub line: usize,
        /// Where in the message, e.g. `activePolicyUpdate.policy.inboundRules[0].protocol`.
        pub field: String,
        /// What is wrong there, as serde reports it.
        pub message: String,
    }

    /// Decodes one line (lowerCamelCase or proto field names; enums by name or number).
    pub fn decode(line: &str) -> Result<ToDataplane, (String, String)> {
        let de = &mut serde_json::Deserializer::from_str(line);
        serde_path_to_error::deserialize(de).map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }

    /// Decodes every non-blank line.
    pub fn decode_lines(text: &str) -> Result<Vec<ToDataplane>, LineError> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| decode(l).map_err(|(field, message)| LineError { line: i + 1, field, message }))
            .collect()
    }

    /// Encodes one message as a single line (no newline).
    pub fn encode(msg: &ToDataplane) -> String {
        serde_json::to_string(msg).unwrap_or_default()
    }
}
