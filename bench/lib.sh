# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are for the caller
# lib.sh: what the benchmarks (w1-build.sh, w1-run.sh, registry.sh) share: finding
# make-w1.py, the scratch directory and the berth binary, starting the
# private Docker engine, and the timing and table helpers. Sourced, not run;
# the script sets `repo` (the repository root) and `me` (its name, for
# messages) first.

: "${repo:?set repo before sourcing lib.sh}" "${me:?set me before sourcing lib.sh}"

say() { echo "$me: $*" >&2; }

# find_make_w1: sets make_w1 to the shared folder's bench/make-w1.py
# (SHARED=dir, else ../shared beside the repo, else /work/shared); exits if
# it is not there.
find_make_w1() {
  local shared=${SHARED:-}
  if [ -z "$shared" ]; then
    if [ -f "$repo/../shared/bench/make-w1.py" ]; then
      shared=$repo/../shared
    else
      shared=/work/shared
    fi
  fi
  make_w1=$shared/bench/make-w1.py
  [ -f "$make_w1" ] || { say "$make_w1 not found (set SHARED=)"; exit 1; }
}

# make_work NAME: sets work to $WORK (created if missing, made absolute) or
# to a new directory /tmp/NAME.XXXXXX.
make_work() {
  if [ -n "${WORK:-}" ]; then
    work=$(realpath -m -- "$WORK")
    mkdir -p "$work"
  else
    work=$(mktemp -d "/tmp/$1.XXXXXX")
  fi
}

# find_berth: sets berth to $BERTH, or builds it (cargo build --release -p
# berth, log in $work/cargo.log); berth_ok=0 and berth_why say why not.
find_berth() {
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
}

# start_dockerd DIR: starts a private dockerd in DIR (fixtures/dockerd.sh;
# the caller stops it) and points /usr/bin/docker at it with BuildKit on;
# sets engine_version. Fails if the engine does not come up.
start_dockerd() {
  local host
  say "starting dockerd in $1"
  host=$(bash "$repo/fixtures/dockerd.sh" start "$1" | sed -n 's/^DOCKER_HOST=//p') || return 1
  [ -n "$host" ] || { say "fixtures/dockerd.sh printed no DOCKER_HOST"; return 1; }
  export DOCKER_HOST=$host
  export DOCKER_CONFIG=$work/docker-config
  export DOCKER_BUILDKIT=1
  unset DOCKER_CONTEXT
  engine_version=$(/usr/bin/docker version --format '{{.Server.Version}}')
}

# timed OUTVAR CMD...: runs CMD (output to $work/last.out), stores seconds.
# An untimed `sync` first: otherwise a build that syncs (berth calls
# syncfs, which waits for every dirty page of the filesystem) pays for the
# previous build's writeback, the other tools' included.
timed() {
  local var=$1 t0 t1
  shift
  sync
  t0=$EPOCHREALTIME
  "$@" >"$work/last.out" 2>&1 || return 1
  t1=$EPOCHREALTIME
  printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
}

# berth_round I ON_FAILURE...: run I's three berth builds of $ctx with the
# script's berth_build, in a fresh store: cold, no-op, then one-file (a line
# appended to $change). Appends to berth_cold, berth_noop and berth_one;
# runs ON_FAILURE... when a build fails. The store is removed afterwards.
# shellcheck disable=SC2154 # ctx, change and n are the calling script's
berth_round() {
  local i=$1 root=$work/berth-root t t2 t3
  shift
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
      else "$@"; fi
    else "$@"; fi
  else "$@"; fi
  rm -rf -- "$root"
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

meets() { # meets RATIO LIMIT: yes, no, or n/a when RATIO is not a number
  if [[ "$1" =~ ^[0-9.]+$ ]]; then
    awk -v r="$1" -v l="$2" 'BEGIN { print (r <= l) ? "yes" : "no" }'
  else
    echo n/a
  fi
}
