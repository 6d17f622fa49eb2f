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

# Quickstart: build the example image into the local store, then run its
# web server from the image's root filesystem (chroot, loopback only) and
# fetch its page. berth's own container runtime comes with RUN support.
echo "quickstart: building examples/hello"
fixtures/make-rootfs.sh examples/hello/rootfs
"$berth_bin" build -t hello examples/hello
rootfs=$(mktemp -d)
server=""
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  rm -rf "$rootfs"
}
trap cleanup EXIT
"$berth_bin" build -q --output "type=local,dest=$rootfs" examples/hello >/dev/null
port=$((20000 + RANDOM % 20000))
$sudo chroot "$rootfs" /bin/httpd -f -p "127.0.0.1:$port" -h /www &
server=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if page=$(busybox wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null); then
    echo "quickstart: the hello image serves: $page"
    exit 0
  fi
  sleep 0.2
done
echo "install.sh: the example's web server did not answer on 127.0.0.1:$port" >&2
exit 1
