#!/usr/bin/env bash
# deploy/grafana: every PromQL expression of the dashboard parses (promtool) and
# names only exported metrics; datasource and tenant variables; sane layout.
source "$(dirname "$0")/lib.sh"
"$PY" "$DEPLOY_TESTS/check_promql.py" grafana "$REPO/deploy/grafana/tenantwatch.json" "$DEPLOY_TESTS/exported-metrics.txt"
