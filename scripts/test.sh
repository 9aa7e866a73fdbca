#!/usr/bin/env bash
# The project's test command (README): format, lints, every test, every benchmark built,
# and the rule that the pure core pulls in no async runtime, gRPC, Kubernetes or etcd client.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== the sidecar build (alp-cli without default features) stays clean"
cargo clippy -p alp-cli --no-default-features --bins --locked -- -D warnings

echo "== fuzz targets type-check"
# fuzz/ is its own workspace (cargo fuzz builds it on nightly); checked here on stable so that its
# targets keep compiling. In the workspace's target dir, where clippy has just checked most of
# its dependencies. CUSTOM_LIBFUZZER_PATH makes libfuzzer-sys's build script name a library to
# link instead of compiling libFuzzer's C++ (about 45 s): a check links nothing.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" CUSTOM_LIBFUZZER_PATH=/nonexistent/libfuzzer.a \
  cargo check --manifest-path fuzz/Cargo.toml --locked --bins

echo "== pure crates stay pure"
for crate in alp-selector alp-ipset alp-http-path alp-model alp-engine alp-resources alp-calc alp-datastore; do
  if cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(tokio|tonic|kube|etcd-client|hyper) ' ; then
    echo "$crate depends on an edge crate" >&2
    exit 1
  fi
done

echo "== cargo test"
cargo test --workspace --locked

echo "== cargo bench --no-run"
cargo bench --workspace --locked --no-run
