#!/usr/bin/env bash
# Local Docker images of real third-party servers, made from Debian packages with `docker import` —
# never pulled from a registry (the project's rule; the lab has no registry access anyway).
#
#   meshd/sandbox:local   The per-task sandbox (Kubernetes' pause container): holds a task's network
#                         namespace so meshd can plumb it before the application container starts with
#                         `--network container:SANDBOX`. busybox-static only; CMD sleeps forever and exits 0
#                         at once on SIGTERM/SIGINT (PID 1 ignores signals it has no handler for, so it traps).
#   meshd/busybox:local   busybox-static with every applet linked in /bin (sh, nc, wget, httpd, nslookup…),
#                         PATH=/bin. For tests and as a small client image.
#   meshd/nginx:1, :2     Debian's nginx (the package that ships /usr/sbin/nginx: `nginx` in bookworm,
#                         nginx-light / nginx-core in older releases) + nginx-common's /etc/nginx, its
#                         libraries, www-data user, plus busybox in /bin. CMD `nginx -g 'daemon off;'`,
#                         listens on :80 and answers every path with `nginx v1 <hostname>` (v2: `nginx v2 …`)
#                         so tests can tell tasks and tags apart. Stop signal is TERM (fast shutdown): Docker
#                         20.10's `import --change` does not accept STOPSIGNAL; pass QUIT per service for a
#                         graceful stop.
#   meshd/redis:local     Debian's redis-server + redis-cli, their libraries, plus busybox. CMD runs it in the
#                         foreground: `redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --save ''
#                         --appendonly no` (no persistence), WORKDIR /data. Stops on TERM.
#
# How: `apt-get download` the .debs into $CACHE/debs (no maintainer scripts run, nothing installed on the
# host), `dpkg-deb -x` them, copy the binaries into a fresh root, and copy the libraries `ldd` names:
# from the host when its own Debian packages have them, else from .debs of the package's dependencies
# (`apt-cache depends`, lib* packages not installed here) downloaded the same way. Then tar | docker import.
#
# Idempotent: each image carries a label meshd.recipe = sha256 of its recipe (the bash functions that
# build it, without comments) and of the package versions it uses; an image whose tag exists with the
# same label is skipped, so a warm run is a few `docker image inspect`s. A rebuilt tag's old image is
# removed when no container uses it.
#
# Rebuild: `bash native-scripts/images.sh` (setup.sh calls it); force one image with
# `docker rmi meshd/nginx:1 && bash native-scripts/images.sh`; force all with MESHD_IMAGES_FORCE=1.
# Cache: MESHD_IMAGE_CACHE (default /var/cache/meshd/images); reruns need no network once it is filled.
# Needs root and a Docker engine; native-scripts/dockerd.sh starts Debian's dockerd when none answers.
set -euo pipefail
trap 'echo "images.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."

CACHE=${MESHD_IMAGE_CACHE:-/var/cache/meshd/images}
DEBS=$CACHE/debs  # downloaded .debs, named as apt-get download names them
XDIR=$CACHE/x     # one dpkg-deb -x tree per .deb
ARCH=$(dpkg --print-architecture)

die() { echo "images.sh: $*" >&2; exit 1; }
log() { echo "images.sh: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------------------

# apt-cache is slow here (Debian's container config disables its pkgcache: every call parses all lists),
# so candidate version and architecture are memoized per state of apt's lists, one line "pkg version arch"
# ("pkg - -" when apt does not know it).
APTINFO=$CACHE/apt-info.$(stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null | sha256sum | cut -c1-16)

# Prints "pkg version arch" for each given package, asking apt-cache once for those not memoized yet.
pkg_info() {
  local p; local -a ask=()
  for p in "$@"; do awk -v p="$p" '$1 == p {f = 1} END {exit !f}' "$APTINFO" 2>/dev/null || ask+=("$p"); done
  if ((${#ask[@]})); then
    apt-cache show --no-all-versions "${ask[@]}" 2>/dev/null | awk '
      /^Package: / {p = $2} /^Version: / {v = $2} /^Architecture: / {a = $2}
      /^$/ {if (p != "") print p, v, a; p = ""} END {if (p != "") print p, v, a}' >>"$APTINFO"
    for p in "${ask[@]}"; do awk -v p="$p" '$1 == p {f = 1} END {exit !f}' "$APTINFO" || echo "$p - -" >>"$APTINFO"; done
  fi
  for p in "$@"; do awk -v p="$p" '$1 == p {print; exit}' "$APTINFO"; done
}

# Candidate version of one package, or empty when apt does not know it.
candidate() { pkg_info "$1" | awk '$2 != "-" {print $2}'; }

host_has() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Downloads (once) the candidate .deb of $1 and extracts it (once); prints the extracted tree's path.
fetch() {
  local pkg=$1 ver arch file dir
  read -r _ ver arch < <(pkg_info "$pkg")
  [ "$ver" != - ] || die "apt knows no package '$pkg' (apt-get update?)"
  file=$DEBS/${pkg}_${ver//:/%3a}_${arch}.deb
  if [ ! -f "$file" ]; then
    mkdir -p "$DEBS"
    chown _apt "$DEBS" 2>/dev/null || true  # apt downloads as _apt; without this it warns and runs as root
    log "downloading $pkg $ver"
    (cd "$DEBS" && apt-get download -q=2 "$pkg" >&2) || die "apt-get download $pkg failed"
    [ -f "$file" ] || die "apt-get download $pkg did not write $file"
  fi
  dir=$XDIR/$(basename "$file" .deb)
  if [ ! -f "$dir/.extracted" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    dpkg-deb -x "$file" "$dir" || die "dpkg-deb -x $file failed"
    touch "$dir/.extracted"
  fi
  echo "$dir"
}

# Dependencies (Depends/Pre-Depends) of the given packages that are shared-library packages (lib*)
# not installed on this host: those are the libraries the host cannot lend.
lib_deps_not_on_host() {
  local d
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null \
    | awk '/^ *(Pre)?Depends: [^<]/ {print $2}' | sort -u | while read -r d; do
      case $d in lib*) host_has "$d" || echo "$d" ;; esac
    done
}

# --- image roots ------------------------------------------------------------------------------------

# A fresh root with the merged-/usr layout of Debian (lib, lib64 → usr/…), /tmp, /etc basics.
new_root() {
  local root=$1
  mkdir -p "$root"/{bin,etc,tmp,run,usr/lib,usr/lib64,usr/bin,usr/sbin,var/tmp}
  ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# busybox-static from the host's package; with "links", every applet as a symlink in /bin.
add_busybox() {
  local root=$1 mode=${2:-} a
  cp /bin/busybox "$root/bin/busybox"
  if [ "$mode" = links ]; then
    for a in $(/bin/busybox --list); do
      [ "$a" = busybox ] || [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
    done
  fi
}

# Copies into $root the shared libraries (and the ELF interpreter) that the given binaries of the
# root need, resolving libraries the host lacks from the lib* dependencies of $pkgs (downloaded .debs).
add_libs() {
  local root=$1; shift
  local -a bins=() pkgs=() fetched=()
  while [ "$1" != -- ]; do bins+=("$root/$1"); shift; done; shift
  pkgs=("$@")
  local libpath="" round out missing new p dir path rel
  for round in 1 2 3 4 5; do
    out=$(LD_LIBRARY_PATH=$libpath ldd "${bins[@]}" 2>&1) || die "ldd failed on ${bins[*]}: $out"
    missing=$(awk '/not found/ {print $1}' <<<"$out" | sort -u)
    [ -z "$missing" ] && break
    new=$(lib_deps_not_on_host "${pkgs[@]}" | grep -vxF -f <(printf '%s\n' "${fetched[@]}" "") || true)
    [ -n "$new" ] || die "no Debian package found for $(echo $missing) (needed by ${bins[*]})"
    for p in $new; do
      dir=$(fetch "$p"); fetched+=("$p"); pkgs+=("$p")
      libpath=$libpath${libpath:+:}$(find "$dir" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
    done
  done
  [ -z "$missing" ] || die "libraries still missing after 5 rounds: $(echo $missing)"
  # "soname => /path (addr)" and the interpreter line "/lib64/ld-linux-x86-64.so.2 (addr)".
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' <<<"$out" | sort -u | while read -r path; do
    case $path in
      "$XDIR"/*) rel=/${path#"$XDIR"/*/} ;;  # from a downloaded .deb: its path inside the package
      *) rel=$path ;;                         # from the host's own packages
    esac
    mkdir -p "$root$(dirname "$rel")"
    cp -L "$path" "$root$rel"
  done
}

# tar | docker import with the given --change lines, labelled with the recipe hash.
import_root() {
  local root=$1 tag=$2 hash=$3; shift 3
  local -a changes=(--change "LABEL meshd.recipe=$hash")
  local c old
  for c in "$@"; do changes+=(--change "$c"); done
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | docker import "${changes[@]}" - "$tag" >/dev/null \
    || die "docker import $tag failed"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
    docker rmi "$old" >/dev/null 2>&1 || log "old image of $tag ($old) kept: a container still uses it"
  fi
}

# --- recipes ----------------------------------------------------------------------------------------

build_sandbox() {
  local root=$1 tag=$2 hash=$3
  new_root "$root"; add_busybox "$root"
  # `wait` on a background sleep is interruptible, so the TERM trap runs at once (a foreground sleep
  # would delay it); PID 1 exiting takes the sleep with it.
  import_root "$root" "$tag" "$hash" 'ENV PATH=/bin' \
    'CMD ["/bin/busybox","sh","-c","trap \"exit 0\" TERM INT; while :; do /bin/busybox sleep 86400 & wait $!; done"]'
}

build_busybox() {
  local root=$1 tag=$2 hash=$3
  new_root "$root"; add_busybox "$root" links
  import_root "$root" "$tag" "$hash" 'ENV PATH=/bin' 'CMD ["sh"]'
}

# The package that ships /usr/sbin/nginx in this release (bookworm: nginx; older: nginx-light/-core).
nginx_pkg() {
  local p
  for p in nginx nginx-light nginx-core nginx-full; do
    [ -n "$(candidate "$p")" ] || continue
    [ -x "$(fetch "$p")/usr/sbin/nginx" ] && { echo "$p"; return; }
  done
  die "no Debian package in apt's lists ships /usr/sbin/nginx (tried nginx nginx-light nginx-core nginx-full)"
}

build_nginx() {
  local root=$1 tag=$2 hash=$3 version=$4 pkg bin common
  pkg=$(nginx_pkg); bin=$(fetch "$pkg"); common=$(fetch nginx-common)
  new_root "$root"; add_busybox "$root" links
  cp -a "$bin/usr/sbin/nginx" "$root/usr/sbin/nginx"
  cp -a "$common/etc/nginx" "$root/etc/nginx"
  mkdir -p "$root"/var/log/nginx "$root"/var/lib/nginx "$root"/etc/nginx/modules-enabled "$root"/usr/share/nginx
  cp -a "$common/usr/share/nginx/html" "$root/usr/share/nginx/html"
  echo 'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin' >>"$root/etc/passwd"
  echo 'www-data:x:33:' >>"$root/etc/group"
  # Our own nginx.conf: every path answers with the version and the container's hostname, so a test
  # can tell tags (v1/v2) and tasks apart; logs go to the container's stdout/stderr.
  cat >"$root/etc/nginx/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /dev/stderr warn;
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    server_tokens off;
    server {
        listen 80 default_server;
        location / {
            default_type text/plain;
            return 200 "nginx v$version \$hostname\n";
        }
    }
}
EOF
  add_libs "$root" usr/sbin/nginx -- "$pkg"
  import_root "$root" "$tag" "$hash" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'EXPOSE 80/tcp' \
    'CMD ["nginx","-g","daemon off;"]'
}

build_redis() {
  local root=$1 tag=$2 hash=$3 server tools
  server=$(fetch redis-server); tools=$(fetch redis-tools)
  new_root "$root"; add_busybox "$root" links
  # redis-server is a symlink to redis-check-rdb: the binary picks its role from argv[0].
  cp -a "$tools/usr/bin/redis-check-rdb" "$tools/usr/bin/redis-cli" "$server/usr/bin/redis-server" "$root/usr/bin/"
  mkdir -p "$root/data"
  echo 'redis:x:999:999:redis:/data:/usr/sbin/nologin' >>"$root/etc/passwd"
  echo 'redis:x:999:' >>"$root/etc/group"
  add_libs "$root" usr/bin/redis-check-rdb usr/bin/redis-cli -- redis-tools redis-server
  import_root "$root" "$tag" "$hash" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'EXPOSE 6379/tcp' 'WORKDIR /data' \
    'CMD ["redis-server","--bind","0.0.0.0","--port","6379","--protected-mode","no","--save","","--appendonly","no"]'
}

# --- main -------------------------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "need root (dockerd, apt-get download into $CACHE)"
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || die "busybox-static is not installed (setup.sh installs it)"
bash native-scripts/dockerd.sh || die "no Docker engine (see /var/log/meshd-dockerd.log)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"  # concurrent setups: one builds, the others then find the images made
flock 9

bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || /bin/busybox | head -1)
find "$CACHE" -maxdepth 1 -name 'apt-info.*' ! -path "$APTINFO" -delete  # memos of older lists
versions=$(pkg_info nginx nginx-light nginx-core nginx-full nginx-common redis-server redis-tools | paste -sd' ')
common_fns=$(declare -f new_root add_busybox add_libs import_root fetch pkg_info lib_deps_not_on_host)

# image tag | builder call (after root tag hash) | inputs beyond the recipe functions
IMAGES=(
  "meshd/sandbox:local|build_sandbox|busybox=$bbver"
  "meshd/busybox:local|build_busybox|busybox=$bbver"
  "meshd/nginx:1|build_nginx 1|busybox=$bbver $versions"
  "meshd/nginx:2|build_nginx 2|busybox=$bbver $versions"
  "meshd/redis:local|build_redis|busybox=$bbver $versions"
)

work=$(mktemp -d /var/tmp/meshd-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
built=0
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r tag call inputs <<<"$entry"
  fn=${call%% *}; args=${call#"$fn"}
  hash=$( { echo "$call"; echo "$inputs"; echo "$common_fns"; declare -f "$fn"; if [ "$fn" = build_nginx ]; then declare -f nginx_pkg; fi; } | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{index .Config.Labels "meshd.recipe"}}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$hash" ] && [ -z "${MESHD_IMAGES_FORCE:-}" ]; then continue; fi
  log "building $tag (recipe $hash${have:+, was $have})"
  t0=$SECONDS
  root=$work/$(tr -c 'a-z0-9\n' _ <<<"$tag")
  # shellcheck disable=SC2086  # args is a word list by design
  "$fn" "$root" "$tag" "$hash" $args
  log "built $tag in $((SECONDS - t0))s: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}')"
  built=$((built + 1))
done
((built)) || log "all ${#IMAGES[@]} images up to date"
