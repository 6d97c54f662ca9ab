"""vzctl set: options, validation, live apply to a running CT, and `--save` (reference §1.6, §1.7).

Flow (legacy, as in vzctl 4.x `vps_set`/`set`):

1. parse the options (setopts.py); a bad value is "Bad parameter for --X: V", exit 21;
2. `--ifname` checks, then the option rules (`--reset_ub` alone, vswap needs SWAPPAGES, the
   options that need `--save`: `--name` 131, `--ostemplate`/`--stop-timeout`/`--force`/
   `--setmode restart` 20);
3. on a stopped CT with `--save` nothing is applied; on a running CT restart-class changes are
   refused per `--setmode` and the rest is pushed into the kernel state;
4. with `--save`: when applying failed the file is *not* saved ("Error: failed to apply some
   parameters, not saving configuration file!"), else the given keys are merged into CTID.conf
   (store.py computes them, config.py writes them).

O7 differs: its restart-class check stops everything else unless `--setmode ignore`, the file is
saved even when applying failed (the exit code stays the error), `--name` without `--save` is
137, and it prints its own warnings.
"""

from __future__ import annotations

from . import lifecycle, values
from .config import Conf, merged, read_conf, write_legacy, write_o7
from .console import err, fail, out
from .ct import Ct, state_repr
from .keys import (
    LEGACY_STORE_ORDER,
    LEGACY_UBC_STORE_ORDER,
    LIVE_KEYS,
    O7_STORE_ORDER,
    UBC_NAMES,
    key_spec,
)
from .names import set_name
from .setopts import SetRequest
from .store import final_values, legacy_updates, o7_updates
from .units import INT_MAX, LONG_MAX
from .values import Caps, Features

# What --applyconfig leaves alone (reference §1.6; legacy also keeps DESCRIPTION).
_APPLYCONFIG_KEEPS = ("HOSTNAME", "IP_ADDRESS", "OSTEMPLATE", "VE_ROOT", "VE_PRIVATE",
                      "DESCRIPTION")


# ---------------------------------------------------------------- checks

def _check_veth(ct: Ct, req: SetRequest) -> None:
    cfg = req.veth_cfg
    if cfg is None:
        return
    if not cfg.ifname:
        raise fail(20, "Invalid usage.  Option --ifname not specified")
    for i, dev in enumerate(req.veth_add):
        if dev.ifname == cfg.ifname:
            req.veth_add[i] = values.overlay_veth(dev, cfg)
            req.veth_cfg = None
            return
    old = ct.conf.get("NETIF") or []
    if not any(d.ifname == cfg.ifname for d in old):
        raise fail(20, f"Invalid usage: veth device {cfg.ifname} is not configured, use "
                       "--netif_add option first")


def _is_vswap(ub: tuple[int, int] | None) -> bool:
    return ub is not None and ub[1] not in (LONG_MAX, INT_MAX)


def _check_options(ct: Ct, req: SetRequest) -> None:
    """Legacy check_set_opt()."""
    v = req.values
    if req.reset_ub and req.n_words > 1:
        raise fail(20, "Error: option --reset_ub is exclusive")
    eff = ct.eff
    if ((_is_vswap(v.get("PHYSPAGES")) or _is_vswap(eff.get("PHYSPAGES")))
            and "SWAPPAGES" not in v and "SWAPPAGES" not in eff):
        raise fail(28, "Error: required UB parameter (swap) not set")
    if "NODEMASK" in v and "CPUMASK" not in v:
        raise fail(20, "Error: option --nodemask requires --cpumask")
    if v.get("CPUMASK") == "auto" and "NODEMASK" not in v:
        raise fail(20, "Error: --cpumask auto requires --nodemask")
    if not req.save:
        if "NAME" in v:
            raise fail(131, "Error: unable to use --name option without --save")
        if "OSTEMPLATE" in v:
            raise fail(20, "Error: unable to use --ostemplate option without --save")
        if "STOP_TIMEOUT" in v:
            raise fail(20, "Error: unable to use --stop-timeout option without --save")
        if req.force:
            raise fail(20, "Error: --force is useless without --save")
        if req.setmode == "restart":
            raise fail(20, "Error: --setmode restart doesn't make sense without --save flag")


def _check_options_o7(req: SetRequest) -> None:
    if not req.save:
        if req.setmode == "restart":
            raise fail(20, "It is not allowed to use restart mode without --save")
        if "NAME" in req.values:
            raise fail(137, "Unable to use the --name option without --save")


# ---------------------------------------------------------------- --applyconfig

def _apply_sample(ct: Ct, req: SetRequest) -> None:
    """Take the sample's values for keys not given on the command line."""
    name = req.applyconfig
    if name is None:
        return
    path = ct.sim.sample_path(name)
    if not path.is_file():
        if ct.sim.legacy:
            raise fail(109, f"Sample config file not found: {path}")
        raise fail(206, f"Unable to open {path}: No such file or directory")
    sample = read_conf(path, ct.ctx, verbose=ct.verbose)
    for key, value in sample.values.items():
        if key in _APPLYCONFIG_KEEPS or key in req.values:
            continue
        if key == "CAPABILITY":
            req.caps = req.caps or value
        elif key == "FEATURES":
            req.features = req.features or value
        elif key == "NETIF":
            req.veth_add = req.veth_add or list(value)
        elif key == "NETDEV":
            req.netdev_add = req.netdev_add or list(value)
        elif key_spec(key, ct.sim.legacy, ct.sim.v3) is not None and key in _storable(ct):
            req.values[key] = value
    req.values.setdefault("ORIGIN_SAMPLE", sample.values.get("ORIGIN_SAMPLE", name))


def _storable(ct: Ct) -> tuple[str, ...]:
    return (*LEGACY_UBC_STORE_ORDER, *(LEGACY_STORE_ORDER if ct.sim.legacy else O7_STORE_ORDER))


# ---------------------------------------------------------------- running CTs

def _restart_class(ct: Ct, req: SetRequest) -> list[str]:
    """Changes that cannot be applied to a running CT, with the tool's messages."""
    eff = ct.eff
    v = req.values
    msgs: list[str] = []
    if ct.sim.legacy:
        old_caps = eff.get("CAPABILITY") or Caps()
        if req.caps and ((req.caps.on and req.caps.on != old_caps.on)
                         or (req.caps.off and req.caps.off != old_caps.off)):
            msgs.append("Unable to set capability on a running container")
        if "NETFILTER" in v and v["NETFILTER"] != eff.get("NETFILTER"):
            msgs.append("Unable to set iptables/netfilter on a running container")
        old_feat = eff.get("FEATURES") or Features()
        if req.features and req.features.known and req.features.on != old_feat.on:
            msgs.append("Unable to set features on a running container")
        if "QUOTAUGIDLIMIT" in v:
            new, old = v["QUOTAUGIDLIMIT"], eff.get("QUOTAUGIDLIMIT", 0)
            if new and not old:
                msgs.append("Unable to turn on second-level disk quota on a running container")
            elif old and not new:
                msgs.append("Unable to turn off second-level disk quota on a running container")
        if "DISK_QUOTA" in v and v["DISK_QUOTA"] != eff.get("DISK_QUOTA"):
            msgs.append("Unable to switch DISK_QUOTA on or off on a running container")
        if "MOUNT_OPTS" in v and v["MOUNT_OPTS"] != eff.get("MOUNT_OPTS"):
            msgs.append("Unable to change mount options on a running container")
    else:
        if "QUOTAUGIDLIMIT" in v:
            new, old = v["QUOTAUGIDLIMIT"], eff.get("QUOTAUGIDLIMIT", 0)
            if new and not old:
                msgs.append("Unable to turn ugid quota on: quota is not initialized")
            elif old and not new:
                msgs.append("Unable to turn ugid quota off for the running Container")
        if "NETFILTER" in v and v["NETFILTER"] != eff.get("NETFILTER"):
            msgs.append("Unable to set netfilter for the running Container")
        if req.features and req.features.known:
            msgs.append("Unable to set features for the running Container")
    return msgs


def _live(ct: Ct, req: SetRequest) -> dict[str, str]:
    """What a live `set` pushes into the running CT (its current kernel values merged)."""
    kernel = ct.kernel.ct(ct.ctid).get("params", {})
    current = Conf(values={
        "IP_ADDRESS": kernel.get("IP_ADDRESS", "").split(),
        "NETDEV": kernel.get("NETDEV", "").split(),
        "NETIF": ct.eff.get("NETIF") or [],
        "FEATURES": ct.eff.get("FEATURES"),
    })
    final = final_values(ct, req, current)
    if "QUOTAUGIDLIMIT" in final and (
            bool(final["QUOTAUGIDLIMIT"]) != bool(ct.eff.get("QUOTAUGIDLIMIT", 0))):
        del final["QUOTAUGIDLIMIT"]  # turning it on or off needs a restart
    return {k: state_repr(k, v) for k, v in final.items() if k in LIVE_KEYS}


def _apply_running(ct: Ct, req: SetRequest) -> None:
    params = _live(ct, req)
    if not params:
        return
    legacy = ct.sim.legacy
    if legacy:
        if any(k in UBC_NAMES for k in params):
            out("UB limits were set successfully")
        kernel_ips = ct.kernel.ct(ct.ctid).get("params", {}).get("IP_ADDRESS", "").split()
        if req.ip_delall:
            out(f"Deleting all IP address(es): {' '.join(kernel_ips)}")
        else:
            readd = [x for x in req.ip_add
                     if values.ip_base(x) in map(values.ip_base, kernel_ips)]
            if req.ip_del + readd:
                out(f"Deleting IP address(es): {' '.join(req.ip_del + readd)}")
        if req.ip_add:
            out(f"Adding IP address(es): {' '.join(req.ip_add)}")
        lifecycle._cpu_messages(params)
    ct.kernel.push_params(ct.ctid, params)


def _apply_stopped_legacy(ct: Ct, req: SetRequest) -> int:
    """Legacy set without --save on a stopped CT tries to apply and fails for kernel values."""
    v = req.values
    if any(k in UBC_NAMES for k in v):
        err("Unable to apply UBC parameters: container is not running")
        return 31
    if req.touches_ip():
        err("Unable to apply network parameters: container is not running")
        return 31
    if any(k in v for k in ("CPUUNITS", "CPULIMIT", "CPUS", "CPUMASK", "NODEMASK",
                            "CPUUWEIGHT")):
        err("Unable to apply CPU parameters: container is not running")
        return 31
    return 0


# ---------------------------------------------------------------- the action

def run(ct: Ct, req: SetRequest) -> int:
    return run_legacy(ct, req) if ct.sim.legacy else run_o7(ct, req)


def run_legacy(ct: Ct, req: SetRequest) -> int:
    warn_save = True
    _check_veth(ct, req)
    _check_options(ct, req)
    running = ct.running()
    if req.reset_ub:
        if not running:
            raise fail(31, "Container is not running")
        ub = {k: state_repr(k, v) for k, v in ct.eff.items() if k in UBC_NAMES}
        ct.kernel.push_params(ct.ctid, ub)
        out("UB limits were set successfully")
        return 0
    if "NAME" in req.values:
        set_name(ct, req.values["NAME"])
    if running:
        if "VE_PRIVATE" in req.values:
            raise fail(32, "Unable to change VE_PRIVATE on a running container")
        if "VE_ROOT" in req.values:
            raise fail(32, "Unable to change VE_ROOT on a running container")
    if req.userpasswd and len(req.userpasswd) * 2 == req.n_words:
        warn_save = False
    _apply_sample(ct, req)
    rc = 0
    if req.save and not running:
        pass  # stored now, applied at the next start
    elif running:
        refused = _restart_class(ct, req)
        if refused and req.setmode == "restart":
            eff = merged(Conf(values=ct.eff), Conf(values=final_values(ct, req, ct.conf))).values
            rc = lifecycle.restart(ct, eff=eff)
        elif refused and req.setmode == "ignore":
            for msg in refused:
                err(msg)
            rc = 32
        else:
            for msg in refused:
                err(msg)
            if refused:
                err("WARNING: Some of the parameters could not be applied to a running "
                    "container.\n\tPlease consider using --setmode option")
            _apply_running(ct, req)
    elif ct.ctid != "0":  # CT 0 settings go to the host, which the simulator does not model
        rc = _apply_stopped_legacy(ct, req)
    if req.save:
        if rc:
            err("Error: failed to apply some parameters, not saving configuration file!")
            return rc
        if not ct.conf_path.is_file():
            err(f"WARNING: {ct.conf_path} not found: No such file or directory")
        write_legacy(ct.conf_path, legacy_updates(ct, req, ct.conf))
    elif warn_save and rc == 0:
        tail = "and will be lost after CT restart " if ct.running() else ""
        out(f"WARNING: Settings were not saved to config {tail}(use --save flag)")
    return rc


def run_o7(ct: Ct, req: SetRequest) -> int:
    _apply_sample(ct, req)
    _check_options_o7(req)
    _check_veth(ct, req)
    running = ct.running()
    if req.reset_ub:
        if not running:
            raise fail(31, "Container is not running")
        ub = {k: state_repr(k, v) for k, v in ct.eff.items() if k in UBC_NAMES}
        ct.kernel.push_params(ct.ctid, ub)
        return 0
    if "NAME" in req.values:
        set_name(ct, req.values["NAME"])
    if running and ("VE_PRIVATE" in req.values or "VE_ROOT" in req.values):
        raise fail(32, "Unable to change VE_ROOT/VE_PRIVATE of the running Container")
    rc = 0
    if running:
        refused = _restart_class(ct, req)
        for msg in refused:
            err(msg)
        setmode_rc = 0
        if refused:
            on = ("Unable to turn ugid quota on: quota is not initialized")
            setmode_rc = 67 if refused[-1] == on else 32
        if refused and req.setmode == "restart":
            eff = merged(Conf(values=ct.eff), Conf(values=final_values(ct, req, ct.conf))).values
            rc = lifecycle.restart(ct, eff=eff)
        elif refused and not req.setmode:
            err("WARNING: Some of the parameters could not be applied to a running "
                "container.\n\tPlease consider using --setmode option")
            rc = setmode_rc
        else:
            _apply_running(ct, req)
            rc = setmode_rc
    if req.save:
        # O7 saves even when applying failed; the exit code stays the error
        write_o7(ct.conf_path, o7_updates(ct, req, ct.conf))
        out(f"Saved parameters for Container {ct.ctid}")
    elif not req.userpasswd and not req.reset_ub:
        out("WARNING: Changes are not saved and will be dropped on the next start. Suspend or "
            "migrate operations may fail. Use --save to save the settings in the "
            "configuration file.")
    return rc
