#!/usr/bin/env bash
# deploy/compose: the YAML parses and matches the Compose schema, the services are
# wired to the shipped rules, dashboard and config; prometheus.yml passes
# `promtool check config` and alertmanager.yml `amtool check-config`.
source "$(dirname "$0")/lib.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
spec="$VENV/compose_spec.json"
[ -s "$spec" ] || die "$spec missing (run.sh fetches it from the docker-compose package)"
echo "--- check_compose.py"
"$PY" "$DEPLOY_TESTS/check_compose.py" "$REPO" "$spec" "$tmp"
echo "--- promtool check config (rule_files pointed at deploy/prometheus/alerts.yml)"
promtool check config "$tmp/prometheus.yml"
echo "--- amtool check-config"
amtool check-config "$REPO/deploy/compose/alertmanager.yml"
