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
me=w1-build.sh
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
n=${N:-5}
big_mb=${BIG_MB:-1024}
docker_cli=/usr/bin/docker
tag=w1:bench

find_make_w1
[ -x "$docker_cli" ] || { say "$docker_cli missing: apt-get install docker.io"; exit 1; }
[ -x /usr/bin/time ] || { say "/usr/bin/time missing: apt-get install time"; exit 1; }

make_work berth-w1
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

# --- the berth binary -------------------------------------------------------

find_berth

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

start_dockerd "$dockerd_dir" || { say "the Docker engine did not start"; exit 1; }
dockerd_pid=$(cat "$dockerd_dir/pid")

# --- build helpers ----------------------------------------------------------------

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
    berth_round "$i" berth_failed
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
