#!/usr/bin/env bash
# The shipped alert rules and dashboard on a real Prometheus (Debian's) scraping
# `tenantwatch demo`: every rule loads and evaluates without error on real series,
# every dashboard query is accepted, and the daemon exports nothing that
# exported-metrics.txt does not list. See check_live.py.
source "$(dirname "$0")/lib.sh"
BIN="${TENANTWATCH_BIN:-$STATIC_BIN}"
[ -x "$BIN" ] || die "no tenantwatch binary at $BIN (set TENANTWATCH_BIN or build it first)"
command -v prometheus >/dev/null || die "prometheus not installed (Debian package prometheus)"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

TMPDIR="$tmp" "$BIN" demo --listen 127.0.0.1:0 --tenants 5 >"$tmp/demo.log" 2>&1 &
pids+=("$!")
wait_for_line "$tmp/demo.log" 'metrics +http://127\.0\.0\.1:[0-9]+/metrics' 30 || { cat "$tmp/demo.log"; die "demo did not start"; }
daemon="$(grep -oE 'metrics +http://127\.0\.0\.1:[0-9]+' "$tmp/demo.log" | head -n 1 | grep -oE 'http://.*')"
port="$(free_port)"
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["$REPO/deploy/prometheus/alerts.yml"]
scrape_configs:
  - job_name: tenantwatch
    static_configs:
      - targets: ["${daemon#http://}"]
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$port" >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null || { tail "$tmp/prometheus.log"; die "prometheus did not start"; }
echo "demo at $daemon, prometheus at http://127.0.0.1:$port"
"$PY" "$DEPLOY_TESTS/check_live.py" "http://127.0.0.1:$port" "$daemon" "$REPO/deploy/prometheus/alerts.yml" \
  "$REPO/deploy/grafana/tenantwatch.json" "$DEPLOY_TESTS/exported-metrics.txt"
