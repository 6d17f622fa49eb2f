#!/usr/bin/env bash
# shellcheck disable=SC2034 # *_why and the result variables are read through ${!name}
# registry.sh: berth push/pull vs `docker push`/`docker pull` vs `skopeo copy`,
# side by side in one run against the same local registry (the machine is
# shared: compare ratios, not absolute times).
#
#   (a) cold push   the registry holds none of the blobs: before each timed
#                   push it is stopped, its storage emptied and it is started
#                   again (untimed)
#   (b) cold pull   the registry holds the image (pushed once by berth,
#                   untimed); the puller holds none of it: berth an empty
#                   BERTH_ROOT, docker no image and no layer (`docker rmi`,
#                   `docker image prune -af`, checked with `docker images -a`
#                   and the engine's layer database), skopeo a new OCI layout
#   (c) peak RSS and time of one push and one pull of a FROM scratch image
#       whose only layer is a BIG_MB MiB file of random bytes, and the same
#       with a SMALL_MB MiB file: berth's memory must not grow with the layer.
#       /usr/bin/time -f %M for berth, skopeo and the docker CLI; for docker
#       the work happens in dockerd, whose VmHWM is reset (clear_refs) before
#       and read after each operation. One run of each.
#
# The image is ../shared/bench/make-w1.py's full W1 (Dockerfile unchanged,
# RUN steps included), built once by berth. Every tool moves that same image
# content: berth from its store, skopeo from the same store (it is an OCI
# layout), docker from `docker load` of berth's `--output type=docker` export.
# Docker keeps layers uncompressed and compresses them again on push (berth
# and skopeo upload the stored gzip blobs as they are); a docker pull also
# unpacks the layers into overlay2, berth and skopeo only store the blobs.
# Those differences are part of what is compared.
#
# Each of (a) and (b) runs N times per tool, interleaved (berth, docker,
# skopeo in every run), after one untimed warm-up of each; the table shows
# medians and the ratios berth/docker (the issue 5 target: cold push <= 0.5)
# and berth/skopeo. Every push is checked (manifest digest, every blob
# present with its size) and so is every pull (manifest digest; blob
# digests for berth and skopeo; image ID and repo digest for docker).
#
# How each tool runs (registry: Debian's docker-registry on
# 127.0.0.1:<free port>, plain HTTP, private storage; all traffic loopback):
#   berth   BERTH_ROOT=<store> berth push -q 127.0.0.1:P/w1:1
#           BERTH_ROOT=<empty> berth pull -q 127.0.0.1:P/w1:1
#   docker  Debian's /usr/bin/docker against a private dockerd from
#           fixtures/dockerd.sh (stopped on exit); 127.0.0.0/8 registries
#           are insecure (plain HTTP) by default:
#           docker push 127.0.0.1:P/w1:1, docker pull 127.0.0.1:P/w1:1
#   skopeo  skopeo --insecure-policy copy -q --dest-tls-verify=false
#             oci:<berth store>:127.0.0.1:P/w1:1 docker://127.0.0.1:P/w1:1
#           skopeo --insecure-policy copy -q --src-tls-verify=false
#             docker://127.0.0.1:P/w1:1 oci:<new dir>:1
#           (as root it updates /var/lib/containers/cache/blob-info-cache-v1.boltdb)
#
# Environment:
#   N=3             runs per case
#   BERTH=path      berth binary (default: cargo build --release -p berth,
#                   then target/release/berth)
#   SHARED=dir      the shared folder (default: ../shared beside the repo,
#                   else /work/shared)
#   WORK=dir        scratch directory (default: a new one under /tmp);
#                   removed on exit either way
#   BIG_MB=1024     size of the big layer for (c); BIG_MB=0 skips (c)
#   SMALL_MB=10     size of the small layer for (c)
#   DOCKER_BIG=1    DOCKER_BIG=0 leaves docker out of (c) (it loads,
#                   compresses and unpacks the big layer: the slowest part)
#
# Needs: root (berth's RUN steps), docker.io (dockerd, /usr/bin/docker),
# docker-registry, skopeo, busybox-static, python3, curl, time
# (/usr/bin/time). Roughly 5 x BIG_MB of free disk under WORK.
set -euo pipefail
export LC_ALL=C
# dockerd lives in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
# Loopback only: no tool may route the registry traffic through a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${N:-3}
big_mb=${BIG_MB:-1024}
small_mb=${SMALL_MB:-10}
docker_big=${DOCKER_BIG:-1}
docker_cli=/usr/bin/docker
registry_bin=/usr/bin/docker-registry

me=registry.sh
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
die() {
  say "$*"
  exit 1
}

shared=${SHARED:-}
if [ -z "$shared" ]; then
  if [ -f "$repo/../shared/bench/make-w1.py" ]; then
    shared=$repo/../shared
  else
    shared=/work/shared
  fi
fi
make_w1=$shared/bench/make-w1.py
[ -f "$make_w1" ] || die "$make_w1 not found (set SHARED=)"
[ "$(id -u)" = 0 ] || die "needs root (berth runs W1's RUN steps)"
[ -x "$docker_cli" ] || die "$docker_cli missing: apt-get install docker.io"
[ -x "$registry_bin" ] || die "$registry_bin missing: apt-get install docker-registry"
command -v skopeo >/dev/null || die "skopeo missing: apt-get install skopeo"
command -v curl >/dev/null || die "curl missing: apt-get install curl"
[ -x /usr/bin/time ] || die "/usr/bin/time missing: apt-get install time"

if [ -n "${WORK:-}" ]; then
  work=$(realpath -m -- "$WORK")
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/berth-registry.XXXXXX)
fi
dockerd_dir=$work/dk
reg_dir=$work/registry
reg_pid=

reg_stop() { # stops the registry this script started, if it runs
  if [ -n "$reg_pid" ]; then
    kill -TERM "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    reg_pid=
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  reg_stop
  bash "$repo/fixtures/dockerd.sh" stop "$dockerd_dir" || rc=1
  rm -rf --one-file-system -- "$work" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_before=$(uptime)
say "load before: $load_before"

# --- the berth binary -------------------------------------------------------

if [ -n "${BERTH:-}" ]; then
  berth=$BERTH
else
  berth=${CARGO_TARGET_DIR:-$repo/target}/release/berth
  say "building berth (cargo build --release -p berth)"
  (cd "$repo" && cargo build --release -p berth --quiet) >"$work/cargo.log" 2>&1 ||
    die "cargo build --release -p berth failed: $(grep -m1 -E '^error' "$work/cargo.log" || tail -n1 "$work/cargo.log")"
fi
[ -x "$berth" ] || die "no berth binary at $berth"

# --- helpers ----------------------------------------------------------------------

# Manifest and blob checks, in Python so that they need nothing else.
#   check.py registry HOST:PORT REPO TAG EXPECTED|-   prints the manifest digest;
#       fails unless it is EXPECTED (when given) and the registry has every
#       blob the manifest lists, with its size
#   check.py layout DIR REF EXPECTED|-                prints the manifest digest
#       of REF (org.opencontainers.image.ref.name) in the OCI layout DIR;
#       fails unless it is EXPECTED (when given) and the manifest, config and
#       layer blobs are in DIR with their sizes and digests
#   check.py config DIR REF                          prints REF's config digest
#   check.py size DIR REF                            prints "LAYERS layers, MB MB"
#       (REF's compressed layers)
cat >"$work/check.py" <<'EOF'
import hashlib, json, os, sys, urllib.error, urllib.request

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def fail(msg):
    sys.exit("check.py: " + msg)

def request(method, url, accept=None):
    req = urllib.request.Request(url, method=method)
    if accept:
        req.add_header("Accept", accept)
    try:
        return opener.open(req, timeout=60)
    except urllib.error.HTTPError as e:
        fail(f"{method} {url}: HTTP {e.code}")

def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()

def blob_path(layout, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexd)

def layout_manifest(layout, ref):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    found = [m for m in index.get("manifests", [])
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
    if len(found) != 1:
        fail(f"{layout}: {len(found)} manifests named {ref!r} in index.json")
    return found[0]

mode = sys.argv[1]
if mode == "registry":
    host, repo, tag, expected = sys.argv[2:6]
    with request("GET", f"http://{host}/v2/{repo}/manifests/{tag}", ACCEPT) as r:
        body = r.read()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if expected != "-" and digest != expected:
        fail(f"{host}/{repo}:{tag} is {digest}, expected {expected}")
    manifest = json.loads(body)
    for d in [manifest["config"]] + manifest["layers"]:
        with request("HEAD", f"http://{host}/v2/{repo}/blobs/{d['digest']}") as r:
            size = int(r.headers.get("Content-Length", -1))
        if size != d["size"]:
            fail(f"{host}/{repo} blob {d['digest']}: {size} bytes, manifest says {d['size']}")
    print(digest)
elif mode == "layout":
    layout, ref, expected = sys.argv[2:5]
    desc = layout_manifest(layout, ref)
    digest = desc["digest"]
    if expected != "-" and digest != expected:
        fail(f"{layout}: {ref} is {digest}, expected {expected}")
    with open(blob_path(layout, digest), "rb") as f:
        manifest = json.load(f)
    for d in [desc, manifest["config"]] + manifest["layers"]:
        path = blob_path(layout, d["digest"])
        if not os.path.isfile(path):
            fail(f"{layout}: blob {d['digest']} missing")
        if os.path.getsize(path) != d["size"]:
            fail(f"{layout}: blob {d['digest']}: {os.path.getsize(path)} bytes, expected {d['size']}")
        if file_digest(path) != d["digest"]:
            fail(f"{layout}: blob {d['digest']} has digest {file_digest(path)}")
    print(digest)
elif mode == "config":
    layout, ref = sys.argv[2:4]
    with open(blob_path(layout, layout_manifest(layout, ref)["digest"]), "rb") as f:
        print(json.load(f)["config"]["digest"])
elif mode == "size":
    layout, ref = sys.argv[2:4]
    with open(blob_path(layout, layout_manifest(layout, ref)["digest"]), "rb") as f:
        layers = json.load(f)["layers"]
    print(f"{len(layers)} layers, {sum(l['size'] for l in layers) / 1e6:.1f} MB")
else:
    fail("unknown mode " + mode)
EOF
check() { python3 "$work/check.py" "$@"; }

# timed OUTVAR CMD...: runs CMD (output to $work/last.out), stores seconds.
# An untimed `sync` first: otherwise a tool that syncs (berth fsyncs each
# blob it stores) pays for the previous command's writeback.
timed() {
  local var=$1 t0 t1
  shift
  sync
  t0=$EPOCHREALTIME
  "$@" >"$work/last.out" 2>&1 || return 1
  t1=$EPOCHREALTIME
  printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}

# measured PREFIX CMD...: runs CMD under /usr/bin/time (output to
# $work/last.out); sets PREFIX_rss (MB, peak RSS) and PREFIX_time (s).
measured() {
  local prefix=$1 kb secs
  shift
  sync
  /usr/bin/time -f '%M %e' -o "$work/time.out" "$@" >"$work/last.out" 2>&1 || return 1
  read -r kb secs <"$work/time.out"
  printf -v "${prefix}_rss" '%s' "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')"
  printf -v "${prefix}_time" '%s' "$secs"
}

failed() { # failed WHAT: stops the run with WHAT and the command's output
  say "$1 failed; its output:"
  sed 's/^/    /' "$work/last.out" >&2
  exit 1
}

# --- the registry ---------------------------------------------------------------

reg_port=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
reg=127.0.0.1:$reg_port
mkdir -p "$reg_dir"
cat >"$reg_dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $reg_dir/data
  delete:
    enabled: true
http:
  addr: $reg
EOF

# reg_empty: (re)starts the registry with empty storage, untimed. Same port
# every time: the image names carry it.
reg_empty() {
  local deadline
  reg_stop
  rm -rf -- "$reg_dir/data"
  mkdir -p "$reg_dir/data"
  "$registry_bin" serve "$reg_dir/config.yml" </dev/null >>"$reg_dir/log" 2>&1 &
  reg_pid=$!
  deadline=$((SECONDS + 20))
  until curl -fsS -o /dev/null --noproxy '*' "http://$reg/v2/" 2>/dev/null; do
    kill -0 "$reg_pid" 2>/dev/null || die "docker-registry exited; last lines of its log: $(tail -n 5 "$reg_dir/log")"
    [ "$SECONDS" -lt "$deadline" ] || die "docker-registry did not answer on $reg within 20 s"
    sleep 0.05
  done
}

# --- the Docker engine --------------------------------------------------------

say "starting dockerd in $dockerd_dir"
docker_host=$(bash "$repo/fixtures/dockerd.sh" start "$dockerd_dir" | sed -n 's/^DOCKER_HOST=//p')
[ -n "$docker_host" ] || die "fixtures/dockerd.sh printed no DOCKER_HOST"
export DOCKER_HOST=$docker_host
# Private client configuration (no credentials) for docker and berth alike.
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG"
unset DOCKER_CONTEXT
dockerd_pid=$(cat "$dockerd_dir/pid")
engine_version=$("$docker_cli" version --format '{{.Server.Version}}')
docker_driver=$("$docker_cli" info --format '{{.Driver}}')
layerdb=$dockerd_dir/data/image/$docker_driver/layerdb/sha256

# docker_empty: no image and no layer left in the engine.
docker_empty() {
  local ids
  ids=$("$docker_cli" images -aq)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    "$docker_cli" rmi -f $ids >/dev/null
  fi
  "$docker_cli" image prune -af >/dev/null
  [ -z "$("$docker_cli" images -aq)" ] || die "docker still lists images: $("$docker_cli" images -a)"
  [ -z "$(ls -A "$layerdb" 2>/dev/null)" ] || die "docker still holds layers in $layerdb: $(ls "$layerdb")"
}

# dockerd's peak RSS: reset before an operation, read (MB) after it.
# Without a reset (clear_refs refused) the figure would be the daemon's
# lifetime peak, so it reads n/a.
hwm_reset_ok=0
dockerd_hwm_reset() {
  hwm_reset_ok=0
  if echo 5 2>/dev/null >"/proc/$dockerd_pid/clear_refs"; then hwm_reset_ok=1; fi
}
dockerd_hwm() {
  if [ "$hwm_reset_ok" = 1 ]; then
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$dockerd_pid/status"
  else
    echo n/a
  fi
}

# --- W1, built once by berth ----------------------------------------------------

ctx=$work/w1
say "making W1 in $ctx"
python3 "$make_w1" "$ctx" >/dev/null
store=$work/berth-store
name=$reg/w1:1
say "building W1 with berth (-t $name, --output type=docker)"
mkdir -p "$store"
build_time=
if ! timed build_time env BERTH_ROOT="$store" "$berth" build -q -t "$name" \
  --output "type=docker,dest=$work/w1.tar" "$ctx"; then
  failed "berth build"
fi
say "berth build: ${build_time}s"
local_digest=$(check layout "$store" "$name" -)
config_digest=$(check config "$store" "$name")
w1_size=$(check size "$store" "$name")
say "berth's manifest: $local_digest, config (image ID): $config_digest"

"$docker_cli" load -q -i "$work/w1.tar" >/dev/null
rm -f -- "$work/w1.tar"
docker_id=$("$docker_cli" image inspect --format '{{.Id}}' "$name")
[ "$docker_id" = "$config_digest" ] || die "docker load gave image $docker_id, berth built $config_digest"

# --- the operations ---------------------------------------------------------------

berth_push() { BERTH_ROOT=$store "$berth" push -q "$1"; }
docker_push() { "$docker_cli" push -q "$1"; }
skopeo_push() {
  skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$store:$1" "docker://$1"
}
berth_pull() { BERTH_ROOT=$1 "$berth" pull -q "$2"; }
docker_pull() { "$docker_cli" pull -q "$1"; }
skopeo_pull() {
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$2" "oci:$1:1"
}

# Checks after each operation.
pushed_ok() { # pushed_ok NAME EXPECTED|-
  local repo_tag=${1#"$reg"/}
  check registry "$reg" "${repo_tag%:*}" "${repo_tag##*:}" "$2" >/dev/null
}
docker_pulled_ok() { # docker_pulled_ok NAME MANIFEST CONFIG
  local id digests
  id=$("$docker_cli" image inspect --format '{{.Id}}' "$1")
  digests=$("$docker_cli" image inspect --format '{{join .RepoDigests " "}}' "$1")
  [ "$id" = "$3" ] || die "docker pull $1 gave image $id, expected $3"
  [[ " $digests " == *" ${1%:*}@$2 "* ]] || die "docker pull $1: repo digests '$digests', expected ${1%:*}@$2"
}

# --- warm-up ------------------------------------------------------------------------

# One untimed push and pull per tool first, which also checks that every tool
# works: the first push of a freshly started dockerd pays one-off setup.
say "warm-up: one push and one pull per tool"
reg_empty
timed t berth_push "$name" || failed "berth push"
pushed_ok "$name" "$local_digest"
reg_empty
timed t docker_push "$name" || failed "docker push"
pushed_ok "$name" -
reg_empty
timed t skopeo_push "$name" || failed "skopeo copy (push)"
pushed_ok "$name" "$local_digest"
rm -rf -- "$work/pull"
timed t berth_pull "$work/pull" "$name" || failed "berth pull"
check layout "$work/pull" "$name" "$local_digest" >/dev/null
rm -rf -- "$work/pull"
timed t skopeo_pull "$work/pull" "$name" || failed "skopeo copy (pull)"
check layout "$work/pull" 1 "$local_digest" >/dev/null
rm -rf -- "$work/pull"

# --- (a) cold push ------------------------------------------------------------------

berth_push_t=() docker_push_t=() skopeo_push_t=()
for i in $(seq 1 "$n"); do
  reg_empty
  timed t berth_push "$name" || failed "berth push"
  pushed_ok "$name" "$local_digest"
  berth_push_t+=("$t")
  reg_empty
  timed t2 docker_push "$name" || failed "docker push"
  pushed_ok "$name" -
  docker_push_t+=("$t2")
  reg_empty
  timed t3 skopeo_push "$name" || failed "skopeo copy (push)"
  pushed_ok "$name" "$local_digest"
  skopeo_push_t+=("$t3")
  say "run $i/$n cold push: berth ${t}s  docker ${t2}s  skopeo ${t3}s"
done

# --- (b) cold pull ------------------------------------------------------------------

reg_empty
timed t berth_push "$name" || failed "berth push (seeding the registry)"
pushed_ok "$name" "$local_digest"
# docker's warm-up pull, now that its loaded image is no longer needed.
docker_empty
timed t docker_pull "$name" || failed "docker pull"
docker_pulled_ok "$name" "$local_digest" "$config_digest"

berth_pull_t=() docker_pull_t=() skopeo_pull_t=()
for i in $(seq 1 "$n"); do
  rm -rf -- "$work/pull"
  timed t berth_pull "$work/pull" "$name" || failed "berth pull"
  check layout "$work/pull" "$name" "$local_digest" >/dev/null
  berth_pull_t+=("$t")
  docker_empty
  timed t2 docker_pull "$name" || failed "docker pull"
  docker_pulled_ok "$name" "$local_digest" "$config_digest"
  docker_pull_t+=("$t2")
  rm -rf -- "$work/pull"
  timed t3 skopeo_pull "$work/pull" "$name" || failed "skopeo copy (pull)"
  check layout "$work/pull" 1 "$local_digest" >/dev/null
  skopeo_pull_t+=("$t3")
  rm -rf -- "$work/pull"
  say "run $i/$n cold pull: berth ${t}s  docker ${t2}s  skopeo ${t3}s"
done
docker_empty

# --- (c) peak RSS with a small and a big layer ---------------------------------------

# rss_case TAG MB: builds FROM scratch / COPY big.bin / with an MB MiB file of
# random bytes, then pushes and pulls it once with each tool. Results go to
# variables named <tool>_<op>_<TAG>_{rss,time}.
rss_case() {
  local tag=$1 mb=$2
  local cctx=$work/ctx-$tag rname=$reg/rss-$tag:1 digest config
  say "(c) ${mb} MiB layer: making the context and building it with berth"
  mkdir -p "$cctx"
  head -c "${mb}M" /dev/urandom >"$cctx/big.bin"
  printf 'FROM scratch\nCOPY big.bin /\n' >"$cctx/Dockerfile"
  local -a out=()
  [ "$docker_big" = 1 ] && out=(--output "type=docker,dest=$work/rss-$tag.tar")
  timed t env BERTH_ROOT="$store" "$berth" build -q -t "$rname" "${out[@]}" "$cctx" ||
    failed "berth build ($mb MiB)"
  rm -rf -- "$cctx"
  digest=$(check layout "$store" "$rname" -)
  config=$(check config "$store" "$rname")

  reg_empty
  measured "berth_push_$tag" env BERTH_ROOT="$store" "$berth" push -q "$rname" ||
    failed "berth push ($mb MiB)"
  pushed_ok "$rname" "$digest"
  reg_empty
  measured "skopeo_push_$tag" skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$store:$rname" "docker://$rname" || failed "skopeo copy (push, $mb MiB)"
  pushed_ok "$rname" "$digest"
  if [ "$docker_big" = 1 ]; then
    "$docker_cli" load -q -i "$work/rss-$tag.tar" >/dev/null
    rm -f -- "$work/rss-$tag.tar"
    reg_empty
    dockerd_hwm_reset
    measured "docker_push_$tag" "$docker_cli" push -q "$rname" || failed "docker push ($mb MiB)"
    printf -v "dockerd_push_${tag}_rss" '%s' "$(dockerd_hwm)"
    pushed_ok "$rname" -
  fi

  reg_empty
  timed t env BERTH_ROOT="$store" "$berth" push -q "$rname" || failed "berth push ($mb MiB, seeding)"
  rm -rf -- "$work/pull"
  measured "berth_pull_$tag" env BERTH_ROOT="$work/pull" "$berth" pull -q "$rname" ||
    failed "berth pull ($mb MiB)"
  check layout "$work/pull" "$rname" "$digest" >/dev/null
  rm -rf -- "$work/pull"
  measured "skopeo_pull_$tag" skopeo --insecure-policy copy -q --src-tls-verify=false \
    "docker://$rname" "oci:$work/pull:1" || failed "skopeo copy (pull, $mb MiB)"
  check layout "$work/pull" 1 "$digest" >/dev/null
  rm -rf -- "$work/pull"
  if [ "$docker_big" = 1 ]; then
    docker_empty
    dockerd_hwm_reset
    measured "docker_pull_$tag" "$docker_cli" pull -q "$rname" || failed "docker pull ($mb MiB)"
    printf -v "dockerd_pull_${tag}_rss" '%s' "$(dockerd_hwm)"
    docker_pulled_ok "$rname" "$digest" "$config"
    docker_empty
  fi
  BERTH_ROOT=$store "$berth" rmi "$rname" >/dev/null
  BERTH_ROOT=$store "$berth" prune >/dev/null 2>&1 || true
  reg_empty
}

if [ "$big_mb" -gt 0 ]; then
  rss_case small "$small_mb"
  rss_case big "$big_mb"
fi
reg_stop
load_after=$(uptime)
say "load after: $load_after"

# --- report ------------------------------------------------------------------------

berth_version=$("$berth" --version 2>/dev/null || echo berth)
skopeo_version=$(skopeo --version | awk '{ print $3 }')
registry_version=$("$registry_bin" --version | awk '{ print $3 }')

echo
echo "W1 (full, built by berth: $w1_size gzip), $n runs each, medians; $(date -u +%Y-%m-%d), $(nproc) cores"
echo "$berth_version; Docker $engine_version (/usr/bin/docker, private dockerd, $docker_driver);" \
  "skopeo $skopeo_version; docker-registry $registry_version on $reg (filesystem storage, emptied before each push)"
echo "load before: ${load_before#*load average: }; after: ${load_after#*load average: }"
echo
echo "| case | berth (s) | docker (s) | skopeo (s) | berth/docker | target | met | berth/skopeo |"
echo "|---|---|---|---|---|---|---|---|"
for c in push pull; do
  a="berth_${c}_t[@]" b="docker_${c}_t[@]" s="skopeo_${c}_t[@]"
  mb=$(median "${!a}") md=$(median "${!b}") ms=$(median "${!s}")
  r=$(ratio "$mb" "$md")
  if [ "$c" = push ]; then
    echo "| cold push | $mb | $md | $ms | $r | ≤ 0.5 | $(meets "$r" 0.5) | $(ratio "$mb" "$ms") |"
  else
    echo "| cold pull | $mb | $md | $ms | $r | — | — | $(ratio "$mb" "$ms") |"
  fi
done

echo
echo "Per run (s):"
echo
echo "| run | berth push | docker push | skopeo push | berth pull | docker pull | skopeo pull |"
echo "|---|---|---|---|---|---|---|"
for i in $(seq 0 $((n - 1))); do
  row="| $((i + 1))"
  for c in push pull; do
    for tool in berth docker skopeo; do
      a="${tool}_${c}_t[$i]"
      row+=" | ${!a:-n/a}"
    done
  done
  echo "$row |"
done

if [ "$big_mb" -gt 0 ]; then
  v() { local x=$1; echo "${!x:-n/a}"; }
  growth() { # growth SMALL BIG: BIG - SMALL
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
      awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", b - a }'
    else
      echo n/a
    fi
  }
  echo
  echo "FROM scratch + one layer of random bytes, one run each:"
  echo
  echo "| peak RSS (MB) | ${small_mb} MiB layer | ${big_mb} MiB layer | growth |"
  echo "|---|---|---|---|"
  for row in "berth push:berth_push" "berth pull:berth_pull" \
    "skopeo push:skopeo_push" "skopeo pull:skopeo_pull" \
    "docker push, dockerd VmHWM:dockerd_push" "docker push, docker CLI:docker_push" \
    "docker pull, dockerd VmHWM:dockerd_pull" "docker pull, docker CLI:docker_pull"; do
    label=${row%%:*} var=${row#*:}
    s=$(v "${var}_small_rss") b=$(v "${var}_big_rss")
    echo "| $label | $s | $b | $(growth "$s" "$b") |"
  done
  echo
  echo "| time (s) | ${small_mb} MiB layer | ${big_mb} MiB layer |"
  echo "|---|---|---|"
  for row in "berth push:berth_push" "docker push:docker_push" "skopeo push:skopeo_push" \
    "berth pull:berth_pull" "docker pull:docker_pull" "skopeo pull:skopeo_pull"; do
    label=${row%%:*} var=${row#*:}
    echo "| $label | $(v "${var}_small_time") | $(v "${var}_big_time") |"
  done
fi
