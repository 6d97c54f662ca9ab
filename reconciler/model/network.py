"""A virtual network: a bridge on the host, optionally with NAT/routing and DHCP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reconciler.model.domain import UUID_PATTERN, RunState
from reconciler.model.types import Device, Frozen, IpAddress, Mac, Name, Text, XmlText

ForwardMode = Literal["nat", "route", "open", "bridge", "private", "vepa", "passthrough", "hostdev"]


class Bridge(Frozen):
    name: Device | None = None
    stp: bool | None = None
    delay: int | None = Field(None, ge=0)
    xml_attrs: dict[Text, Text] = Field(default_factory=dict)


class Forward(Frozen):
    mode: ForwardMode = "nat"
    dev: Device | None = None
    xml: tuple[XmlText, ...] = ()
    xml_attrs: dict[Text, Text] = Field(default_factory=dict)


class DhcpHost(Frozen):
    mac: Mac | None = None
    name: Text | None = None
    ip: Text | None = None
    id: Text | None = None
    xml: tuple[XmlText, ...] = ()


class DhcpRange(Frozen):
    start: Text
    end: Text
    xml: tuple[XmlText, ...] = ()


class NetIp(Frozen):
    """An address of the bridge, with its DHCP service."""

    address: IpAddress
    netmask: Text | None = None
    dhcp_ranges: tuple[DhcpRange, ...] = ()
    dhcp_hosts: tuple[DhcpHost, ...] = ()
    xml: tuple[XmlText, ...] = ()
    dhcp_xml: tuple[XmlText, ...] = ()


class Network(Frozen):
    kind: Literal["Network"] = "Network"
    name: Name
    uuid: str | None = Field(None, pattern=UUID_PATTERN)
    title: Text | None = None
    description: Text | None = None
    state: RunState = "running"
    autostart: bool | None = None
    ipv6: bool | None = None
    bridge: Bridge | None = None
    forward: Forward | None = None
    mac: Mac | None = None
    domain: Text | None = None
    mtu: int | None = Field(None, ge=68, le=65535)
    ips: tuple[NetIp, ...] = ()
    protect: bool = False
    hosts: tuple[Text, ...] = ()
    xml: tuple[XmlText, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Network:
        if self.forward and self.forward.mode == "open" and self.forward.dev:
            raise ValueError("an 'open' network cannot have a forward dev")
        return self
