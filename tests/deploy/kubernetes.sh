#!/usr/bin/env bash
# deploy/kubernetes: every manifest against the Kubernetes OpenAPI schemas with
# kubernetes-validate --strict (unknown fields are errors), for the oldest and the
# newest Kubernetes it ships schemas for that we support; the two Prometheus
# Operator CRDs, for which it has no schema (it only warns), are checked by
# check_k8s.py against strict schemas of the fields used, with the cross-manifest
# checks.
source "$(dirname "$0")/lib.sh"
VERSIONS="${K8S_VERSIONS:-1.29.0 1.37.0}"
cd "$REPO"
mapfile -t files < <(find deploy/kubernetes -name '*.yaml' | sort)
status=0
for v in $VERSIONS; do
  echo "--- kubernetes-validate --strict -k $v (${#files[@]} files)"
  out="$("$VENV/bin/kubernetes-validate" --strict -k "$v" "${files[@]}" 2>&1)" || status=1
  # one line per object; the CRDs show up as WARN (no schema), errors as ERROR
  grep -vE '^INFO ' <<<"$out" || true
  echo "$(grep -c '^INFO .* passed' <<<"$out") objects passed"
done
[ "$status" = 0 ] || die "kubernetes-validate found errors"
echo "--- check_k8s.py (CRD schemas, PrometheusRule = alerts.yml, hardening, wiring)"
"$PY" "$DEPLOY_TESTS/check_k8s.py" "$REPO"
