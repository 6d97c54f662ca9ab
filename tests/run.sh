#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine, as root: install what the tests need,
# start libvirtd, run the static checks and pytest, stop what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

echo "== system packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    lxc busybox-static libvirt-daemon libvirt-daemon-driver-lxc libvirt-daemon-driver-qemu \
    libvirt-clients libvirt-dev pkg-config gcc python3-venv python3-dev iproute2 git \
    iptables dnsmasq-base util-linux \
    prometheus zsh groff-base man-db graphviz systemd \
    >/dev/null
# LXD from Debian for the lxd driver's tests (they start their own daemons; the system's
# service is left off)
bash tests/lxd/setup.sh --no-check
# Node runs Mermaid's own parser on the plans' graphs (tests/mermaid); this machine image ships
# Node 20, Debian's packages are the fallback
command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
# the tests need promtool (deploy/ alert rules), never the Prometheus server the package starts
systemctl disable --now prometheus >/dev/null 2>&1 || /etc/init.d/prometheus stop >/dev/null 2>&1 || true

echo "== libvirtd"
# libvirtd dies at start without this user (normally made by libvirt-daemon-system)
getent passwd libvirt-qemu >/dev/null || useradd -r -U -M -s /usr/sbin/nologin libvirt-qemu
# a daemonized libvirtd logs to this file and exits when it cannot open it; the directory
# comes with libvirt-daemon-system, which we do not install
mkdir -p /var/log/libvirt
# Hybrid cgroups where cgroup2 holds a controller: libvirt's LXC driver then fails to start
# guests; binding that controller to a v1 hierarchy makes libvirt use v1 only.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        mkdir -p "/sys/fs/cgroup/$c"
        mountpoint -q "/sys/fs/cgroup/$c" || mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || true
    done
fi
LVPID=""
if ! virsh -c lxc:/// version >/dev/null 2>&1; then
    libvirtd -d
    for _ in $(seq 100); do virsh -c lxc:/// version >/dev/null 2>&1 && break; sleep 0.1; done
    LVPID=$(cat /run/libvirtd.pid 2>/dev/null || true)
fi
virsh -c lxc:/// version >/dev/null   # fail early if it still does not answer
cleanup() { [ -n "$LVPID" ] && kill "$LVPID" 2>/dev/null || true; }
trap cleanup EXIT

echo "== python environment"
PY=python3
"$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test,libvirt]'

echo "== node modules for the Mermaid check"
(cd tests/mermaid && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "== static checks"
.venv/bin/ruff check reconciler tests bench
.venv/bin/mypy reconciler
.venv/bin/lint-imports

echo "== tests"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest -q "$@"
