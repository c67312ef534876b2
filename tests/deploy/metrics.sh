#!/usr/bin/env bash
# tests/deploy/exported-metrics.txt covers README.md's Metrics table.
source "$(dirname "$0")/lib.sh"
"$PY" "$DEPLOY_TESTS/check_promql.py" readme "$REPO/README.md" "$DEPLOY_TESTS/exported-metrics.txt"
