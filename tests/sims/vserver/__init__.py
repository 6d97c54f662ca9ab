"""vssim: a simulator of util-vserver's commands for tests: `vserver`, `vserver-stat`,
`vserver-info`, and the low-level `vuname`, `vsched`, `vlimit`, `naddress` (with the part of
`ip` util-vserver uses).

The VServer kernel cannot run on our machines, so driver tests run these instead: either with
`tests/sims/vserver/bin` first on PATH and `VSSIM_ROOT` naming a scratch directory that stands
for the host's `/`, or through the per-host wrappers `VsHost.tool(NAME)` that set it.
Behaviour follows /work/shared/reference/native-formats.md §2 (util-vserver, checked against its
source); each module's docstring says which part it covers and what it decides where the
reference is silent.

* paths.py      compiled-in paths, all below $VSSIM_ROOT
* tree.py       util-vserver's file-type rules (scalar/list/array/boolean/whole)
* numbers.py    strtol base 0, sched and limit values, mask2prefix
* startplan.py  reading a guest tree as the start script does (generateOptions)
* fstab.py, sched.py, limits.py  mounts, scheduler, rlimits/ulimits
* scriptlets.py the start's scriptlets (in-shell ones sourced by bash)
* guest.py      NAME resolution and liveness; cfgstyle.py the C library's view of ids
* lifecycle.py  start/stop/status/running/exec/delete; build.py vserver-build
* state.py      the kernel state (JSON); toolrun.py call log and fault injection
* vserver.py, vserver_stat.py, vserver_info.py  the commands
* ctxtools.py (vuname, vsched, vlimit), nettools.py (naddress, ip)  a running context changed
  in place; live.py the same as plain functions; host.py the VsHost test fixture
"""
