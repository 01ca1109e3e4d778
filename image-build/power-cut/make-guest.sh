#!/bin/bash
# Build the small arm64 guest of the power-cut test (tests/test_power_cut_slow.py).
#
#   image-build/power-cut/make-guest.sh OUTDIR
#
# The same emulated machine as the image boot test (qemu-system-aarch64 -M virt, cortex-a72,
# TCG) and the same Debian 12 arm64 kernel and Python 3.11, but instead of the full kiosk image
# (systemd, a boot of minutes under TCG) an initramfs holding only what the event writer needs:
# busybox, python3.11, numpy and their libraries (Debian arm64 packages fetched with apt-get
# download through a private apt state, so the host's apt setup is untouched), the kiosk modules
# the guest's scripts import and their pure-Python dependencies (guest_tree.py), and ./init.
# The events go to a separate virtio disk that the test opens with cache=none and formats here
# as ext4 (data=ordered, barriers on: the defaults a Pi's root filesystem uses).
# Writes OUTDIR/vmlinuz and OUTDIR/initrd.cpio.gz; the Debian packages are cached in
# image-build/cache/power-cut/ (KIOSK_POWERCUT_CACHE).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KIOSK_POWERCUT_CACHE:-$REPO/image-build/cache/power-cut}
HOST_PY=${KIOSK_IMG_BUILD_PYTHON:-$REPO/.venv/bin/python}
KERNEL_ABI=${KIOSK_POWERCUT_KERNEL:-}
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 64; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
# numpy: kiosk.storage.people keeps face and voice templates as numpy vectors; BLAS and LAPACK
# are what Debian's numpy links against
PACKAGES="busybox-static python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6
 libsqlite3-0 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1 libcrypt1
 python3-numpy libblas3 liblapack3 libgfortran5 libgcc-s1"
MODULES="virtio_mmio virtio_blk crc16 crc32c_generic mbcache jbd2 ext4"

APT=$CACHE/apt
if [ ! -f "$APT/apt.conf" ]; then
    mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial" "$APT/etc/sources.list.d" \
        "$APT/etc/preferences.d" "$APT/etc/apt.conf.d"
    cp /etc/apt/sources.list.d/*.sources "$APT/etc/sources.list.d/" 2>/dev/null || true
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$APT/etc/sources.list.d/host.list"
    touch "$APT/state/status"
    cat >"$APT/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$APT/state";
Dir::State::status "$APT/state/status";
Dir::Cache "$APT/cache";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$APT/etc/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$APT/etc/preferences.d";
Dir::Etc::Parts "$APT/etc/apt.conf.d";
CONF
fi
export APT_CONFIG=$APT/apt.conf
DEBS=$CACHE/debs
# the marker holds the package list it was fetched for: a changed list fetches again
WANT="$(echo $PACKAGES)"
if [ "$(cat "$DEBS/.complete" 2>/dev/null)" != "$WANT" ]; then
    apt-get update -q >/dev/null
    [ -n "$KERNEL_ABI" ] || KERNEL_ABI=$(apt-cache depends linux-image-arm64 | sed -n 's/.*Depends: linux-image-\(.*-arm64\)$/\1/p' | head -1)
    rm -rf "$DEBS" && mkdir -p "$DEBS"
    (cd "$DEBS" && apt-get download -q "linux-image-$KERNEL_ABI" $PACKAGES >/dev/null 2>&1 ||
        { cd "$DEBS" && apt-get download -q "linux-image-$KERNEL_ABI" $PACKAGES; })
    echo "$WANT" >"$DEBS/.complete"
fi

ROOT=$OUT/rootfs
rm -rf "$ROOT" && mkdir -p "$ROOT"
for deb in "$DEBS"/*.deb; do
    case "$deb" in */linux-image-*) continue ;; esac
    dpkg-deb -x "$deb" "$ROOT"
done
KROOT=$OUT/kernel-pkg
rm -rf "$KROOT" && mkdir -p "$KROOT"
dpkg-deb -x "$DEBS"/linux-image-*.deb "$KROOT"
cp "$KROOT"/boot/vmlinuz-* "$OUT/vmlinuz"
mkdir -p "$ROOT/lib/modules"
for module in $MODULES; do
    cp "$(find "$KROOT/lib/modules" -name "$module.ko" | head -1)" "$ROOT/lib/modules/"
done
rm -rf "$KROOT"
# Debian bookworm merges /bin into /usr/bin: the loader is looked up at /lib/ld-linux-aarch64.so.1
for dir in bin sbin lib; do
    if [ -d "$ROOT/$dir" ] && [ ! -L "$ROOT/$dir" ]; then
        mkdir -p "$ROOT/usr/$dir" && cp -a "$ROOT/$dir/." "$ROOT/usr/$dir/" && rm -rf "$ROOT/$dir"
    fi
    ln -sfn "usr/$dir" "$ROOT/$dir"
done
rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/man" "$ROOT/usr/share/locale" "$ROOT/usr/lib/python3.11/test"
mkdir -p "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/data" "$ROOT/tmp" "$ROOT/kiosk-guest" "$ROOT/etc"
ln -sf python3.11 "$ROOT/usr/bin/python3"

# dpkg-deb -x runs no maintainer scripts: make the links update-alternatives would have made
ARCHLIB=$ROOT/usr/lib/aarch64-linux-gnu
ln -sfn blas/libblas.so.3 "$ARCHLIB/libblas.so.3"
ln -sfn lapack/liblapack.so.3 "$ARCHLIB/liblapack.so.3"
DEST=$ROOT/usr/lib/python3/dist-packages
"$HOST_PY" "$HERE/guest_tree.py" "$DEST" >/dev/null
# nothing compiled for the host may come along (numpy's extensions are Debian's, for arm64)
find "$DEST" -name '*.so' -not -path "$DEST/numpy/*" -print -delete
rm -rf "$DEST"/numpy/*/tests "$DEST"/numpy/tests "$DEST"/numpy/f2py  # never imported by the guest
cp "$REPO/tests/helpers/write_events.py" "$HERE/guest_check.py" "$ROOT/kiosk-guest/"
find "$ROOT" -name __pycache__ -prune -exec rm -rf {} +
install -m 0755 "$HERE/init" "$ROOT/init"

"$HOST_PY" "$HERE/newc.py" "$ROOT" "$OUT/initrd.cpio.gz"
rm -rf "$ROOT"
echo "guest: $OUT/vmlinuz $OUT/initrd.cpio.gz ($(du -h "$OUT/initrd.cpio.gz" | cut -f1))"
