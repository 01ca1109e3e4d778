#!/bin/sh
# Fill the wheelhouse the image build installs the kiosk's dependencies from, offline:
# aarch64 / CPython 3.11 wheels (64-bit Raspberry Pi OS Bookworm) of the pinned versions in
# image-build/requirements-aarch64.txt. Needs PyPI once; the build itself never downloads.
#   image-build/fetch-wheels.sh [DIR]     (default: image-build/cache/wheels-aarch64)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-$HERE/cache/wheels-aarch64}
KIOSK_IMG_REPO=$(cd "$HERE/.." && pwd)
. "$HERE/kiosk-image.conf"
PLATFORMS=""
for tag in $KIOSK_IMG_PIP_PLATFORMS; do PLATFORMS="$PLATFORMS --platform $tag"; done
mkdir -p "$DEST"
# shellcheck disable=SC2086
exec "$KIOSK_IMG_BUILD_PYTHON" -m pip download --disable-pip-version-check --only-binary=:all: $PLATFORMS \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    -r "$HERE/requirements-aarch64.txt" -d "$DEST"
