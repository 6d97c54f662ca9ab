#!/usr/bin/env bash
# What the lxd driver's tests need on a fresh Debian 12 machine, as root: LXD from Debian
# (5.0.2) and the tools the tests start their daemons with. The tests start every daemon
# themselves (tests/lxd/daemons.py: own LXD_DIR and namespaces, a local preseed, a busybox
# image built here), so the system's lxd service is neither started nor needed; nothing is
# fetched from an image server.
#
#   sudo bash tests/lxd/setup.sh           install, then start one daemon and a container
#   sudo bash tests/lxd/setup.sh --no-check   install only
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive

apt-get install -y -qq --no-install-recommends \
    lxd lxd-client busybox-static dnsmasq-base iproute2 util-linux openssl >/dev/null
# the package's socket unit would start the system daemon on first use of /var/lib/lxd
systemctl disable --now lxd.socket lxd.service lxd-containers.service >/dev/null 2>&1 || true

if [ "${1:-}" != "--no-check" ]; then
    PY=.venv/bin/python
    [ -x "$PY" ] || PY=python3
    "$PY" -m tests.lxd.daemons
fi
