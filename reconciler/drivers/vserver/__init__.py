"""`vserver`: Linux-VServer guests through util-vserver (reference native-formats §2).

    driver.py   VserverDriver: observe, steps, import
    tree.py     a guest's configuration tree, read and written by util-vserver's file rules
    mapping.py  the model <-> the tree (pure)
    numbers.py  numbers as util-vserver's C helpers read them (pure)
    tools.py    the commands (argument lists, never a shell) and a parser of vserver-stat
    convert.py  one tree -> a spec, saying what it did not convert (`convert --from vserver`)
"""

from reconciler.drivers.vserver.driver import VserverDriver

__all__ = ["VserverDriver"]
