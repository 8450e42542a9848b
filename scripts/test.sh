#!/usr/bin/env bash
# Builds (installing what is missing) and runs the whole test suite; exits non-zero when a test fails.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
meson test -C build --print-errorlogs --num-processes 2
