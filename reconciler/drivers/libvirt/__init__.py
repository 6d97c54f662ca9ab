"""The `libvirt` driver: domains and networks on any libvirt URI, through libvirt-python.

Options (agent config `drivers: {libvirt: {...}}`, or `--uri` on the command line):
    uri                lxc:///, qemu:///system, test:///default, openvz:///system,
                       qemu+ssh://host/system, ... (default: $LIBVIRT_DEFAULT_URI, else
                       qemu:///system); its scheme gives the domain types this driver runs
    match              a glob: only objects whose names match are observed and changed
                       (hosts shared with other tools, tests)
    stop_timeout       seconds a graceful shutdown may take before destroy (default 30)
    reconnect_timeout  seconds to keep reopening a lost connection per call (default 10)

What we keep on the host: the spec as libvirt XML (so `virsh dumpxml` shows it), and in
`<metadata>` under `urn:reconciler:state:1` (libvirt keeps one child per namespace; the spec
extension has `urn:reconciler:spec:1`) our stamp: owner, source file, last-applied spec.

Owned storage: a filesystem of `type: template` (with `source`, the host directory its root
is built in) is the domain's own: `provision` builds it, `purge` erases it. Nothing else is
ever erased; a spec without one purges as an undefine. See `storage`.

Modules, one concern each:
    connection  open, reconnect with backoff, libvirt errors -> TransientError/PermanentError
    parse       (pure) inactive XML -> canonical dict through the spec loader, plus our stamp
    normalize   (pure) live dict projected onto the last-applied spec; host defaults dropped
    compose     (pure) desired spec + existing definition -> the XML to define
    storage     what a spec owns (template filesystems): provision builds it, purge erases it
    events      lifecycle events through libvirt's event loop, reconnecting
    driver      LibvirtDriver: observe / update_class / execute / events / import_specs

libvirt-python itself is imported when a driver is made, never on import of this package.
"""

from reconciler.drivers.libvirt.driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
