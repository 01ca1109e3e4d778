#!/bin/bash
# Write a REAL, bootable arm64 Debian 12 (bookworm) base image with the Raspberry Pi OS partition
# layout, for the slow boot test (tests/test_image_boot_slow.py):
#   MBR, FAT32 "bootfs" at sector 8192 (config.txt, cmdline.txt, the Debian kernel and initramfs),
#   ext4 "rootfs" after it (debootstrap of bookworm arm64: systemd, python3.11, linux-image-arm64).
# It boots under `qemu-system-aarch64 -M virt` (not on a Pi: no Pi firmware or Pi kernel).
#
#   image-build/make-debian-base.sh OUT_IMAGE
#
# Needs root, debootstrap, qemu-user-static with binfmt_misc (the arm64 maintainer scripts run
# under qemu-aarch64), mke2fs, mtools, sfdisk; Debian's apt mirror once. The debootstrapped
# tree is cached as image-build/cache/debian-bookworm-arm64.tar (gitignored), so later runs only
# re-pack the image (seconds). Settings from the environment:
#   KIOSK_DEB_MIRROR (http://deb.debian.org/debian), KIOSK_DEB_CACHE (image-build/cache),
#   KIOSK_DEB_ROOT_MIB (1536), KIOSK_DEB_BOOT_MIB (128)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MIRROR=${KIOSK_DEB_MIRROR:-http://deb.debian.org/debian}
CACHE=${KIOSK_DEB_CACHE:-$HERE/cache}
ROOT_MIB=${KIOSK_DEB_ROOT_MIB:-1536}
BOOT_MIB=${KIOSK_DEB_BOOT_MIB:-128}
BOOT_START=8192
DISK_ID=0x5e3da3da
PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,linux-image-arm64,initramfs-tools,python3,python3-venv,ca-certificates,iproute2,procps

[ $# -eq 1 ] || { echo "usage: $0 OUT_IMAGE" >&2; exit 64; }
OUT=$1
[ "$(id -u)" -eq 0 ] || { echo "make-debian-base.sh: needs root (debootstrap)" >&2; exit 77; }
for tool in debootstrap mke2fs mkfs.vfat mcopy mmd sfdisk tar; do
    command -v "$tool" >/dev/null || { echo "make-debian-base.sh: $tool missing" >&2; exit 69; }
done
mkdir -p "$CACHE"
TAR=$CACHE/debian-bookworm-arm64.tar
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiosk-debian.XXXXXX")
cleanup() {
    # debootstrap mounts /proc and /sys in the target; unmount before deleting, never cross mounts.
    awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
START=$(date +%s)
step() { echo "== [$(( $(date +%s) - START ))s] $*"; }

if [ ! -f "$TAR" ]; then
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || {
        echo "make-debian-base.sh: no binfmt_misc entry for aarch64 (apt-get install qemu-user-static binfmt-support)" >&2
        exit 69; }
    step "debootstrap bookworm arm64 from $MIRROR (once; cached in $TAR)"
    ROOT=$WORK/rootfs
    debootstrap --foreign --arch=arm64 --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR"
    # A small initramfs with just what qemu -M virt needs to mount the root (MODULES=most would
    # copy thousands of modules one emulated `cp` at a time: minutes). Set before the kernel's
    # postinst builds it in the second stage.
    mkdir -p "$ROOT/etc/initramfs-tools/conf.d" "$ROOT/etc/initramfs-tools/hooks"
    echo MODULES=list >"$ROOT/etc/initramfs-tools/conf.d/kiosk-qemu.conf"
    cat >"$ROOT/etc/initramfs-tools/hooks/kiosk-qemu" <<'EOF2'
#!/bin/sh
# qemu -M virt: the virtio disk (PCI or MMIO transport) and the ext4 root.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_mmio virtio_blk ext4
EOF2
    chmod 755 "$ROOT/etc/initramfs-tools/hooks/kiosk-qemu"
    step "debootstrap second stage (arm64 maintainer scripts under qemu-user)"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
    step "configure the root"
    echo kiosk-qemu >"$ROOT/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tkiosk-qemu\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    cat >"$ROOT/etc/fstab" <<'EOF'
# <file system>  <mount point>   <type>  <options>          <dump> <pass>
LABEL=rootfs     /               ext4    defaults,noatime   0      1
LABEL=bootfs     /boot/firmware  vfat    defaults           0      2
EOF
    mkdir -p "$ROOT/boot/firmware"
    rm -rf "$ROOT/var/cache/apt/archives/"*.deb "$ROOT/var/lib/apt/lists/"*_Packages
    step "cache the tree"
    tar --numeric-owner --xattrs -C "$ROOT" -cf "$TAR.part" .
    mv "$TAR.part" "$TAR"
    rm -rf "$ROOT"
fi

step "unpack $TAR"
ROOT=$WORK/rootfs
mkdir "$ROOT"
tar --numeric-owner --xattrs -C "$ROOT" -xf "$TAR"
KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -1)")

step "boot partition (FAT32 bootfs): config.txt, cmdline.txt, vmlinuz/initrd $KVER"
mkdir "$WORK/boot"
cp "$ROOT/boot/vmlinuz-$KVER" "$WORK/boot/vmlinuz"
cp "$ROOT/boot/initrd.img-$KVER" "$WORK/boot/initrd.img"
cat >"$WORK/boot/config.txt" <<'EOF'
# Debian bookworm arm64 base for qemu -M virt (kiosk boot test), Raspberry Pi OS layout.
# Automatically load initramfs files, if found
auto_initramfs=1
# Run in 64-bit mode
arm_64bit=1

[all]
EOF
echo "console=serial0,115200 console=tty1 root=LABEL=rootfs rootfstype=ext4 fsck.repair=yes rootwait" >"$WORK/boot/cmdline.txt"
echo "Debian bookworm arm64 base for qemu -M virt (kiosk boot test); kernel $KVER" >"$WORK/boot/issue.txt"
truncate -s "${BOOT_MIB}M" "$WORK/boot.img"
mkfs.vfat -F 32 -n bootfs "$WORK/boot.img" >/dev/null
mcopy -s -i "$WORK/boot.img" "$WORK/boot/"* ::/

step "root file system (ext4 rootfs, mke2fs -d)"
truncate -s "${ROOT_MIB}M" "$WORK/root.img"
mke2fs -q -t ext4 -L rootfs -d "$ROOT" "$WORK/root.img"

step "disk image $OUT"
BOOT_SECTORS=$(( BOOT_MIB * 2048 ))
ROOT_START=$(( BOOT_START + BOOT_SECTORS ))
ROOT_SECTORS=$(( ROOT_MIB * 2048 ))
rm -f "$OUT"
truncate -s $(( (ROOT_START + ROOT_SECTORS) * 512 )) "$OUT"
printf 'label: dos\nlabel-id: %s\nunit: sectors\n\nstart=%s, size=%s, type=c\nstart=%s, size=%s, type=83\n' \
    "$DISK_ID" "$BOOT_START" "$BOOT_SECTORS" "$ROOT_START" "$ROOT_SECTORS" | sfdisk --quiet "$OUT"
dd if="$WORK/boot.img" of="$OUT" bs=4M oflag=seek_bytes seek=$(( BOOT_START * 512 )) conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$OUT" bs=4M oflag=seek_bytes seek=$(( ROOT_START * 512 )) conv=notrunc,sparse status=none
step "done: $OUT (kernel $KVER)"
