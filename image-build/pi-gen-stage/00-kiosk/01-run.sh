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

# The kiosk wheel, for the chroot step to install.
"${KIOSK_IMG_BUILD_PYTHON}" -m pip wheel --quiet --no-deps --no-build-isolation \
    -w "${ROOTFS_DIR}/tmp/kiosk-wheels" "${KIOSK_REPO}"
if [ -d "${KIOSK_IMG_WHEELHOUSE}" ]; then
    cp "${KIOSK_IMG_WHEELHOUSE}"/*.whl "${ROOTFS_DIR}/tmp/kiosk-wheels/"
fi

python3 "${TOOL}" boot-dir "${ROOTFS_DIR}/boot/firmware"
