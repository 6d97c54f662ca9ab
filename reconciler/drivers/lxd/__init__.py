"""The `lxd` driver: system containers and managed networks on an LXD server or cluster,
through LXD's REST API (its unix socket, or HTTPS with a client certificate). Incus speaks
the same API.

Options (agent config `drivers: {lxd: {...}}`):
    remote             unix:///var/lib/lxd/unix.socket (default: $LXD_DIR's socket, else
                       Debian's, else the snap's) or https://HOST:8443
    client_cert, client_key, server_cert
                       for an https remote: our certificate (trusted by the cluster:
                       `lxc config trust add`) and the server's, pinned
    project            the LXD project (default: default)
    profiles           the LXD profiles new instances get (default: [default])
    storage_pool       the pool of a new instance's root disk when no profile gives one
    image_remotes      image servers a spec may name (`name: REMOTE:ALIAS`):
                       {images: {server: https://..., protocol: simplestreams}}
    raw_lxc            let the driver write raw.lxc for init and capabilities (default no)
    match              a glob: only objects whose names match are observed and changed
    stop_timeout, operation_timeout   seconds

What we keep on the host: our stamp in `user.reconciler.*` config keys of each instance and
network (see `stamp`), which LXD stores cluster-wide.

Modules, one concern each:
    client     REST over the unix socket or HTTPS; background operations waited for; LXD's
               errors mapped to TransientError/PermanentError
    values     (pure) LXD's value syntax: booleans, byte sizes, CPU sets and allowances,
               id maps, raw.lxc lines
    stamp      our stamp in user.* keys, and the undefined mark
    parse      (pure) an instance as listed -> canonical spec, stamp, keys left out
    compose    (pure) a spec -> the instance's own config and devices, continuing its own
    placement  (pure) cluster members and groups, targets, moves made by the cluster
    images     (pure) which image a template root names; local unless a listed remote
    networks   our Network kind as LXD managed bridges, and their per-member parts
    events     LXD's lifecycle event stream (a WebSocket) -> refs the agent re-checks
    driver     LxdDriver: observe / check / update_class / execute / events / import_specs
"""

from reconciler.drivers.lxd.driver import LxdDriver

__all__ = ["LxdDriver"]
