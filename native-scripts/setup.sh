#!/usr/bin/env bash
# Idempotent setup for a fresh Debian machine (run as root): Debian packages, Docker images, npm deps, build.
# Called by `npm start` and `npm test` (prestart/pretest). Each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(iproute2 iputils-ping curl nftables ipvsadm iptables conntrack dnsutils tcpdump iperf3 procps psmisc busybox-static docker.io etcd-server ${MESHD_EXTRA_PKGS:-})
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Local images of real servers (nginx, redis) and the task sandbox, from Debian packages with `docker
# import` (never pulled); starts dockerd via native-scripts/dockerd.sh. Skipped per image when up to date.
bash native-scripts/images.sh

# npm deps: install when node_modules is missing or older than the lockfile. A node_modules that is a
# symlink (a git worktree borrowing another checkout's deps) is never reinstalled from here: `npm ci`
# through the link would empty the other checkout's tree while its builds and tests use it.
if [ -L node_modules ]; then
  echo "setup: node_modules is a symlink to $(readlink -f node_modules); not installing through it"
elif [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  echo "setup: installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
fi

# The DNS server's native UDP path (native/meshd_udp.c, src/adapters/dns-server/native-udp.ts): built
# from source with Debian's compiler and npm's bundled node-gyp against the installed Node headers (never a
# header download: --nodedir). Rebuilt when the source is newer than the addon. A failed build does not stop
# setup: the DNS server then runs its pure-JS path and says so (stats `udp.path`, the agent's 'dns ready' log).
addon=native/build/Release/meshd_udp.node
if [ "$(uname -s)" = Linux ] && { [ ! -f "$addon" ] || [ native/meshd_udp.c -nt "$addon" ] || [ native/meshd_netns.c -nt "$addon" ] || [ native/binding.gyp -nt "$addon" ]; }; then
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  nodedir="$(npm config get nodedir 2>/dev/null || true)"
  if [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ "$nodedir" = null ]; then nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"; fi
  echo "setup: building the native DNS UDP addon (node-gyp, nodedir $nodedir)"
  if [ ! -f "$gyp" ] || ! [ -f "$nodedir/include/node/node_api.h" ] || ! (cd native && node "$gyp" rebuild --nodedir="$nodedir" --loglevel=error >/dev/null); then
    echo "setup: WARNING native DNS UDP addon not built (node-gyp at $gyp, headers in $nodedir/include/node, g++, make, python3 needed): DNS serves UDP with the JS path" >&2
  fi
fi

# build when any source is newer than the last build stamp: tsc, then the meshd/netctl bundles
# (scripts/bundle.mjs, over tsc's dist/src/bin entries: the one path everything execs).
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src test bench scripts tsconfig.json -newer "$stamp" \( -name '*.ts' -o -name '*.mjs' -o -name tsconfig.json \) 2>/dev/null | head -1)" ]; then
  echo "setup: building"
  npx tsc -p tsconfig.json
  node scripts/bundle.mjs
  touch "$stamp"
fi
