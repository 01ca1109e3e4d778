#!/bin/bash -e
# pi-gen host side: put the kiosk's files into ${ROOTFS_DIR} (same mapping as image-build/build.sh).
: "${KIOSK_REPO:?set KIOSK_REPO in pi-gen's config to the kiosk checkout}"
export KIOSK_IMG_REPO="${KIOSK_REPO}"
# shellcheck source=../../kiosk-image.conf
. "${KIOSK_REPO}/image-build/kiosk-image.conf"
export "${!KIOSK_IMG_@}"
TOOL="${KIOSK_REPO}/image-build/tools/imagetool.py"

STAGE=$(mktemp -d)
trap 'rm -rf "${STAGE}"' EXIT
python3 "${TOOL}" stage-files "${STAGE}"
mkdir -p "${STAGE}/etc/kiosk"
KIOSK_IMG_BASE_OS="Raspberry Pi OS (pi-gen ${RELEASE:-bookworm} ${ARCH:-arm64})" \
    python3 "${TOOL}" build-info pi-gen > "${STAGE}/etc/kiosk/build-info"
cp -a "${STAGE}/." "${ROOTFS_DIR}/"
chmod 0750 "${ROOTFS_DIR}/etc/kiosk"

# The kiosk wheel (and kiosk-sim's when KIOSK_IMG_SIMULATORS=1), built from a clean copy of the
# checkout so a stale build/ folder cannot put old modules in it, for the chroot step to install.
python3 "${TOOL}" wheels "${ROOTFS_DIR}/tmp/kiosk-wheels"
if [ -d "${KIOSK_IMG_WHEELHOUSE}" ]; then
    cp "${KIOSK_IMG_WHEELHOUSE}"/*.whl "${ROOTFS_DIR}/tmp/kiosk-wheels/"
fi

python3 "${TOOL}" boot-dir "${ROOTFS_DIR}/boot/firmware"
