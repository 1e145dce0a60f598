#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock; starts Debian's dockerd when none does.
#
# The one place that says how meshd starts its engine (setup, images.sh and test/helpers/docker.ts all
# call this script), so tests and setup never run two differently-configured daemons:
#   --storage-driver=vfs   works on any filesystem (overlayfs-on-overlayfs fails in nested hosts);
#   --iptables=false --ip6tables=false --ip-masq=false
#                          the engine must not touch the root namespace's firewall (network safety);
#   --bridge=none          containers start with network none; meshd plumbs their namespaces itself.
# Log: /var/log/meshd-dockerd.log. Exit 0 once `docker version` answers; 3 if docker.io is not installed;
# 2 if the engine did not answer within MESHD_DOCKERD_TIMEOUT seconds (default 60) or died (the log tail
# is printed); 1 on other errors (not root).
set -euo pipefail

LOG=/var/log/meshd-dockerd.log
TIMEOUT=${MESHD_DOCKERD_TIMEOUT:-60}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "dockerd.sh: docker.io is not installed (native-scripts/setup.sh installs it)" >&2
  exit 3
fi
if [ "$(id -u)" -ne 0 ]; then echo "dockerd.sh: need root to start dockerd" >&2; exit 1; fi

# A concurrent caller may be starting it too: serialize, then look again.
exec 9>/run/meshd-dockerd.lock
flock 9
if answers; then exit 0; fi

echo "dockerd.sh: starting dockerd $(date -Is)" >>"$LOG"
setsid dockerd --storage-driver=vfs --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
  </dev/null >>"$LOG" 2>&1 9>&- &
pid=$!
deadline=$((SECONDS + TIMEOUT))
while ! answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dockerd.sh: dockerd (pid $pid) exited; last lines of $LOG:" >&2; tail -n 20 "$LOG" >&2; exit 2
  fi
  if ((SECONDS >= deadline)); then
    echo "dockerd.sh: dockerd (pid $pid) did not answer \`docker version\` within ${TIMEOUT}s; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2; exit 2
  fi
  sleep 0.2
done
echo "dockerd.sh: dockerd pid $pid answers" >&2
