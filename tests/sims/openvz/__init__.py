"""A simulator of OpenVZ's `vzctl` and `vzlist` for driver tests (no OpenVZ kernel needed).

The behaviour follows /work/shared/reference/native-formats.md §1: argument forms, messages,
exit codes, each version's config parser and `--save` rewriting, vzlist's table and JSON
output. Tests put `bin/` first on PATH (see `host.VzHost.env()`).

Environment:

* `VZSIM_ROOT` (required, else exit 3): every path the real tools have compiled in lives
  below it (etc/vz/vz.conf, etc/vz/conf, etc/vz/names, proc/vz, the call log).
* `VZSIM_VERSION`: `4` (default, vzctl 4.x), `3` (vzctl 3.0.x: no `vzlist -j`, no
  ploop/VE_LAYOUT/`--layout`, DISKSPACE "unlimited" still accepted, no suffix on DISKINODES,
  config files in etc/sysconfig/vz-scripts behind the etc/vz/conf symlink) or `7` (OpenVZ 7).
* `VZSIM_NCPUS` (default 4): the host's CPU count (legacy `--cpulimit N%`, vzlist `cpus`).

Modules: `paths` (where things are), `units` (numbers and suffixes), `syntax` (one config
line), `keys` (key tables and orders), `values` (typed values), `config` (files: read and
`--save`), `state` (kernel state and locks), `calllog` (call log and faults), `options`
(getopt_long), `ct` (one CT), `names` (CT names), `lifecycle`, `create`, `setopts` (set's
options), `store` (what `--save` writes), `setcmd` (set), `vzctl`; `listfields` and `vzlist`;
`host` (the test fixture).

Where the reference is silent the simulator keeps things simple; the choices are written in
the module docstrings. Not simulated: ploop (create refuses `--layout ploop` with exit 99),
vswap-derived UBCs (LOCKEDPAGES etc. are not filled in from PHYSPAGES), quota usage (0),
load averages (0.00), suspend/resume, snapshots, enter/console/runscript, O7's unset/register,
and the `set` options --iptables, --devices, --devnodes, --pci_add/--pci_del, --meminfo,
--offline-resize and O7's --ext_ipadd/--memguarantee/--rate/--bindmount_*/--ha_*/--dhcp*;
--userpasswd is accepted and does nothing.
"""
