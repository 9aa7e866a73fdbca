#!/usr/bin/env bash
# The project's test command (README): format, lints, every test, every benchmark built,
# and the rule that the pure core pulls in no async runtime, gRPC, Kubernetes or etcd client.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== the repository stands alone"
# A clone must build, test and read with nothing beside it: no tracked file may point into the
# sibling folder the vectors were first kept in. vectors/README.md, which says where they came
# from, is the one exception. The pattern is built in two pieces so that this file's own text
# does not match it.
outside='..''/shared'
mapfile -d '' -t tracked < <(git ls-files -z -- ':!:vectors/README.md')
if [[ ${#tracked[@]} -eq 0 ]]; then
  echo "git ls-files listed no file: run this from a git checkout" >&2
  exit 1
fi
rc=0
offending=$(git grep -l -I -F -e "$outside" -- "${tracked[@]}") || rc=$?
if [[ $rc -eq 0 ]]; then
  echo "these tracked files mention $outside (only vectors/README.md may):" >&2
  echo "$offending" >&2
  exit 1
elif [[ $rc -ne 1 ]]; then
  echo "git grep failed (exit $rc)" >&2
  exit 1
fi

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
for crate in alp-selector alp-ipset alp-http-path alp-model alp-engine alp-resources alp-felix alp-calc alp-datastore; do
  if cargo tree --locked -p "$crate" -e normal --prefix none | grep -E '^(tokio|tonic|kube|etcd-client|hyper) ' ; then
    echo "$crate depends on an edge crate" >&2
    exit 1
  fi
done

echo "== cargo test"
cargo test --workspace --locked

echo "== cargo bench --no-run"
cargo bench --workspace --locked --no-run
