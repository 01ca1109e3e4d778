#!/bin/bash
# Boot the kiosk image under arm64 emulation (qemu-system-aarch64 -M virt, TCG) with the
# simulator backend and a central server simulator on the GUEST's loopback, and capture the
# serial console (tests/test_image_boot_slow.py asserts on it).
#
#   image-build/boot-test.sh WORKDIR
#
# 1. base: a real Debian 12 arm64 image with the Pi OS layout (make-debian-base.sh; cached as
#    image-build/cache/debian-bookworm-arm64.img);
# 2. the kiosk image from it with image-build/build.sh (arm64 wheelhouse venv) plus the test
#    overlay image-build/boot-test/overlay (loopback server unit, report unit, kiosk-setup
#    marked done; the shipped kiosk units are not changed) and a server database with one
#    pre-issued token;
# 3. kiosk-provision.toml on the boot partition: server http://127.0.0.1:8443, that token,
#    [settings.hardware] backend = "sim";
# 4. qemu with NO network device (-nic none), kernel and initrd taken from the boot partition,
#    root=LABEL=rootfs console=ttyAMA0; the report unit powers the VM off.
# Writes WORKDIR/kiosk.img, WORKDIR/console.log, WORKDIR/timings.txt. Exit status: qemu's
# (124 if KIOSK_BOOT_TIMEOUT_S, default 1800, ran out).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${KIOSK_DEB_CACHE:-$HERE/cache}
TIMEOUT_S=${KIOSK_BOOT_TIMEOUT_S:-1800}
SMP=${KIOSK_BOOT_SMP:-2}
MEM=${KIOSK_BOOT_MEM:-2048}
HOST_PY=${KIOSK_IMG_BUILD_PYTHON:-$REPO/.venv/bin/python}
[ $# -eq 1 ] || { echo "usage: $0 WORKDIR" >&2; exit 64; }
WORK=$(mkdir -p "$1" && cd "$1" && pwd)
for tool in qemu-system-aarch64 debootstrap mcopy sfdisk timeout; do
    command -v "$tool" >/dev/null || {
        echo "boot-test.sh: $tool missing: apt-get install qemu-system-arm qemu-user-static binfmt-support debootstrap mtools" >&2
        exit 69; }
done
START=$(date +%s)
step() { echo "== [$(( $(date +%s) - START ))s] $*"; }
: >"$WORK/timings.txt"
timing() { echo "$1=$2" >>"$WORK/timings.txt"; }

BASE=$CACHE/debian-bookworm-arm64.img
if [ ! -f "$BASE" ]; then
    step "base image (make-debian-base.sh)"
    t0=$(date +%s)
    "$HERE/make-debian-base.sh" "$BASE.part"
    mv "$BASE.part" "$BASE"
    timing base_build_s $(( $(date +%s) - t0 ))
fi
[ -d "${KIOSK_IMG_WHEELHOUSE:-$CACHE/wheels-aarch64}" ] || { step "arm64 wheelhouse"; "$HERE/fetch-wheels.sh"; }

step "test overlay + server database with one pre-issued enrolment token"
rm -rf "$WORK/overlay"
cp -a "$HERE/boot-test/overlay" "$WORK/overlay"
mkdir -p "$WORK/overlay/var/lib/kiosk-test-server"
TOKEN=$("$HOST_PY" - "$WORK/overlay/var/lib/kiosk-test-server/server.db" <<'EOF'
import sys, time
from kiosk_sim.server_store import ServerStore
store = ServerStore(sys.argv[1])
print(store.issue_token(ttl_s=7 * 86400.0, now=time.time()))
store.close()
EOF
)
rm -f "$WORK/overlay/var/lib/kiosk-test-server/server.db-"*

step "kiosk image (build.sh)"
t0=$(date +%s)
KIOSK_IMG_EXTRA_OVERLAY="$WORK/overlay" KIOSK_IMG_DEPS=wheelhouse KIOSK_IMG_SIMULATORS=1 "$HERE/build.sh" "$BASE" "$WORK/kiosk.img"
timing kiosk_build_s $(( $(date +%s) - t0 ))

step "kiosk-provision.toml on the boot partition; kernel and initrd out of it"
BOOT_OFFSET=$(( $(sfdisk --dump "$WORK/kiosk.img" | sed -n 's/.*: start= *\([0-9]*\),.*type=c.*/\1/p' | head -1) * 512 ))
cat >"$WORK/kiosk-provision.toml" <<EOF
# boot test: the server simulator runs inside the guest on its loopback (kiosk-test-server.service)
[server]
url = "http://127.0.0.1:8443"
enrolment_token = "$TOKEN"

[device]
site = "Boot test"
door = "qemu"
timezone = "UTC"

[settings.hardware]
backend = "sim"
EOF
mcopy -o -i "$WORK/kiosk.img@@$BOOT_OFFSET" "$WORK/kiosk-provision.toml" ::/kiosk-provision.toml
rm -f "$WORK/vmlinuz" "$WORK/initrd.img"
mcopy -i "$WORK/kiosk.img@@$BOOT_OFFSET" ::/vmlinuz "$WORK/vmlinuz"
mcopy -i "$WORK/kiosk.img@@$BOOT_OFFSET" ::/initrd.img "$WORK/initrd.img"

step "boot: qemu-system-aarch64 -M virt, TCG, no network, up to ${TIMEOUT_S}s (console: $WORK/console.log)"
: >"$WORK/console.log"
t0=$(date +%s)
set +e
timeout --foreground "$TIMEOUT_S" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "$SMP" -m "$MEM" \
    -accel tcg,thread=multi -nic none -no-reboot \
    -display none -monitor none -serial "file:$WORK/console.log" \
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
    -append "root=LABEL=rootfs rootfstype=ext4 rootwait console=ttyAMA0 systemd.show_status=1" \
    -drive "file=$WORK/kiosk.img,format=raw,if=virtio"
status=$?
set -e
timing boot_s $(( $(date +%s) - t0 ))
timing qemu_status $status
step "qemu exited with $status"
grep -a '@@KIOSK-BOOT-TEST@@' "$WORK/console.log" | grep -av 'journal-' || true
exit $status
