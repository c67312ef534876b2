#!/usr/bin/env bash
# Runs every check of the operations artifacts in deploy/, in order, and prints a
# summary line per check; exits non-zero if any failed. Works on a fresh Debian
# machine as root: installs what is missing (systemd for systemd-analyze,
# prometheus for promtool and the server, prometheus-alertmanager for amtool,
# buildah, a venv with kubernetes-validate and PyYAML, the Compose schema).
#
#   tests/deploy/run.sh                       # everything
#   DEPLOY_ONLY="prometheus grafana" tests/deploy/run.sh
#   DEPLOY_SKIP=container tests/deploy/run.sh
#
# The container check builds the statically linked release binary with cargo into
# $CARGO_TARGET_DIR (default: target) — the slow part, a few minutes from cold;
# configs and e2e run that binary (or TENANTWATCH_BIN).
source "$(dirname "$0")/lib.sh"
set +e
started=$(date +%s)
CHECKS=(tools docs systemd prometheus metrics grafana compose kubernetes container promtool configs e2e)
declare -A DESCRIPTION=(
  [tools]="install the test tools"
  [docs]="Markdown stands alone: links inside the repository resolve, Layout paths exist, no split tables"
  [systemd]="systemd unit: verify, security score <= 2.0, tmpfiles, notify/reload/watchdog, setpriority"
  [prometheus]="alert rules: promtool check + unit tests, coverage, metric names"
  [metrics]="exported-metrics.txt covers README.md's metrics"
  [promtool]="promtool check metrics over a full /metrics of the demo"
  [grafana]="dashboard: PromQL parses, exported metrics only, layout"
  [compose]="compose stack: schema, wiring, promtool/amtool configs"
  [kubernetes]="manifests: kubernetes-validate --strict, CRDs, hardening, wiring"
  [container]="container image: buildah build, --version, demo, run against sim"
  [configs]="shipped configs load in the binary"
  [e2e]="rules and dashboard on a real Prometheus scraping the demo"
)
declare -A TIMEOUT=([container]=1200)

install_tools() {
  local need=()
  command -v systemd-analyze >/dev/null || need+=(systemd)
  command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
  command -v amtool >/dev/null || need+=(prometheus-alertmanager)
  command -v buildah >/dev/null || need+=(buildah)
  command -v curl >/dev/null || need+=(curl)
  command -v ps >/dev/null || need+=(procps)
  command -v file >/dev/null || need+=(file)
  command -v objcopy >/dev/null || need+=(binutils)
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
  if [ ${#need[@]} -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || return 1
  fi
  systemd-analyze --version | head -n 1
  promtool --version 2>&1 | head -n 1
  buildah --version
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" || return 1; fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$DEPLOY_TESTS/requirements.txt" || return 1
  "$VENV/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(kubernetes-validate|pyyaml|jsonschema) '
  # The Compose specification's JSON schema, as shipped in the docker-compose
  # package (only the schema file is used; nothing is installed).
  if [ ! -s "$VENV/compose_spec.json" ]; then
    local d; d="$(mktemp -d)"
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$d" docker-compose==1.29.2 || return 1
    "$VENV/bin/python" - "$d" "$VENV/compose_spec.json" <<'PY' || return 1
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
open(sys.argv[2], "wb").write(zipfile.ZipFile(whl).read("compose/config/compose_spec.json"))
PY
    rm -rf "$d"
  fi
  echo "compose schema: $VENV/compose_spec.json"
}

selected() {
  local c="$1"
  if [ -n "${DEPLOY_ONLY:-}" ] && [[ " $DEPLOY_ONLY " != *" $c "* ]] && [ "$c" != tools ]; then return 1; fi
  [[ " ${DEPLOY_SKIP:-} " == *" $c "* ]] && return 1
  return 0
}

declare -A RESULT SECONDS_TAKEN
passed=0; failed=0; skipped=0
for c in "${CHECKS[@]}"; do
  if ! selected "$c"; then RESULT[$c]=SKIP; skipped=$((skipped + 1)); continue; fi
  printf '\n==> %s: %s (%ss)\n' "$c" "${DESCRIPTION[$c]}" "$(( $(date +%s) - started ))"
  t0=$(date +%s)
  if [ "$c" = tools ]; then
    install_tools
  else
    timeout "${TIMEOUT[$c]:-300}" bash "$DEPLOY_TESTS/$c.sh"
  fi
  rc=$?
  SECONDS_TAKEN[$c]=$(( $(date +%s) - t0 ))
  if [ "$rc" = 0 ]; then RESULT[$c]=PASS; passed=$((passed + 1)); else RESULT[$c]="FAIL (exit $rc)"; failed=$((failed + 1)); fi
  if [ "$c" = tools ] && [ "$rc" != 0 ]; then echo "cannot install the test tools; stopping"; break; fi
done

printf '\n==> summary (%ss)\n' "$(( $(date +%s) - started ))"
for c in "${CHECKS[@]}"; do
  [ -n "${RESULT[$c]:-}" ] || continue
  printf '%-5s %-11s %5s  %s\n' "${RESULT[$c]%% *}" "$c" "${SECONDS_TAKEN[$c]:+${SECONDS_TAKEN[$c]}s}" "${DESCRIPTION[$c]}"
done
echo "deploy: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
