#!/bin/sh
# Debian 12 / Raspberry Pi OS packages that `make demo` and `make test` need.
# As root it installs what is missing; otherwise it prints the apt-get line to run.
# libportaudio2: ALSA capture for the microphone driver (PyPI sounddevice loads it).
# asterisk-core-sounds-en-g722: simulator and test data only (Allison Smith reading digits, for the
# microphone simulator's digit readings; CC-BY-SA-3.0); the firmware never reads it.
set -eu
# xvfb and the libxcb/xkbcommon libraries: PyQt5's xcb platform, for the touchscreen test under Xvfb
# and `make demo` on a desktop
PACKAGES="python3-venv python3-dev gcc systemd dosfstools mtools e2fsprogs fdisk fonts-dejavu-core
 xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-randr0 libxcb-render-util0
 libxcb-shape0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0
 libportaudio2 asterisk-core-sounds-en-g722"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends $missing >/dev/null
