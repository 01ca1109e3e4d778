#!/bin/sh
# Write the small synthetic base image CI builds from (the official Raspberry Pi OS image cannot
# be downloaded there): MBR, FAT32 "bootfs" at sector 8192 with Bookworm's config.txt and
# cmdline.txt, ext4 "rootfs" with Bookworm's os-release, users and systemd units. It does not boot.
#   image-build/make-synthetic-base.sh OUT_IMAGE
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT_IMAGE" >&2; exit 64; }
exec python3 "$(dirname "$0")/tools/imagetool.py" synthetic-base "$1"
