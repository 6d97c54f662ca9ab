"""`openvz`: OpenVZ containers (legacy vzctl 3.x/4.x and OpenVZ 7) through vzctl, vzlist and
`CTID.conf`. One concern per module:

    tools     running vzctl/vzlist (argument lists), exit codes, pure parsers of their output
    native    typed values of config keys, per version (units, pairs, addresses, NETIF)
    conffile  CTID.conf / vz.conf / samples read by the version's rules (read-only)
    mapping   model <-> config keys and `vzctl set` arguments (pure)
    convert   CTID.conf -> Domain, ve-NAME.conf-sample -> Profile, with what was not converted
    driver    OpenvzDriver

Tested against simulators of vzctl and vzlist (tests/sims/openvz): an OpenVZ kernel cannot
run on our machines.
"""

from reconciler.drivers.openvz.convert import (
    Converted,
    convert_conf,
    convert_file,
    convert_sample,
)
from reconciler.drivers.openvz.driver import OpenvzDriver

__all__ = ["Converted", "OpenvzDriver", "convert_conf", "convert_file",
           "convert_sample"]
