#!/usr/bin/env bash
# Builds the tenantwatch container image from deploy/container/Containerfile.
#
#   deploy/container/build.sh [IMAGE]        # default IMAGE: localhost/tenantwatch:latest
#
# Builds the statically linked release binary first (unless TENANTWATCH_STATIC_BIN
# names one), stages a small build context in a temporary directory and runs
# `buildah bud` (or `podman build` / `docker build`, whichever is found first;
# CONTAINER_BUILDER picks one, BUILDAH_ISOLATION=chroot works where there is no
# user namespace support). CARGO_TARGET_DIR is honoured (default: target).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="${1:-localhost/tenantwatch:latest}"
triple=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac

bin="${TENANTWATCH_STATIC_BIN:-}"
if [ -z "$bin" ]; then
  echo "building the static release binary ($target_dir/$triple/release/tenantwatch)"
  (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
     cargo build --release --locked --target "$triple")
  bin="$target_dir/$triple/release/tenantwatch"
fi
# A dynamically linked binary would die in an empty image with a confusing ENOENT.
if command -v file >/dev/null 2>&1 && ! file -L "$bin" | grep -q 'static'; then
  echo "error: $bin is not statically linked" >&2; exit 1
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
install -d -m 0755 "$ctx/rootfs/etc/tenantwatch" "$ctx/rootfs/var/lib" "$ctx/state"
install -d -m 1777 "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/tenantwatch:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ctx/rootfs/etc/group"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
chmod 0700 "$ctx/state"
# Debug info stays out of the image (symbols stay, for readable backtraces).
if command -v objcopy >/dev/null 2>&1; then
  objcopy --strip-debug "$bin" "$ctx/tenantwatch"
else
  cp "$bin" "$ctx/tenantwatch"
fi
chmod 0755 "$ctx/tenantwatch"
cp "$here/Containerfile" "$ctx/Containerfile"

builder="${CONTAINER_BUILDER:-}"
if [ -z "$builder" ]; then
  for b in buildah podman docker; do
    if command -v "$b" >/dev/null 2>&1; then builder="$b"; break; fi
  done
fi
case "$builder" in
  # The docker image format: the OCI format has no HEALTHCHECK and would drop it.
  buildah) buildah bud --format docker ${BUILDAH_ISOLATION:+--isolation "$BUILDAH_ISOLATION"} --layers=false -f "$ctx/Containerfile" -t "$image" "$ctx" ;;
  podman) podman build --format docker -f "$ctx/Containerfile" -t "$image" "$ctx" ;;
  docker) docker build -f "$ctx/Containerfile" -t "$image" "$ctx" ;;
  *) echo "error: none of buildah, podman, docker found" >&2; exit 1 ;;
esac
echo "built $image"
