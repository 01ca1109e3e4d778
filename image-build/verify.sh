#!/bin/sh
# Check a built kiosk image without mounting it: partition table, boot files, config.txt lines,
# units present and enabled, provisioning example, build stamp, and no key, token or per-device
# file baked in. Exit 0 when good, 1 listing every problem.
#   image-build/verify.sh IMAGE
set -eu
[ $# -eq 1 ] || { echo "usage: $0 IMAGE" >&2; exit 64; }
exec python3 "$(dirname "$0")/tools/imagetool.py" verify "$1"
