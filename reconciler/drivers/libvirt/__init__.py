"""The `libvirt` driver: domains and networks on any libvirt URI, through libvirt-python.

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
