#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), then configures and builds into build/.
#   bash scripts/bootstrap.sh [extra meson options…]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build g++ clang pkg-config libboost-dev libicu-dev librapidcheck-dev
          libgtest-dev libbenchmark-dev python3-numpy)  # numpy: regenerating tests/types goldens
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
  meson setup build "$@" >/dev/null
fi
ninja -C build
