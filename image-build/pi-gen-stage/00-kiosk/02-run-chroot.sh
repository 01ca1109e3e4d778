#!/bin/bash -e
# pi-gen chroot side (runs as root inside the arm64 rootfs, under qemu-user on x86 hosts).
systemd-sysusers /usr/lib/sysusers.d/kiosk.conf
python3 -m venv --system-site-packages /opt/kiosk/venv
# The simulators only when the build asked for them (their wheel is then in the folder).
PACKAGES=kiosk
if ls /tmp/kiosk-wheels/kiosk_sim-*.whl >/dev/null 2>&1; then
    PACKAGES="kiosk kiosk-sim"
fi
# Offline when the wheelhouse was copied in; otherwise pip reaches PyPI for the dependencies.
if ls /tmp/kiosk-wheels/*.whl | grep -qv -e '/kiosk-' -e '/kiosk_sim-'; then
    /opt/kiosk/venv/bin/pip install --no-index --find-links /tmp/kiosk-wheels ${PACKAGES}
else
    /opt/kiosk/venv/bin/pip install --find-links /tmp/kiosk-wheels ${PACKAGES}
fi
rm -rf /tmp/kiosk-wheels
/opt/kiosk/venv/bin/python -m compileall -q /opt/kiosk/venv/lib
systemctl enable kiosk-setup.service kiosk-firstboot.service kiosk.service kiosk-provision-request.path
# The apt packages are already here; the first-boot setup only has its check left to do.
/opt/kiosk/libexec/kiosk-setup
