#!/usr/bin/env bash
# w1-build.sh: berth build vs BuildKit on W1 without RUN steps, side by side
# in one run (the machine is shared: compare ratios, not absolute times).
#
#   (a) cold build      berth: empty BERTH_ROOT
#                       BuildKit: `docker builder prune -af` + image removed
#   (b) no-op rebuild   nothing changed
#   (c) one-file change a line appended to src/dir3/file3.txt, then rebuild
#   (d) peak RSS of `berth build` on a context holding one 1 GiB file
#       (FROM scratch / COPY big.bin /), via /usr/bin/time -v; BuildKit's
#       figure is the VmHWM of dockerd (BuildKit runs inside it) during
#       that build.
#
# Each of (a)-(c) runs N times per tool, interleaved; the table shows
# medians. Context: ../shared/bench/make-w1.py's W1 with its RUN lines
# removed (berth build has no RUN yet). BuildKit is Debian's Docker engine,
# started privately with fixtures/dockerd.sh and stopped on exit. If berth
# cannot build, its columns read n/a and the BuildKit figures still come out.
#
# Environment:
#   N=5             runs per case
#   BERTH=path      berth binary (default: cargo build --release -p berth,
#                   then target/release/berth)
#   SHARED=dir      the shared folder (default: ../shared beside the repo,
#                   else /work/shared)
#   BIG_MB=1024     size of the big file for (d); BIG_MB=0 skips (d)
#   WORK=dir        scratch directory (default: a new one under /tmp,
#                   removed on exit)
#
# Needs: docker.io (dockerd, /usr/bin/docker), busybox-static, python3,
# time (/usr/bin/time).
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${N:-5}
big_mb=${BIG_MB:-1024}
docker_cli=/usr/bin/docker
tag=w1:bench

shared=${SHARED:-}
if [ -z "$shared" ]; then
  if [ -f "$repo/../shared/bench/make-w1.py" ]; then
    shared=$repo/../shared
  else
    shared=/work/shared
  fi
fi
make_w1=$shared/bench/make-w1.py
[ -f "$make_w1" ] || { echo "w1-build.sh: $make_w1 not found (set SHARED=)" >&2; exit 1; }
[ -x "$docker_cli" ] || { echo "w1-build.sh: $docker_cli missing: apt-get install docker.io" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "w1-build.sh: /usr/bin/time missing: apt-get install time" >&2; exit 1; }

if [ -n "${WORK:-}" ]; then
  work=$WORK
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/berth-w1.XXXXXX)
fi
dockerd_dir=$work/dk

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  bash "$repo/fixtures/dockerd.sh" stop "$dockerd_dir" || rc=1
  rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "w1-build.sh: $*" >&2; }

# --- the berth binary -------------------------------------------------------

berth_ok=1
berth_why=
if [ -n "${BERTH:-}" ]; then
  berth=$BERTH
else
  berth=${CARGO_TARGET_DIR:-$repo/target}/release/berth
  say "building berth (cargo build --release -p berth)"
  if ! (cd "$repo" && cargo build --release -p berth --quiet) >"$work/cargo.log" 2>&1; then
    berth_ok=0
    berth_why="cargo build --release -p berth failed: $(grep -m1 -E '^error' "$work/cargo.log" || tail -n1 "$work/cargo.log")"
  fi
fi
if [ "$berth_ok" = 1 ] && [ ! -x "$berth" ]; then
  berth_ok=0
  berth_why="no berth binary at $berth"
fi

# --- the W1 context, without RUN ---------------------------------------------

ctx=$work/w1
say "making W1 in $ctx"
python3 "$make_w1" "$ctx" >/dev/null
# Drop RUN instructions, with their continuation lines.
awk '
  cont { cont = /\\[ \t]*$/; next }
  toupper($1) == "RUN" { cont = /\\[ \t]*$/; next }
  { print }
' "$ctx/Dockerfile" >"$ctx/Dockerfile.norun"
mv "$ctx/Dockerfile.norun" "$ctx/Dockerfile"
say "Dockerfile without RUN:"
sed 's/^/    /' "$ctx/Dockerfile" >&2

# --- the Docker engine --------------------------------------------------------

say "starting dockerd in $dockerd_dir"
docker_host=$(bash "$repo/fixtures/dockerd.sh" start "$dockerd_dir" | sed -n 's/^DOCKER_HOST=//p')
[ -n "$docker_host" ] || { say "fixtures/dockerd.sh printed no DOCKER_HOST"; exit 1; }
export DOCKER_HOST=$docker_host
export DOCKER_CONFIG=$work/docker-config
export DOCKER_BUILDKIT=1
unset DOCKER_CONTEXT
dockerd_pid=$(cat "$dockerd_dir/pid")
engine_version=$("$docker_cli" version --format '{{.Server.Version}}')

# --- timing helpers -------------------------------------------------------------

# timed OUTVAR CMD...: runs CMD (output to $work/last.out), stores seconds.
# An untimed `sync` first: otherwise a build that syncs (berth calls
# syncfs, which waits for every dirty page of the filesystem) pays for the
# previous build's writeback, the other tool's included.
timed() {
  local var=$1 t0 t1
  shift
  sync
  t0=$EPOCHREALTIME
  "$@" >"$work/last.out" 2>&1 || return 1
  t1=$EPOCHREALTIME
  printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}

median() { # median VALUES...: n/a when empty
  if [ $# -eq 0 ]; then
    echo n/a
    return
  fi
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { # ratio A B: A/B, n/a unless both are numbers
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
  else
    echo n/a
  fi
}

berth_build() { # berth_build ROOT CTX [TAG]
  BERTH_ROOT=$1 "$berth" build -t "${3:-$tag}" -q "$2"
}

docker_build() { # docker_build CTX [TAG]
  "$docker_cli" build -q -t "${2:-$tag}" "$1"
}

docker_reset() { # empty BuildKit's cache and drop the image
  "$docker_cli" image rm -f "${1:-$tag}" >/dev/null 2>&1 || true
  "$docker_cli" builder prune -af >/dev/null
}

berth_failed() {
  berth_ok=0
  berth_why="berth build failed: $(head -c 600 "$work/last.out" | tr '\n' ' ')"
  say "$berth_why"
}

# --- (a)-(c) --------------------------------------------------------------------

# One untimed build per tool first: a freshly started dockerd's first build
# pays one-off setup (its stores, BuildKit's database) that says nothing
# about cold-cache builds; run 1 was 3-5x the others here without this.
if [ "$berth_ok" = 1 ]; then
  mkdir -p "$work/berth-warmup"
  timed t berth_build "$work/berth-warmup" "$ctx" || berth_failed
  rm -rf -- "$work/berth-warmup"
fi
timed t docker_build "$ctx" || { say "docker build failed:"; cat "$work/last.out" >&2; exit 1; }
say "warm-up build done"

berth_cold=() berth_noop=() berth_one=()
bk_cold=() bk_noop=() bk_one=()
change=$ctx/src/dir3/file3.txt

for i in $(seq 1 "$n"); do
  if [ "$berth_ok" = 1 ]; then
    root=$work/berth-root
    rm -rf -- "$root"
    mkdir -p "$root"
    if timed t berth_build "$root" "$ctx"; then
      berth_cold+=("$t")
      if timed t2 berth_build "$root" "$ctx"; then
        berth_noop+=("$t2")
        echo "berth run $i" >>"$change"
        if timed t3 berth_build "$root" "$ctx"; then
          berth_one+=("$t3")
          say "run $i/$n berth:    cold ${t}s  no-op ${t2}s  one-file ${t3}s"
        else berth_failed; fi
      else berth_failed; fi
    else berth_failed; fi
  fi

  docker_reset
  timed t docker_build "$ctx" || { say "docker build failed:"; cat "$work/last.out" >&2; exit 1; }
  bk_cold+=("$t")
  timed t2 docker_build "$ctx" || { say "docker build failed:"; cat "$work/last.out" >&2; exit 1; }
  bk_noop+=("$t2")
  echo "buildkit run $i" >>"$change"
  timed t3 docker_build "$ctx" || { say "docker build failed:"; cat "$work/last.out" >&2; exit 1; }
  bk_one+=("$t3")
  say "run $i/$n BuildKit: cold ${t}s  no-op ${t2}s  one-file ${t3}s"
done
rm -rf -- "$work/berth-root"

# --- (d) a 1 GiB file -------------------------------------------------------------

big_berth_rss=n/a big_berth_time=n/a big_bk_rss=n/a big_bk_time=n/a big_cli_rss=n/a
if [ "$big_mb" -gt 0 ]; then
  big=$work/big
  mkdir -p "$big"
  say "writing a ${big_mb} MiB incompressible file"
  head -c "$((big_mb * 1024 * 1024))" /dev/urandom >"$big/big.bin"
  printf 'FROM scratch\nCOPY big.bin /\n' >"$big/Dockerfile"

  if [ "$berth_ok" = 1 ]; then
    mkdir -p "$work/berth-root-big"
    if timed big_berth_time /usr/bin/time -v -o "$work/time-berth" \
      env BERTH_ROOT="$work/berth-root-big" "$berth" build -t big:bench -q "$big"; then
      big_berth_rss=$(awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$work/time-berth")
    else
      berth_failed
    fi
    rm -rf -- "$work/berth-root-big"
  fi

  docker_reset big:bench
  # Reset dockerd's peak RSS (BuildKit runs inside it), then read it back.
  echo 5 >"/proc/$dockerd_pid/clear_refs" || say "cannot reset dockerd's VmHWM"
  timed big_bk_time /usr/bin/time -v -o "$work/time-docker" "$docker_cli" build -q -t big:bench "$big" ||
    { say "docker build (${big_mb} MiB) failed:"; cat "$work/last.out" >&2; exit 1; }
  big_bk_rss=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$dockerd_pid/status")
  big_cli_rss=$(awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$work/time-docker")
  docker_reset big:bench
  rm -rf -- "$big"
fi

# --- report ------------------------------------------------------------------------

m_bc=$(median "${berth_cold[@]}") m_bn=$(median "${berth_noop[@]}") m_bo=$(median "${berth_one[@]}")
[ "$berth_ok" = 1 ] || { m_bc=n/a m_bn=n/a m_bo=n/a; }
m_kc=$(median "${bk_cold[@]}") m_kn=$(median "${bk_noop[@]}") m_ko=$(median "${bk_one[@]}")

meets() { # meets RATIO LIMIT
  if [[ "$1" =~ ^[0-9.]+$ ]]; then
    awk -v r="$1" -v l="$2" 'BEGIN { print (r <= l) ? "yes" : "no" }'
  else
    echo n/a
  fi
}

echo
echo "W1 without RUN, $n runs each, medians; $(date -u +%Y-%m-%d), $(nproc) cores"
echo "berth: \`BERTH_ROOT=... berth build -t $tag -q CTX\`; BuildKit: Docker $engine_version, \`DOCKER_BUILDKIT=1 /usr/bin/docker build -q -t $tag CTX\`"
echo
echo "| case | berth median (s) | BuildKit median (s) | ratio | target | met |"
echo "|---|---|---|---|---|---|"
r=$(ratio "$m_bc" "$m_kc")
echo "| cold build | $m_bc | $m_kc | $r | ≤ 0.5 | $(meets "$r" 0.5) |"
r=$(ratio "$m_bn" "$m_kn")
echo "| no-op rebuild | $m_bn | $m_kn | $r | ≤ 0.25 | $(meets "$r" 0.25) |"
r=$(ratio "$m_bo" "$m_ko")
echo "| one-file change | $m_bo | $m_ko | $r | ≤ 0.5 | $(meets "$r" 0.5) |"
if [ "$big_mb" -gt 0 ]; then
  echo
  echo "| ${big_mb} MiB file (\`COPY big.bin /\`), cold | berth | BuildKit | target |"
  echo "|---|---|---|---|"
  echo "| peak RSS (MB) | $big_berth_rss | $big_bk_rss (dockerd VmHWM; docker CLI $big_cli_rss) | berth < 100 |"
  echo "| time (s) | $big_berth_time | $big_bk_time | — |"
fi
if [ "$berth_ok" != 1 ]; then
  echo
  echo "berth: n/a ($berth_why)"
fi
