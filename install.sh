#!/usr/bin/env bash
# install.sh: installs berth and the system packages it uses, then runs the
# quickstart on examples/hello. Debian/Ubuntu, as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# busybox-static provides the root filesystem of the example image.
packages=(busybox-static)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "install.sh: cargo not found: install a Rust toolchain (1.85 or newer, e.g. with rustup) and run again" >&2
  exit 1
fi
cargo install --locked --quiet --path cli
berth_bin="${CARGO_HOME:-$HOME/.cargo}/bin/berth"

echo "berth installed: $("$berth_bin" --version)"
echo "quickstart: checking examples/hello/Dockerfile"
fixtures/make-rootfs.sh examples/hello/rootfs
"$berth_bin" build --check examples/hello && echo "examples/hello/Dockerfile: no problems found"
