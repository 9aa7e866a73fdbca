#!/usr/bin/env bash
# Builds Calico's real dikastes (and its healthz probe) from source, as an outside peer for the
# interop tests (crates/cli/tests/interop.rs, ALP_DIKASTES). Never part of alp's product.
#
# The version is the one pinned in tools/dikastes/go.mod (a wrapper module, because Calico's
# go.mod has replace lines that `go install pkg@version` refuses). Everything the Go build
# writes (module cache, build cache, the binaries) goes under ALP_TOOLS_CACHE, outside the
# repo, so a second run only checks that the binaries are there.
#
# Usage: scripts/build-dikastes.sh   (env: ALP_TOOLS_CACHE, NICE, GO)
# The last line printed is the dikastes binary's path; healthz sits beside it.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
MOD="$REPO/tools/dikastes"
CACHE=${ALP_TOOLS_CACHE:-$HOME/.cache/alp-tools}

# Read the pin from go.mod itself so that bumping Calico is a go.mod edit only.
VERSION=$(awk '$1 == "require" && $2 == "github.com/projectcalico/calico" { print $3 }' "$MOD/go.mod")
[ -n "$VERSION" ] || { echo "no github.com/projectcalico/calico pin in $MOD/go.mod" >&2; exit 1; }
OUT="$CACHE/dikastes-$VERSION"

if [ -x "$OUT/dikastes" ] && [ -x "$OUT/healthz" ]; then
  echo "$OUT/dikastes"
  exit 0
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$GO" ] || { echo "no Go toolchain (set GO=/path/to/go)" >&2; exit 1; }

export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" GOPATH="$CACHE/gopath"
# readonly: a build must never rewrite the committed go.sum. CGO off, as Calico's own
# (non-FIPS) release build does, which also makes the binaries static.
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
COMMIT=${VERSION##*-}
LDFLAGS="-s -w -X github.com/projectcalico/calico/pkg/buildinfo.Version=$VERSION"
LDFLAGS+=" -X github.com/projectcalico/calico/pkg/buildinfo.GitRevision=$COMMIT"

mkdir -p "$OUT"
cd "$MOD"
# The CPU is shared with other work: build at low priority, and into temporary names so that
# an interrupted build never leaves a binary that the check above would take as done.
for cmd in dikastes healthz; do
  echo "building $cmd $VERSION (a few minutes the first time)" >&2
  nice -n "${NICE:-10}" "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$OUT/$cmd.tmp" \
    "github.com/projectcalico/calico/app-policy/cmd/$cmd"
  mv "$OUT/$cmd.tmp" "$OUT/$cmd"
done
# The build cache (~1.6 GB) serves no later run: the check above finds the binaries.
rm -rf "$GOCACHE"
echo "$OUT/dikastes"
