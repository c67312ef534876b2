# Shared by the tests/deploy/*.sh scripts: paths, the venv, small helpers.
# shellcheck shell=bash
set -euo pipefail
DEPLOY_TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DEPLOY_TESTS/../.." && pwd)"
VENV="${DEPLOY_VENV:-$DEPLOY_TESTS/.venv}"
PY="$VENV/bin/python"
# The statically linked release binary the container is built from.
TRIPLE=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$REPO/$target_dir" ;; esac
STATIC_BIN="$target_dir/$TRIPLE/release/tenantwatch"

die() { echo "FAIL: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_line FILE REGEX SECONDS: waits until FILE has a line matching REGEX.
wait_for_line() {
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
