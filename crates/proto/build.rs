//! Compiles Felix's policy-sync and health protos (and Envoy's v2 ext_authz with `grpc`) with prost.
use std::{env, error::Error, path::PathBuf};

const PROTOS: &[&str] = &["proto/felixbackend.proto", "proto/healthz.proto"];

/// Envoy's v2 and v2alpha ext_authz services (with the `grpc` feature).
#[cfg(feature = "grpc")]
const ENVOY_V2_PROTOS: &[&str] =
    &["proto/envoy/service/auth/v2/external_auth.proto", "proto/envoy/service/auth/v2alpha/external_auth.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptors = out.join("descriptors.bin");
    println!("cargo:rerun-if-changed=build.rs");
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=proto/envoy");
    println!("cargo:rerun-if-changed=proto/google");

    // Maps in key order: deterministic JSON for golden tests and `alp calc`.
    prost_build::Config::new()
        .file_descriptor_set_path(&descriptors)
        .btree_map(["."])
        .compile_protos(PROTOS, &["proto"])?;

    let set = std::fs::read(&descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&set)?
        .btree_map(["."])
        .ignore_unknown_fields()
        .build(&[".felix", ".dikastes"])?;

    #[cfg(feature = "grpc")]
    {
        let grpc_out = out.join("grpc");
        std::fs::create_dir_all(&grpc_out)?;
        tonic_prost_build::configure()
            .out_dir(&grpc_out)
            .build_client(true)
            .build_server(true)
            .extern_path(".felix", "crate::felix")
            .extern_path(".dikastes", "crate::dikastes")
            .compile_protos(PROTOS, &["proto"])?;

        let v2_out = out.join("envoy_v2");
        std::fs::create_dir_all(&v2_out)?;
        tonic_prost_build::configure()
            .out_dir(&v2_out)
            .build_client(true)
            .build_server(true)
            .compile_protos(ENVOY_V2_PROTOS, &["proto"])?;
    }
    Ok(())
}
