#!/usr/bin/env bash
# shellcheck disable=SC2034,SC2154 # me is read by lib.sh; work, berth* are set by it
# compose-config.sh: `berth config` vs docker-compose v1's `config` (the
# compose anchor that runs on this machine, Debian's docker-compose 1.29) on
# the same 300-service compose file, interleaved in one run, plus the same
# for ../shared/bench/w2-compose.yaml. Each timed run is a whole process:
# read, interpolate, validate, merge, normalise and print.
#
# The file is written in the subset both tools accept: `version: "2.4"`, no
# top-level `name:`, `x-` anchors merged with `<<`, both environment
# syntaxes, short and long ports and volumes, healthchecks with durations,
# depends_on chains, byte sizes, ${VAR:-default} interpolation.
#
#   N=5 BERTH=target/release/berth bash bench/compose-config.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
me=compose-config
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

n=${N:-5}
services=${SERVICES:-300}
make_work compose-config
find_berth
[ "$berth_ok" = 1 ] || { say "$berth_why"; exit 1; }
compose_v1=$(command -v docker-compose || true)
[ -n "$compose_v1" ] || say "docker-compose not installed (apt-get install docker-compose): berth only"

project=$work/project
mkdir -p "$project"
python3 - "$project/compose.yaml" "$services" <<'PY'
import sys
path, count = sys.argv[1], int(sys.argv[2])
out = ['version: "2.4"', "x-common: &common", "  restart: unless-stopped",
       "  logging:", "    driver: json-file", "    options:", "      max-size: 10m", "services:"]
for i in range(count):
    out += [f"  svc{i}:", "    <<: *common", f"    image: registry.example/app/svc{i}:${{TAG:-1.0}}",
            '    command: ["sh", "-c", "exec server --port 80"]', "    environment:"]
    if i % 2 == 0:
        out += [f'      INDEX: "{i}"', "      HOME_DIR: ${HOME}"]
    else:
        out += [f"      - INDEX={i}", "      - HOME_DIR=${HOME}"]
    out += ["    ports:", f'      - "127.0.0.1:{20000 + i}:80/tcp"', "    volumes:",
            f"      - ./data/{i}:/data:ro", "      - cache:/cache", "    networks: [front, back]",
            "    healthcheck:", "      test: curl -f http://localhost/", "      interval: 1m30s",
            "      timeout: 500ms", "    mem_limit: 512m", "    cpus: 0.5"]
    if i > 0:
        out += ["    depends_on:", f"      svc{i - 1}:", "        condition: service_started"]
    if i % 10 == 0:
        out += ["    build:", f"      context: ./svc{i}", "      args:", "        - VERSION=${TAG:-1.0}"]
out += ["networks:", "  front: {}", "  back:", "    internal: true", "volumes:", "  cache: {}"]
open(path, "w").write("\n".join(out) + "\n")
PY
# docker-compose v1 insists that build contexts exist.
for ((i = 0; i < services; i += 10)); do mkdir -p "$project/svc$i"; done
w2=$work/w2
mkdir -p "$w2"
shared=${SHARED:-$repo/../shared}
[ -f "$shared/bench/w2-compose.yaml" ] || shared=/work/shared
cp "$shared/bench/w2-compose.yaml" "$w2/compose.yaml"
# docker-compose v1 refuses `name:` and needs a version; its copy gets both.
w2v1=$work/w2v1
mkdir -p "$w2v1"
{ echo 'version: "2.4"'; grep -v '^name:' "$w2/compose.yaml"; } >"$w2v1/compose.yaml"
mkdir -p "$w2/base" "$w2v1/base"

config_berth() { (cd "$1" && "$berth" config -p bench >/dev/null); }
config_v1() { (cd "$1" && COMPOSE_PROJECT_NAME=bench "$compose_v1" config >/dev/null); }

berth_big=() v1_big=() berth_w2=() v1_w2=()
for i in $(seq 1 "$n"); do
  timed t config_berth "$project" || { say "berth config failed: $(tail -n3 "$work/last.out")"; exit 1; }
  berth_big+=("$t")
  if [ -n "$compose_v1" ]; then
    timed t config_v1 "$project" || { say "docker-compose config failed: $(tail -n3 "$work/last.out")"; exit 1; }
    v1_big+=("$t")
  fi
  timed t config_berth "$w2" && berth_w2+=("$t")
  if [ -n "$compose_v1" ]; then timed t config_v1 "$w2v1" && v1_w2+=("$t"); fi
  say "run $i/$n done"
done

bb=$(median "${berth_big[@]}") vb=$(median "${v1_big[@]}")
bw=$(median "${berth_w2[@]}") vw=$(median "${v1_w2[@]}")
echo
echo "| file | berth config | docker-compose 1.29 config | ratio |"
echo "|---|---|---|---|"
echo "| $services services | ${bb} s | ${vb} s | $(ratio "$bb" "$vb")x |"
echo "| W2 (3 services) | ${bw} s | ${vw} s | $(ratio "$bw" "$vw")x |"
[ -n "${WORK:-}" ] || rm -rf -- "$work"
