#!/usr/bin/env bash
# Every tenantwatch.toml shipped for deployment loads in the real binary:
# `tenantwatch check` validates the whole config first (exit 2 and one line per bad
# key otherwise) and prints "config  ok" before it tries the network. Secrets come
# from dummy files in CREDENTIALS_DIRECTORY, as with systemd / Kubernetes. The
# workload-identity config gets the AZURE_* variables the webhook injects, and the
# sharded config runs with the hostname tenantwatch-1 (in its own UTS namespace);
# both are also checked to fail without them, so the check can tell.
source "$(dirname "$0")/lib.sh"
BIN="${TENANTWATCH_BIN:-$STATIC_BIN}"
[ -x "$BIN" ] || die "no tenantwatch binary at $BIN (set TENANTWATCH_BIN or build it first)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/creds" "$tmp/configs"
echo "dummy-secret" >"$tmp/creds/partner-client-secret"
echo "dummy-secret" >"$tmp/creds/keyvault-client-secret"
echo "eyJhbGciOiJSUzI1NiJ9.e30.c2ln" >"$tmp/federated-token"
chmod 0600 "$tmp/creds/"*

# the ConfigMaps' tenantwatch.toml, and the compose and example configs
"$PY" - "$REPO" "$tmp/configs" <<'PY'
import sys, yaml, pathlib
repo, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted((repo / "deploy/kubernetes").glob("*/configmap.yaml")):
    for d in yaml.safe_load_all(f.read_text()):
        if d and d.get("kind") == "ConfigMap":
            (out / f"kubernetes-{f.parent.name}.toml").write_text(d["data"]["tenantwatch.toml"])
(out / "compose.toml").write_text((repo / "deploy/compose/config/tenantwatch.toml").read_text())
(out / "example-systemd.toml").write_text((repo / "config/tenantwatch.example.toml").read_text())
PY

fails=0
# check_config NAME FILE EXPECT(ok|invalid) [HOSTNAME] [env...]
check_config() {
  local name="$1" file="$2" expect="$3" host="$4"; shift 4
  local out rc=0
  if [ -n "$host" ]; then
    out="$(cd "$tmp" && env -i PATH="$PATH" CREDENTIALS_DIRECTORY="$tmp/creds" "$@" \
      timeout 60 unshare --uts sh -c 'echo "$0" >/proc/sys/kernel/hostname && exec "$@"' "$host" "$BIN" check --config "$file" 2>&1)" || rc=$?
  else
    out="$(cd "$tmp" && env -i PATH="$PATH" CREDENTIALS_DIRECTORY="$tmp/creds" "$@" \
      timeout 60 "$BIN" check --config "$file" 2>&1)" || rc=$?
  fi
  if [ "$expect" = ok ]; then
    if [ "$rc" != 2 ] && grep -qE '^config +ok' <<<"$out"; then
      echo "ok: $name loads"
    else
      echo "FAIL: $name does not load (exit $rc):"; sed 's/^/    /' <<<"$out" | head -n 20; fails=$((fails + 1))
    fi
  else
    if [ "$rc" = 2 ]; then
      echo "ok: $name is refused as expected: $(grep -m1 -E '^  - ' <<<"$out" | sed 's/^  - //')"
    else
      echo "FAIL: $name should be refused (exit 2) but exited $rc"; fails=$((fails + 1))
    fi
  fi
}

wi_env=(AZURE_TENANT_ID=00000000-0000-0000-0000-000000000000 AZURE_CLIENT_ID=00000000-0000-0000-0000-000000000000
        AZURE_FEDERATED_TOKEN_FILE="$tmp/federated-token" AZURE_AUTHORITY_HOST=https://login.microsoftonline.com/)
c="$tmp/configs"
check_config "config/tenantwatch.example.toml (systemd)" "$c/example-systemd.toml" ok ""
check_config "deploy/compose/config/tenantwatch.toml" "$c/compose.toml" ok ""
check_config "deploy/kubernetes/deployment" "$c/kubernetes-deployment.toml" ok ""
check_config "deploy/kubernetes/workload-identity (webhook env)" "$c/kubernetes-workload-identity.toml" ok "" "${wi_env[@]}"
check_config "deploy/kubernetes/workload-identity without the webhook env" "$c/kubernetes-workload-identity.toml" invalid ""
check_config "deploy/kubernetes/sharded as pod tenantwatch-1" "$c/kubernetes-sharded.toml" ok tenantwatch-1
check_config "deploy/kubernetes/sharded on a host not named tenantwatch-N" "$c/kubernetes-sharded.toml" invalid some-host
[ "$fails" = 0 ] || die "$fails config check(s) failed"
