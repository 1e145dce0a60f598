#!/bin/sh
# Builds bench/go/bin/memberlist-peer (the gossip benchmark's real peer, hashicorp/memberlist) OFFLINE.
#
# Debian ships Go and memberlist's sources (+ every dependency) under /usr/share/gocode/src, laid out as a
# GOPATH. So the build runs in GOPATH mode (GO111MODULE=off) with GOPATH=/usr/share/gocode and
# GOPROXY=off: no module download, no proxy.golang.org, no network at all. memberlist 0.2.2's only vendored
# dependency (sean-/seed) is resolved from its vendor/ directory the usual GOPATH way.
#
# Idempotent: installs the two Debian packages only when missing; rebuilds only when main.go is newer
# than the binary (or FORCE=1). Usage: native-scripts/build-memberlist-peer.sh
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/bench/go/memberlist-peer"
OUT="$ROOT/bench/go/bin/memberlist-peer"

missing=""
command -v go >/dev/null 2>&1 || missing="$missing golang-go"
[ -d /usr/share/gocode/src/github.com/hashicorp/memberlist ] || missing="$missing golang-github-hashicorp-memberlist-dev"
if [ -n "$missing" ]; then
  echo "build-memberlist-peer: installing$missing" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y $missing >&2
fi

if [ "${FORCE:-0}" != 1 ] && [ -x "$OUT" ] && [ "$OUT" -nt "$SRC/main.go" ]; then
  echo "$OUT (up to date)"
  exit 0
fi

mkdir -p "$(dirname "$OUT")"
cd "$SRC"
# GOFLAGS is cleared: -mod=... is refused in GOPATH mode. GOCACHE stays the user's default build cache.
env GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GONOSUMDB= GOSUMDB=off CGO_ENABLED=0 \
  go build -trimpath -o "$OUT.tmp" .
mv "$OUT.tmp" "$OUT"
echo "$OUT"
