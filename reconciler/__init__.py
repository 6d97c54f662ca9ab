"""reconciler: keep a host's containers, VMs and networks equal to a directory of specs."""

__version__ = "0.1.0"
