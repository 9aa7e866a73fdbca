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
