#!/usr/bin/env bash
# deploy/container: builds the image with buildah (chroot isolation: no user
# namespaces needed) from the statically linked release binary, checks its
# configuration and contents, and smoke-runs it with `buildah run`:
#   1. tenantwatch --version
#   2. tenantwatch demo --listen 127.0.0.1:0: prints the tenants and the metrics URL,
#      serves metrics, runs as uid 65532 and keeps running until stopped;
#   3. tenantwatch run against `tenantwatch sim` on the host, with the config and
#      secrets mounted as in production (CREDENTIALS_DIRECTORY, relative *_file
#      names, endpoints by host name so the static binary's resolver is used): the
#      refresh token is read and the tenants are discovered.
# CARGO_TARGET_DIR is honoured for the binary (default: target).
source "$(dirname "$0")/lib.sh"
IMAGE="${IMAGE:-localhost/tenantwatch:deploy-test}"
tmp="$(mktemp -d)"
ctr=""
pids=()
cleanup() {
  # our background jobs and what runs under them in the container
  for p in "${pids[@]}"; do for c in $(descendants "$p"); do pids+=("$c"); done; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  buildah rmi "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# every descendant pid of $1
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

echo "--- build"
CONTAINER_BUILDER=buildah BUILDAH_ISOLATION=chroot "$REPO/deploy/container/build.sh" "$IMAGE" 2>&1 \
  | grep -vE '^(Copying|Writing|Storing|Getting)' | tail -n 20
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"

echo "--- image configuration"
buildah inspect --type image "$IMAGE" >"$tmp/inspect.json"
cfg() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["OCIv1"]["config"]; v=c.get(sys.argv[2]); print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))' "$tmp/inspect.json" "$1"; }
user="$(cfg User)"
entry="$(cfg Entrypoint)"
cmd="$(cfg Cmd)"
ports="$(cfg ExposedPorts)"
envs="$(cfg Env)"
echo "user=$user entrypoint=$entry cmd=$cmd ports=$ports"
[ "$user" = "65532:65532" ] || die "USER is $user"
[ "$entry" = '["/tenantwatch"]' ] || die "ENTRYPOINT is $entry"
[ "$cmd" = '["run","--config","/etc/tenantwatch/tenantwatch.toml"]' ] || die "CMD is $cmd"
grep -q '"9464/tcp"' <<<"$ports" || die "9464 not exposed"
grep -q 'TENANTWATCH__SERVER__LISTEN=0.0.0.0:9464' <<<"$envs" || die "no TENANTWATCH__SERVER__LISTEN=0.0.0.0:9464"
health="$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get("Docker", {}).get("config", {}).get("Healthcheck", {}).get("Test")))' "$tmp/inspect.json")"
echo "healthcheck=$health"
[[ "$health" == '["CMD", "/tenantwatch", "healthcheck"'* ]] || die "HEALTHCHECK is $health (the OCI format drops it: build with --format docker)"

ctr="$(buildah from "$IMAGE")"
echo "--- contents"
mnt="$(buildah mount "$ctr")"
(cd "$mnt" && find . -mindepth 1 \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run \) -prune -o -print | sort | tr '\n' ' '); echo
[ ! -e "$mnt/bin/sh" ] && [ ! -e "$mnt/usr/bin/env" ] || die "the image has a shell"
[ "$(stat -c '%a' "$mnt/tmp")" = 1777 ] || die "/tmp is not mode 1777"
file -L "$mnt/tenantwatch" | grep -q 'static' || die "/tenantwatch is not statically linked"
buildah umount "$ctr" >/dev/null
run() { buildah run --isolation chroot "$@"; }

echo "--- tenantwatch --version"
v="$(run "$ctr" -- /tenantwatch --version)"
echo "$v"
[[ "$v" =~ ^tenantwatch\ [0-9]+\.[0-9]+\.[0-9]+ ]] || die "unexpected --version output"

echo "--- tenantwatch demo --listen 127.0.0.1:0"
# buildah itself in the background (not a shell function), so that $! is buildah's
# pid: SIGTERM to it stops the process in the container.
buildah run --isolation chroot "$ctr" -- /tenantwatch demo --listen 127.0.0.1:0 >"$tmp/demo.log" 2>&1 &
demo=$!
pids+=("$demo")
wait_for_line "$tmp/demo.log" 'metrics +http://127\.0\.0\.1:[0-9]+/metrics' 30 || { cat "$tmp/demo.log"; die "demo printed no metrics URL"; }
grep -E 'customer tenants|metrics +http' "$tmp/demo.log"
grep -qE '[0-9]+ customer tenants' "$tmp/demo.log" || die "demo did not print the tenants"
url="$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' "$tmp/demo.log" | head -n 1)"
for _ in $(seq 1 50); do
  curl -fsS "$url" >"$tmp/metrics.txt" 2>/dev/null && grep -q '^tenantwatch_tenant_info' "$tmp/metrics.txt" && break
  sleep 0.2
done
n="$(grep -c '^tenantwatch_tenant_info{' "$tmp/metrics.txt" || true)"
echo "metrics served: $n tenants in tenantwatch_tenant_info"
[ "$n" -gt 0 ] || die "no tenantwatch_tenant_info from $url"
uids="$(for p in $(descendants "$demo"); do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = tenantwatch ] && stat -c %u /proc/"$p"; done | sort -u)"
echo "demo runs as uid: $uids"
[ "$uids" = 65532 ] || die "demo does not run as uid 65532 (got: $uids)"
echo "--- the image's HEALTHCHECK command against the running demo"
port_demo="$(grep -oE 'http://127\.0\.0\.1:[0-9]+/metrics' "$tmp/demo.log" | head -n 1 | sed -E 's#.*:([0-9]+)/metrics#\1#')"
hc=""
for _ in $(seq 1 50); do
  hc="$(run "$ctr" -- /tenantwatch healthcheck --listen "127.0.0.1:$port_demo" 2>&1)" && break
  sleep 0.2
done
echo "$hc"
[[ "$hc" == ready:* ]] || die "healthcheck did not turn ready: $hc"
if run "$ctr" -- /tenantwatch healthcheck --listen 127.0.0.1:1 >/dev/null 2>&1; then die "healthcheck of a closed port exited 0"; fi
echo "ok: exit 0 when ready, non-zero when nothing answers"
sleep 3
kill -0 "$demo" 2>/dev/null || { cat "$tmp/demo.log"; die "demo exited on its own"; }
echo "still running after 3 s; stopping it"
inside="$(descendants "$demo")"
kill -TERM "$demo"; wait "$demo" 2>/dev/null || true
for _ in $(seq 1 100); do
  alive=""; for p in $inside; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  [ -z "$alive" ] && break; sleep 0.1
done
[ -z "$alive" ] || { kill -KILL $alive 2>/dev/null; die "demo did not stop within 10 s of SIGTERM"; }
echo "stopped"

echo "--- tenantwatch run against the simulated cloud (config and secrets mounted)"
mkdir -p "$tmp/sim"
"$STATIC_BIN" sim --listen 127.0.0.1:0 --tenants 3 --write-config "$tmp/sim/tenantwatch.toml" >"$tmp/sim.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do grep -q 'client_secret_file' "$tmp/sim/tenantwatch.toml" 2>/dev/null && break; sleep 0.1; done
[ -s "$tmp/sim/tenantwatch.toml" ] || { cat "$tmp/sim.log"; die "sim wrote no config"; }
mkdir -p "$tmp/etc" "$tmp/creds"
ca="$(sed -n 's/^ca_file = "\(.*\)"$/\1/p' "$tmp/sim/tenantwatch.toml")"
cp "$ca" "$tmp/etc/ca.pem"
# secrets by relative name from CREDENTIALS_DIRECTORY, endpoints by host name
while read -r f; do cp "$f" "$tmp/creds/"; done < <(sed -n 's/^client_secret_file = "\(.*\)"$/\1/p' "$tmp/sim/tenantwatch.toml")
sed -e 's#https://127\.0\.0\.1:#https://localhost:#' -e "s#^ca_file = .*#ca_file = \"/etc/tenantwatch/ca.pem\"#" \
    -e 's#^client_secret_file = ".*/\([^/]*\)"$#client_secret_file = "\1"#' \
    "$tmp/sim/tenantwatch.toml" >"$tmp/etc/tenantwatch.toml"
chown -R 65532:65532 "$tmp/creds" && chmod 0700 "$tmp/creds" && chmod 0644 "$tmp/etc/"*
port="$(free_port)"
buildah run --isolation chroot --env CREDENTIALS_DIRECTORY=/run/secrets/tenantwatch --env "TENANTWATCH__SERVER__LISTEN=127.0.0.1:$port" \
  -v "$tmp/etc:/etc/tenantwatch:ro" -v "$tmp/creds:/run/secrets/tenantwatch:ro" \
  "$ctr" -- /tenantwatch run --config /etc/tenantwatch/tenantwatch.toml >"$tmp/run.log" 2>&1 &
pids+=("$!")
ok=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/metrics" >"$tmp/run-metrics.txt" 2>/dev/null \
     && grep -q '^tenantwatch_refresh_token_valid{partner="default"} 1' "$tmp/run-metrics.txt" \
     && grep -q '^tenantwatch_discovery_up{partner="default"} 1' "$tmp/run-metrics.txt"; then ok=1; break; fi
  sleep 0.2
done
grep -E '^tenantwatch_(refresh_token_valid|refresh_token_store_up|discovery_up|tenants)[{ ]' "$tmp/run-metrics.txt" || true
[ -n "$ok" ] || { tail -n 20 "$tmp/run.log"; die "the daemon in the image did not read the token and discover the tenants"; }
echo "ok: token read from the simulated Key Vault, tenants discovered"
