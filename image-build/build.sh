#!/bin/bash
# Turn a Raspberry Pi OS Lite (Bookworm, arm64) image into a flashable kiosk image.
#
#   image-build/build.sh BASE_IMAGE OUT_IMAGE
#
# Nothing is mounted and nothing runs on the target architecture: the partition table is read
# with sfdisk, the boot partition is edited in place with mtools, the root file system is
# copied out, changed with debugfs (systemd-sysusers --root for the user) and written back.
# Settings: kiosk-image.conf (KIOSK_IMG_*, each overridable from the environment).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
export KIOSK_IMG_REPO=${KIOSK_IMG_REPO:-$(cd "$HERE/.." && pwd)}
# shellcheck source=kiosk-image.conf
. "$HERE/kiosk-image.conf"
export "${!KIOSK_IMG_@}"

if [ $# -ne 2 ]; then
    echo "usage: $0 BASE_IMAGE OUT_IMAGE   (settings: $HERE/kiosk-image.conf)" >&2
    exit 64
fi
BASE=$1
OUT=$2
[ -f "$BASE" ] || { echo "build.sh: base image $BASE not found" >&2; exit 66; }
for tool in sfdisk mtype mcopy mdir mlabel debugfs e2fsck resize2fs dumpe2fs systemd-sysusers dd python3; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool missing (scripts/install-system-deps.sh)" >&2; exit 69; }
done
export KIOSK_IMG_BASE_NAME=${KIOSK_IMG_BASE_NAME:-$(basename "$BASE")}

TOOL=(python3 "$HERE/tools/imagetool.py")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiosk-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
step() { echo "== [$(( $(date +%s) - START ))s] $*"; }

step "copy $BASE"
cp --sparse=always "$BASE" "$WORK/out.img"
eval "$("${TOOL[@]}" layout "$WORK/out.img")"

if [ "$KIOSK_IMG_GROW_MB" -gt 0 ]; then
    step "grow the root partition by $KIOSK_IMG_GROW_MB MiB"
    "${TOOL[@]}" grow "$WORK/out.img" "$KIOSK_IMG_GROW_MB"
    eval "$("${TOOL[@]}" layout "$WORK/out.img")"
fi

step "boot partition: config.txt, cmdline.txt, kiosk-provision.toml.example"
"${TOOL[@]}" boot "$WORK/out.img"

step "root file system: copy out"
dd if="$WORK/out.img" of="$WORK/root.img" bs=4M iflag=skip_bytes,count_bytes \
   skip="$ROOT_OFFSET" count="$ROOT_BYTES" conv=sparse status=none
e2fsck -fp "$WORK/root.img" >/dev/null
resize2fs -p "$WORK/root.img" >/dev/null 2>&1

step "kiosk user and groups (systemd-sysusers --root)"
mkdir -p "$WORK/stage"
KIOSK_GID=$("${TOOL[@]}" users "$WORK/root.img" "$WORK/stage" | sed -n 's/^KIOSK_GID=//p')

step "stage: units, drop-ins, udev rules, fonts, venv ($KIOSK_IMG_DEPS), build-info"
"${TOOL[@]}" stage "$WORK/root.img" "$WORK/stage" "$WORK/wheels"

step "root file system: write the stage (debugfs)"
"${TOOL[@]}" apply "$WORK/root.img" "$WORK/stage" "$KIOSK_GID"
e2fsck -fn "$WORK/root.img" >/dev/null 2>&1 || { e2fsck -fn "$WORK/root.img"; exit 1; }

step "root file system: copy back"
dd if="$WORK/root.img" of="$WORK/out.img" bs=4M oflag=seek_bytes seek="$ROOT_OFFSET" conv=notrunc status=none

mv "$WORK/out.img" "$OUT"
step "verify $OUT"
"${TOOL[@]}" verify "$OUT"
step "done: $OUT"
