#!/bin/bash -e
# pi-gen chroot side (runs as root inside the arm64 rootfs, under qemu-user on x86 hosts).
systemd-sysusers /usr/lib/sysusers.d/kiosk.conf
python3 -m venv --system-site-packages /opt/kiosk/venv
# Offline when the wheelhouse was copied in; otherwise pip reaches PyPI for the dependencies.
if ls /tmp/kiosk-wheels/*.whl | grep -qv '/kiosk-'; then
    /opt/kiosk/venv/bin/pip install --no-index --find-links /tmp/kiosk-wheels kiosk
else
    /opt/kiosk/venv/bin/pip install --find-links /tmp/kiosk-wheels kiosk
fi
rm -rf /tmp/kiosk-wheels
/opt/kiosk/venv/bin/python -m compileall -q /opt/kiosk/venv/lib
systemctl enable kiosk-setup.service kiosk-firstboot.service kiosk.service
# The apt packages are already here; the first-boot setup only has its check left to do.
/opt/kiosk/libexec/kiosk-setup
