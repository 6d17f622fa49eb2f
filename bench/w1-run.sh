#!/usr/bin/env bash
# shellcheck disable=SC2034 # berth_why, bk_why, bh_why are read through ${!name}
# w1-run.sh: berth build vs BuildKit vs `buildah bud --layers` on the FULL W1
# (with its two RUN steps), side by side in one run (the machine is shared:
# compare ratios, not absolute times).
#
#   (a) cold build      berth: empty BERTH_ROOT
#                       BuildKit: `docker builder prune -af` + image removed
#                       buildah: fresh, empty storage directories (emptied
#                       without timing)
#   (b) no-op rebuild   nothing changed
#   (c) one-file change a line appended to src/dir3/file3.txt, then rebuild
#
# Each case runs N times per tool, interleaved (berth, BuildKit, buildah in
# every run); the table shows medians, the ratios berth/BuildKit (the issue
# 4 targets: cold <= 0.5, no-op <= 0.25, one-file <= 0.5) and berth/buildah.
# Context: ../shared/bench/make-w1.py's W1, Dockerfile unchanged.
#
# How each tool runs:
#   berth     BERTH_ROOT=<private> berth build -q -t w1:bench CTX
#             (RUN steps in berth's own sandbox, host network namespace: the
#             default for RUN without --network)
#   BuildKit  DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none
#             -t w1:bench CTX, against a private dockerd from
#             fixtures/dockerd.sh (stopped on exit). `--network none`: that
#             dockerd runs with --bridge=none (it must leave the host's
#             network alone), and BuildKit's default RUN network then fails
#             with "network bridge not found".
#   buildah   buildah --root DIR --runroot DIR2 --storage-driver $BUILDAH_DRIVER
#             bud --layers -q --runtime runc --isolation $BUILDAH_ISOLATION
#             --network none -t w1:bench CTX, with a private containers.conf
#             (CONTAINERS_CONF) whose network_config_dir is private, and
#             runc's state (--runtime-flag root=) private. `--network none`:
#             buildah's default network runs netavark, which adds iptables
#             chains and sets net.ipv4.ip_forward=1 on the host.
# If a tool cannot build, its column reads n/a and the others still come out.
#
# Environment:
#   N=5                    runs per case
#   BERTH=path             berth binary (default: cargo build --release -p
#                          berth, then target/release/berth)
#   SHARED=dir             the shared folder (default: ../shared beside the
#                          repo, else /work/shared)
#   WORK=dir               scratch directory (default: a new one under /tmp);
#                          removed on exit either way
#   BUILDAH_DRIVER=overlay buildah's storage driver (vfs where overlay fails)
#   BUILDAH_ISOLATION=oci  buildah's isolation (chroot where oci fails)
#
# Needs: docker.io (dockerd, /usr/bin/docker), buildah, runc,
# busybox-static, python3.
set -euo pipefail
export LC_ALL=C
# runc and dockerd live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=w1-run.sh
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
n=${N:-5}
docker_cli=/usr/bin/docker
tag=w1:bench
bh_driver=${BUILDAH_DRIVER:-overlay}
bh_isolation=${BUILDAH_ISOLATION:-oci}

find_make_w1
make_work berth-w1run
dockerd_dir=$work/dk
bh=$work/buildah
bh_conf=$bh/containers.conf
# buildah (containers/common) always creates /run/containers/networks, even
# with --network none; remove it on exit if this run created it.
run_containers_existed=0
[ -e /run/containers ] && run_containers_existed=1
# BuildKit inside dockerd 20.10 runs RUN steps with runc's default state
# directory, /run/runc; remove it (when empty) on exit if this run created it.
run_runc_existed=0
[ -e /run/runc ] && run_runc_existed=1

# Every mount point at or under DIR, deepest first.
mounts_under() {
  local d=$1 mp
  while read -r _ _ _ _ mp _; do
    mp=$(printf '%b' "$mp")
    if [ "$mp" = "$d" ] || [[ "$mp" == "$d"/* ]]; then
      printf '%s\n' "$mp"
    fi
  done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

unmount_under() {
  local mp
  while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || say "cannot unmount $mp"
  done < <(mounts_under "$1")
}

buildah_g() { # buildah with the private storage and configuration
  CONTAINERS_CONF=$bh_conf buildah --root "$bh/root" --runroot "$bh/runroot" \
    --storage-driver "$bh_driver" "$@"
}

# Empty buildah's storage: its working containers first (that unmounts
# them), then whatever is still mounted, then the directories.
buildah_wipe() {
  if [ -d "$bh/root" ] && command -v buildah >/dev/null; then
    buildah_g rm -a >/dev/null 2>&1 || true
  fi
  unmount_under "$bh"
  rm -rf --one-file-system -- "$bh/root" "$bh/runroot" "$bh/runc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  bash "$repo/fixtures/dockerd.sh" stop "$dockerd_dir" || rc=1
  buildah_wipe
  if [ "$run_containers_existed" = 0 ]; then
    rmdir /run/containers/networks /run/containers 2>/dev/null
  fi
  if [ "$run_runc_existed" = 0 ]; then
    rmdir /run/runc 2>/dev/null
  fi
  unmount_under "$work"
  rm -rf --one-file-system -- "$work" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_before=$(uptime)
say "load before: $load_before"

# --- the berth binary -------------------------------------------------------

find_berth

# --- the full W1 context -----------------------------------------------------

ctx=$work/w1
say "making W1 in $ctx"
python3 "$make_w1" "$ctx" >/dev/null
say "Dockerfile (unchanged, with its RUN steps):"
sed 's/^/    /' "$ctx/Dockerfile" >&2

# --- the Docker engine --------------------------------------------------------

bk_ok=1
bk_why=
engine_version=n/a
if [ ! -x "$docker_cli" ]; then
  bk_ok=0
  bk_why="$docker_cli missing: apt-get install docker.io"
else
  if ! start_dockerd "$dockerd_dir"; then
    bk_ok=0
    bk_why="fixtures/dockerd.sh start failed"
  fi
fi

# --- buildah --------------------------------------------------------------------

bh_ok=1
bh_why=
bh_version=n/a
runc_version=n/a
if ! command -v buildah >/dev/null; then
  bh_ok=0
  bh_why="buildah missing: apt-get install buildah runc"
elif ! command -v runc >/dev/null; then
  bh_ok=0
  bh_why="runc missing: apt-get install runc"
else
  bh_version=$(buildah --version | awk '{ print $3 }')
  runc_version=$(runc --version | awk 'NR == 1 { print $3 }')
  mkdir -p "$bh/net"
  # Keep buildah's network configuration (and its lock files) out of /etc.
  cat >"$bh_conf" <<EOF
[containers]
netns = "none"

[network]
network_config_dir = "$bh/net"

[engine]
runtime = "runc"
EOF
fi

# --- build helpers --------------------------------------------------------------

berth_build() { # berth_build ROOT CTX
  BERTH_ROOT=$1 "$berth" build -q -t "$tag" "$2"
}

docker_build() { # docker_build CTX
  "$docker_cli" build -q --network none -t "$tag" "$1"
}

docker_reset() { # empty BuildKit's cache and drop the image
  "$docker_cli" image rm -f "$tag" >/dev/null 2>&1 || true
  "$docker_cli" builder prune -af >/dev/null
}

buildah_build() { # buildah_build CTX
  buildah_g bud --layers -q --runtime runc --runtime-flag "root=$bh/runc" \
    --isolation "$bh_isolation" --network none -t "$tag" "$1"
}

buildah_reset() { # fresh, empty storage
  buildah_wipe
  mkdir -p "$bh/root" "$bh/runroot" "$bh/runc"
}

failed() { # failed TOOL: marks TOOL (berth, bk, bh) n/a with last.out
  local why
  why="build failed: $(head -c 800 "$work/last.out" | tr '\n' ' ')"
  [ -s "$work/last.out" ] || why="build failed with no output"
  printf -v "${1}_ok" 0
  printf -v "${1}_why" '%s' "$why"
  say "$1: $why"
}

# --- warm-up --------------------------------------------------------------------

# One untimed build per tool first: a freshly started dockerd's first build
# pays one-off setup (its stores, BuildKit's database) that says nothing
# about cold-cache builds.
if [ "$berth_ok" = 1 ]; then
  mkdir -p "$work/berth-warmup"
  timed t berth_build "$work/berth-warmup" "$ctx" || failed berth
  rm -rf -- "$work/berth-warmup"
fi
if [ "$bk_ok" = 1 ]; then
  timed t docker_build "$ctx" || failed bk
fi
if [ "$bh_ok" = 1 ]; then
  buildah_reset
  timed t buildah_build "$ctx" || failed bh
fi
say "warm-up builds done"

# --- (a)-(c) --------------------------------------------------------------------

berth_cold=() berth_noop=() berth_one=()
bk_cold=() bk_noop=() bk_one=()
bh_cold=() bh_noop=() bh_one=()
change=$ctx/src/dir3/file3.txt

for i in $(seq 1 "$n"); do
  if [ "$berth_ok" = 1 ]; then
    berth_round "$i" failed berth
  fi

  if [ "$bk_ok" = 1 ]; then
    docker_reset
    if timed t docker_build "$ctx"; then
      bk_cold+=("$t")
      if timed t2 docker_build "$ctx"; then
        bk_noop+=("$t2")
        echo "buildkit run $i" >>"$change"
        if timed t3 docker_build "$ctx"; then
          bk_one+=("$t3")
          say "run $i/$n BuildKit: cold ${t}s  no-op ${t2}s  one-file ${t3}s"
        else failed bk; fi
      else failed bk; fi
    else failed bk; fi
  fi

  if [ "$bh_ok" = 1 ]; then
    buildah_reset
    if timed t buildah_build "$ctx"; then
      bh_cold+=("$t")
      if timed t2 buildah_build "$ctx"; then
        bh_noop+=("$t2")
        echo "buildah run $i" >>"$change"
        if timed t3 buildah_build "$ctx"; then
          bh_one+=("$t3")
          say "run $i/$n buildah:  cold ${t}s  no-op ${t2}s  one-file ${t3}s"
        else failed bh; fi
      else failed bh; fi
    else failed bh; fi
  fi
done
load_after=$(uptime)
say "load after: $load_after"

# --- report ------------------------------------------------------------------------

med() { # med TOOL CASE: the median, or n/a when the tool failed
  local ok=${1}_ok arr="${1}_${2}[@]"
  if [ "${!ok}" = 1 ]; then median "${!arr}"; else echo n/a; fi
}

echo
echo "Full W1 (2 RUN steps), $n runs each, medians; $(date -u +%Y-%m-%d), $(nproc) cores"
echo "berth: \`BERTH_ROOT=... berth build -q -t $tag CTX\`;" \
  "BuildKit: Docker $engine_version, \`DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none -t $tag CTX\`;" \
  "buildah $bh_version (runc $runc_version): \`buildah --root ... --runroot ... --storage-driver $bh_driver bud --layers -q --runtime runc --isolation $bh_isolation --network none -t $tag CTX\`"
echo "load before: ${load_before#*load average: }; after: ${load_after#*load average: }"
echo
echo "| case | berth (s) | BuildKit (s) | buildah (s) | berth/BuildKit | target | met | berth/buildah |"
echo "|---|---|---|---|---|---|---|---|"
for c in cold noop one; do
  case $c in
  cold) label="cold build" limit=0.5 ;;
  noop) label="no-op rebuild" limit=0.25 ;;
  one) label="one-file change" limit=0.5 ;;
  esac
  mb=$(med berth "$c") mk=$(med bk "$c") mh=$(med bh "$c")
  r=$(ratio "$mb" "$mk")
  echo "| $label | $mb | $mk | $mh | $r | ≤ $limit | $(meets "$r" "$limit") | $(ratio "$mb" "$mh") |"
done

echo
echo "Per run (s):"
echo
echo "| run | berth cold | BuildKit cold | buildah cold | berth no-op | BuildKit no-op | buildah no-op | berth one-file | BuildKit one-file | buildah one-file |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for i in $(seq 0 $((n - 1))); do
  row="| $((i + 1))"
  for c in cold noop one; do
    for tool in berth bk bh; do
      a="${tool}_${c}[$i]"
      row+=" | ${!a:-n/a}"
    done
  done
  echo "$row |"
done

for tool in berth bk bh; do
  ok=${tool}_ok why=${tool}_why
  if [ "${!ok}" != 1 ]; then
    case $tool in berth) name=berth ;; bk) name=BuildKit ;; bh) name=buildah ;; esac
    echo
    echo "$name: n/a (${!why})"
  fi
done
