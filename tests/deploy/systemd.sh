#!/usr/bin/env bash
# deploy/systemd: `systemd-analyze verify` is silent about the unit, its exposure
# score (`systemd-analyze security --offline=yes`) is at most 2.0, and the tmpfiles
# snippet creates root-only credential directories. Everything happens inside a
# temporary root (with a stub /usr/bin/tenantwatch): nothing is installed on the host.
source "$(dirname "$0")/lib.sh"
MAX_SCORE=2.0
unit="$REPO/deploy/systemd/tenantwatch.service"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/usr/bin" "$tmp/etc/systemd/system" "$tmp/usr/lib/systemd"
printf '#!/bin/sh\nexit 0\n' >"$tmp/usr/bin/tenantwatch"
chmod 0755 "$tmp/usr/bin/tenantwatch"
# ExecReload=kill -HUP $MAINPID: systemd looks kill up in the root's PATH.
cp "$tmp/usr/bin/tenantwatch" "$tmp/usr/bin/kill"
cp "$unit" "$tmp/etc/systemd/system/"
# the targets the unit orders itself against (network-online.target, multi-user.target …)
cp -a /usr/lib/systemd/system "$tmp/usr/lib/systemd/"

echo "--- systemd-analyze verify"
out="$(systemd-analyze verify --root="$tmp" /etc/systemd/system/tenantwatch.service 2>&1)" \
  || { echo "$out"; die "systemd-analyze verify failed"; }
[ -z "$out" ] || { echo "$out"; die "systemd-analyze verify printed warnings"; }
echo "ok: no warnings"

echo "--- systemd-analyze security --offline=yes"
sec="$(systemd-analyze security --offline=yes --root="$tmp" tenantwatch.service 2>&1)" || true
# the items still exposed, then the overall score
grep -E '^✗' <<<"$sec" | cut -c1-110 || true
score="$(sed -n 's/.*Overall exposure level for tenantwatch.service: \([0-9.]*\).*/\1/p' <<<"$sec")"
[ -n "$score" ] || { echo "$sec"; die "no exposure score in the output"; }
echo "exposure score: $score (must be <= $MAX_SCORE)"
awk -v s="$score" -v m="$MAX_SCORE" 'BEGIN { exit !(s <= m) }' || die "exposure score $score > $MAX_SCORE"

echo "--- the sandbox lets the encoder thread lower its priority"
# The filter as systemd resolves it: setpriority must survive ~@resources.
filter="$(grep -E '^SystemCallFilter=' "$unit")"
grep -qx 'SystemCallFilter=setpriority' <<<"$filter" || die "setpriority is not allowed back after ~@resources"
[ "$(grep -n 'SystemCallFilter=setpriority' "$unit" | cut -d: -f1)" -gt "$(grep -n 'SystemCallFilter=~' "$unit" | cut -d: -f1)" ] \
  || die "SystemCallFilter=setpriority must come after the ~ line, or the deny list removes it again"
if command -v systemd-run >/dev/null && systemd-run --user --wait true >/dev/null 2>&1; then
  out="$(systemd-run --user --wait --pipe -p SystemCallFilter=@system-service -p 'SystemCallFilter=~@privileged @resources' \
         -p SystemCallFilter=setpriority -p SystemCallErrorNumber=EPERM nice -n 5 true 2>&1)" \
    || die "setpriority refused under the unit's filter: $out"
  echo "ok: nice works under the unit's SystemCallFilter (systemd-run --user)"
else
  echo "ok: order checked (no user systemd here to run a process under the filter)"
fi

echo "--- systemd-tmpfiles"
systemd-tmpfiles --create --root="$tmp" "$REPO/deploy/systemd/tenantwatch.tmpfiles.conf"
mode="$(stat -c '%a %U' "$tmp/etc/tenantwatch/credentials")"
[ "$mode" = "700 root" ] || die "/etc/tenantwatch/credentials is $mode, want 700 root"
echo "ok: /etc/tenantwatch/credentials is 0700 root"

echo "--- unit settings the docs and the daemon rely on"
for want in 'ExecStart=/usr/bin/tenantwatch run --config /etc/tenantwatch/tenantwatch.toml' \
            'Type=notify' 'NotifyAccess=main' 'ExecReload=kill -HUP $MAINPID' 'WatchdogSec=2min' \
            'SystemCallFilter=setpriority' \
            'DynamicUser=yes' 'StateDirectory=tenantwatch' 'Restart=on-failure' \
            'LoadCredential=partner-client-secret:/etc/tenantwatch/credentials/partner-client-secret'; do
  grep -qxF "$want" "$unit" || die "the unit lacks: $want"
done
echo "ok"
