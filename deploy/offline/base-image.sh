#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim-bookworm from Debian's own packages, for hosts that
# reach Debian's archive and PyPI but no container registry:
#
#   deploy/offline/base-image.sh [IMAGE]        (default localhost/vidgate-python:3.11-bookworm)
#
# debootstrap lays a minimal bookworm with Debian's Python 3.11 and venv; the host's CA bundle is
# copied in, so builds inside trust what this host trusts (a TLS-inspecting proxy included).
# Needs root, debootstrap and podman.
set -euo pipefail
IMAGE="${1:-localhost/vidgate-python:3.11-bookworm}"
# The Debian mirror: $DEBIAN_MIRROR, else the one this host's apt uses.
host_mirror() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } | head -n 1
}
MIRROR="${DEBIAN_MIRROR:-$(host_mirror)}"
[ -n "$MIRROR" ] || { echo "[base-image] set DEBIAN_MIRROR to a Debian mirror URL" >&2; exit 1; }

if podman image exists "$IMAGE"; then
  echo "[base-image] $IMAGE exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "[base-image] needs debootstrap (apt-get install -y debootstrap)" >&2; exit 1; }
ROOTFS="$(mktemp -d /var/tmp/vidgate-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "[base-image] debootstrap bookworm into $ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS" "$MIRROR" >/dev/null
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
tar -C "$ROOTFS" -c . | podman import --quiet --change 'CMD ["python3"]' - "$IMAGE" >/dev/null
echo "[base-image] built $IMAGE"
