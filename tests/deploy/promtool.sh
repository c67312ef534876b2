#!/usr/bin/env bash
# `promtool check metrics` over a full /metrics of `tenantwatch demo` (every
# collector, 25 simulated tenants, process_* and build info): the exposition
# must pass Prometheus' own linter without a single remark. Runs the binary in
# TENANTWATCH_BIN (default: the static release binary, else the debug build
# cargo test made).
source "$(dirname "$0")/lib.sh"
BIN="${TENANTWATCH_BIN:-$STATIC_BIN}"
[ -x "$BIN" ] || [ -n "${TENANTWATCH_BIN:-}" ] || BIN="$target_dir/debug/tenantwatch"
[ -x "$BIN" ] || die "no tenantwatch binary at $BIN (set TENANTWATCH_BIN or build it first)"
command -v promtool >/dev/null || die "promtool not installed (Debian package prometheus)"
tmp="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$tmp"; }
trap cleanup EXIT

TMPDIR="$tmp" "$BIN" demo --web.listen-address 127.0.0.1:0 --tenants 25 >"$tmp/demo.log" 2>&1 &
pid=$!
wait_for_line "$tmp/demo.log" 'metrics +http://127\.0\.0\.1:[0-9]+/metrics' 60 || { cat "$tmp/demo.log"; die "demo did not start"; }
base="$(grep -oE 'metrics +http://127\.0\.0\.1:[0-9]+' "$tmp/demo.log" | head -n 1 | grep -oE 'http://.*')"
for _ in $(seq 1 300); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { tail -n 20 "$tmp/demo.log"; die "demo not ready within 60 s"; }
curl -fsS "$base/metrics" >"$tmp/metrics.txt" || die "no /metrics"
# A full exposition: tenant series, every collector, the process and build families.
for want in '^tenantwatch_tenant_up\{' '^tenantwatch_m365_license_enabled_units\{' '^tenantwatch_azure_resources\{' \
            '^process_resident_memory_bytes ' '^process_cpu_seconds_total ' '^tenantwatch_build_info\{revision="'; do
  grep -qE "$want" "$tmp/metrics.txt" || die "/metrics lacks $want"
done
echo "$(wc -l <"$tmp/metrics.txt") lines, $(grep -c '^# TYPE' "$tmp/metrics.txt") families"
out="$(promtool check metrics <"$tmp/metrics.txt" 2>&1)"
rc=$?
[ -z "$out" ] || echo "$out"
[ "$rc" = 0 ] && [ -z "$out" ] || die "promtool check metrics found problems"
echo "ok: promtool check metrics has nothing to say"
