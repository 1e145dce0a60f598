#!/usr/bin/env bash
# Provisions one meshd VM (Debian 12, run as root by Vagrant; idempotent, safe to re-run
# with `vagrant provision`). Environment (set by the Vagrantfile):
#   MESHD_NODE_NAME, MESHD_ADVERTISE_ADDR, MESHD_SEEDS (IP:PORT,...), MESHD_ROLE (manager|worker),
#   MESHD_MANAGER_ADDR (IP:2377)
# Steps: kernel modules (ip_vs → IPVS dataplane, vxlan) → Node.js 20 (official nodejs.org
# tarball, checksum-verified; Debian 12 only ships Node 18) → copy the repo from /vagrant to
# /opt/meshd-src, run native-scripts/setup.sh there (Debian packages, npm ci, build) and
# `npm pack` it → `npm install -g` of that tarball (meshd, netctl on PATH: exactly what a user
# installs) → /etc/meshd config + gossip key → the package's systemd unit
# (native-scripts/meshd.service) → manager: cluster init + worker token into the synced folder
# (0600); worker: wait for that token and join.
set -euo pipefail

: "${MESHD_NODE_NAME:?}" "${MESHD_ADVERTISE_ADDR:?}" "${MESHD_ROLE:?}" "${MESHD_MANAGER_ADDR:?}"
NODE_VERSION="${MESHD_NODE_VERSION:-v20.18.1}"
SRC=/vagrant
BUILD=/opt/meshd-src
SHARED=/meshd-cluster
TOKEN="$SHARED/worker.token"
export DEBIAN_FRONTEND=noninteractive
log() { echo "provision[$MESHD_NODE_NAME]: $*"; }

# --- kernel: IPVS and VXLAN are modules in Debian's stock kernel --------------------------
log "loading kernel modules"
printf '%s\n' ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack vxlan br_netfilter > /etc/modules-load.d/meshd.conf
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack vxlan br_netfilter; do modprobe "$m"; done
cat > /etc/sysctl.d/90-meshd.conf <<'SYSCTL'
net.ipv4.ip_forward = 1
net.ipv4.vs.conntrack = 1
SYSCTL
sysctl -q --system || true

# --- Node.js 20 from nodejs.org (no third-party apt repository) ---------------------------
apt-get update -qq
# build-essential + python3: better-sqlite3 (the embedded store) compiles its native addon at install
apt-get install -y -qq --no-install-recommends ca-certificates curl xz-utils rsync build-essential python3 >/dev/null
if ! command -v node >/dev/null || [ "$(node --version)" != "$NODE_VERSION" ]; then
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "unsupported arch $(uname -m)" >&2; exit 1 ;; esac
  tarball="node-$NODE_VERSION-linux-$arch.tar.xz"
  log "installing Node.js $NODE_VERSION ($arch)"
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/$tarball" "https://nodejs.org/dist/$NODE_VERSION/$tarball"
  curl -fsSL -o "$tmp/SHASUMS256.txt" "https://nodejs.org/dist/$NODE_VERSION/SHASUMS256.txt"
  (cd "$tmp" && grep " $tarball\$" SHASUMS256.txt | sha256sum -c --quiet -)
  tar -xJf "$tmp/$tarball" -C /usr/local --strip-components=1 --no-same-owner
  rm -rf "$tmp"
fi
log "node $(node --version), npm $(npm --version)"

# --- the package: built from a local copy (building on the synced folder is slow and would share
# node_modules), packed, and installed the way users install it ---------------------------------
log "copying the repository to $BUILD"
mkdir -p "$BUILD"
rsync -a --delete --exclude node_modules --exclude dist --exclude .git --exclude 'vagrant/.cluster' --exclude 'vagrant/.vagrant' "$SRC/" "$BUILD/"
log "running native-scripts/setup.sh (Debian packages the daemon uses, npm ci, build)"
(cd "$BUILD" && bash native-scripts/setup.sh)
log "npm pack + npm install -g"
tgz=$(cd "$BUILD" && npm pack --pack-destination "$BUILD" --loglevel=error | tail -1)
npm install -g --allow-scripts=better-sqlite3,protobufjs --no-audit --no-fund --loglevel=error "$BUILD/$tgz"
PKG="$(npm root -g)/meshd"
command -v meshd >/dev/null && command -v netctl >/dev/null || { echo "meshd/netctl not on PATH after npm install -g" >&2; exit 1; }

# --- config and gossip key ------------------------------------------------------------------
install -d -m 700 /etc/meshd
install -m 600 "$SHARED/gossip.key" /etc/meshd/gossip.key
seeds_json=$(printf '%s' "${MESHD_SEEDS:-}" | awk -v RS=, 'NF { printf "%s\"%s\"", (n++ ? ", " : ""), $1 }')
cat > /etc/meshd/meshd.json <<CONF
{
  "nodeName": "$MESHD_NODE_NAME",
  "advertiseAddr": "$MESHD_ADVERTISE_ADDR",
  "controlSocket": "/run/meshd/meshd.sock",
  "dataDir": "/var/lib/meshd",
  "logLevel": "info",
  "gossip": { "preset": "lan", "seeds": [$seeds_json], "keyFile": "/etc/meshd/gossip.key" }
}
CONF
chmod 600 /etc/meshd/meshd.json
meshd --check-config /etc/meshd/meshd.json >/dev/null

# --- systemd unit: the one the package ships ------------------------------------------------------
install -m 644 "$PKG/native-scripts/meshd.service" /etc/systemd/system/meshd.service
systemctl daemon-reload
systemctl enable meshd >/dev/null 2>&1
systemctl restart meshd

log "waiting for the agent"
for _ in $(seq 1 60); do
  netctl info >/dev/null 2>&1 && break
  sleep 1
done
netctl info >/dev/null || { journalctl -u meshd --no-pager -n 50; exit 1; }

joined() { netctl cluster status --format json 2>/dev/null | grep -q '"joined": true'; }

# --- cluster ------------------------------------------------------------------------------------
if [ "$MESHD_ROLE" = manager ]; then
  if ! joined; then
    log "cluster init"
    netctl cluster init
  fi
  # Always rewrite the token: a re-created manager has a new CA, old tokens would be refused.
  (umask 077 && netctl cluster join-token worker -q > "$TOKEN.tmp" && mv "$TOKEN.tmp" "$TOKEN")
  log "worker token written to the synced folder (vagrant/.cluster/worker.token)"
else
  if ! joined; then
    log "waiting for the manager's worker token"
    for _ in $(seq 1 900); do [ -s "$TOKEN" ] && break; sleep 1; done
    [ -s "$TOKEN" ] || { echo "no worker token at $TOKEN after 15 min: is node1 up?" >&2; exit 1; }
    log "joining $MESHD_MANAGER_ADDR"
    for attempt in $(seq 1 30); do
      netctl cluster join --token-file "$TOKEN" "$MESHD_MANAGER_ADDR" && break
      [ "$attempt" -eq 30 ] && exit 1
      sleep 2
    done
  fi
fi
netctl cluster status
log "done"
