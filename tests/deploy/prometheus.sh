#!/usr/bin/env bash
# deploy/prometheus: promtool check rules, the unit tests, and the alert coverage
# and metric-name checks.
source "$(dirname "$0")/lib.sh"
cd "$REPO/deploy/prometheus"
echo "--- promtool check rules alerts.yml"
promtool check rules alerts.yml
echo "--- promtool test rules alerts_test.yml"
promtool test rules alerts_test.yml
echo "--- coverage and metric names"
"$PY" "$DEPLOY_TESTS/check_promql.py" alerts alerts.yml alerts_test.yml "$DEPLOY_TESTS/exported-metrics.txt"
