"""Field types shared by every kind: sizes, names, addresses, each parsed once, here."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from reconciler.model.names import (
    check_abs_path,
    check_device,
    check_mac,
    check_name,
    check_text,
    check_token,
    check_xml_text,
)
from reconciler.model.units import format_size, parse_size

UNLIMITED = 9223372036854775807  # LONG_MAX, what OpenVZ writes for "unlimited"


class FieldError(ValueError):
    """A check over a whole model that blames one of its fields: the loader adds `path` to
    the error's location, so the message points at the offending key, not the object."""

    def __init__(self, path: str | int | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path: tuple[str | int, ...] = path if isinstance(path, tuple) else (path,)


class Frozen(BaseModel):
    """Every model piece: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Size = Annotated[
    int,
    BeforeValidator(lambda v: parse_size(v)),
    PlainSerializer(format_size, when_used="json"),
    WithJsonSchema({
        "anyOf": [
            {"type": "integer", "minimum": 0, "description": "KiB"},
            {"type": "string", "pattern": r"^\d+(\.\d+)?\s*[A-Za-z]*$",
             "description": "a size with a unit, e.g. 512MiB or 1G"},
        ]
    }),
]
Text = Annotated[str, AfterValidator(check_text)]
"""Any free-form value: one line of printable text (see `names`). Every string field of the
model is Text or a stricter type."""
XmlText = Annotated[str, AfterValidator(check_xml_text)]
Token = Annotated[str, AfterValidator(check_token)]
Name = Annotated[str, AfterValidator(check_name),
                 WithJsonSchema({"type": "string",
                                 "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"})]
Device = Annotated[str, AfterValidator(check_device)]
AbsPath = Annotated[str, AfterValidator(check_abs_path),
                    WithJsonSchema({"type": "string", "pattern": "^/"})]
Mac = Annotated[str, AfterValidator(check_mac),
                WithJsonSchema({"type": "string",
                                "pattern": "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"})]


def ip_family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                   r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def ip_version(value: str) -> int:
    """4 or 6 for an address without a prefix; ValueError (with a hint) for anything else.
    Dotted quads are checked by one regex (the common case, and many times faster than
    `ipaddress`)."""
    if isinstance(value, str):
        if _IPV4.fullmatch(value):
            return 4
        if ":" in value and "%" not in value:
            try:
                socket.inet_pton(socket.AF_INET6, value)
                return 6
            except (OSError, ValueError):
                pass  # let ipaddress decide (and word the error)
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address; write e.g. 192.0.2.1 or 2001:db8::1"
                         ) from None


def check_ip(value: str) -> str:
    """One IPv4 or IPv6 address, without a prefix (an IPv6 scope id is text too)."""
    check_text(value)
    ip_version(value)
    return value


IpText = Annotated[str, AfterValidator(check_ip)]


def _count(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a whole number or 'unlimited'")
    number = int(value)
    if number < 0 or number > UNLIMITED:
        raise ValueError(f"{value!r} is out of range (0 to {UNLIMITED} or 'unlimited')")
    return number


Count = Annotated[int, BeforeValidator(_count),
                  WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0},
                                            {"const": "unlimited"}]})]


def _pair(value: Any) -> Any:
    """`[soft, hard]`, `"soft:hard"` or one number meaning both (as vzctl reads them)."""
    if isinstance(value, str) and ":" in value:
        return value.split(":", 1)
    if isinstance(value, int | str) and not isinstance(value, bool):
        return [value, value]
    return value


class IpAddress(Frozen):
    """One address with its prefix; written `192.0.2.5/24` in YAML."""

    address: str
    prefix: int | None = None
    peer: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            address, _, prefix = value.partition("/")
            return {"address": address, "prefix": int(prefix) if prefix.isdigit() else
                    (prefix or None)}
        return value

    @model_validator(mode="after")
    def _check(self) -> IpAddress:
        limit = 32 if ip_version(check_ip(self.address)) == 4 else 128
        if self.prefix is not None and not 0 <= self.prefix <= limit:
            raise ValueError(f"prefix /{self.prefix} is out of range for {self.address} "
                             f"(0-{limit})")
        if self.peer is not None:
            check_ip(self.peer)
        return self

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.address else "ipv4"

    @model_serializer(mode="plain")
    def _to_text(self) -> Any:
        if self.peer is not None:
            return {"address": self.address, "prefix": self.prefix, "peer": self.peer}
        return self.address if self.prefix is None else f"{self.address}/{self.prefix}"


class IpRange(Frozen):
    """A range of addresses a guest may use (Linux-VServer IP isolation): `a-b/prefix`."""

    start: str
    end: str
    prefix: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            span, _, prefix = value.partition("/")
            start, sep, end = span.partition("-")
            if not sep:
                raise ValueError(f"{value!r} is not a range; write start-end/prefix")
            return {"start": start, "end": end, "prefix": int(prefix) if prefix else None}
        return value

    @model_validator(mode="after")
    def _check(self) -> IpRange:
        start, end = ipaddress.ip_address(check_ip(self.start)), ipaddress.ip_address(
            check_ip(self.end))
        if start.version != end.version:
            raise ValueError(f"range {self.start}-{self.end} mixes IPv4 and IPv6")
        if int(start) > int(end):
            raise ValueError(f"range {self.start}-{self.end} ends before it starts")
        limit = 32 if start.version == 4 else 128
        if self.prefix is not None and not 0 <= self.prefix <= limit:
            raise ValueError(f"prefix /{self.prefix} is out of range for {self.start} (0-{limit})")
        return self

    @model_serializer(mode="plain")
    def _to_text(self) -> str:
        span = f"{self.start}-{self.end}"
        return span if self.prefix is None else f"{span}/{self.prefix}"


PairInput = BeforeValidator(_pair)


def canonical(obj: BaseModel) -> dict[str, Any]:
    """The one canonical form: JSON types, defaults left out, sizes as exact unit strings.

    Diffs, hashes, stored last-applied specs and YAML output all use it, so two specs that
    mean the same thing have equal canonical forms.
    """
    return obj.model_dump(mode="json", exclude_defaults=True)
